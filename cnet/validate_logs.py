"""Validation of the logs options: `--log-max-size` sizes and `logs --since/--until` times, read
as Docker reads them."""

from __future__ import annotations

import re

from .errors import ValidationError

_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgt]?)i?b?", re.IGNORECASE)


def log_size(text: str) -> int:
    """--log-max-size as Docker reads max-size: bytes, or with k, m, g, t (powers of 1024;
    `10m`, `512k`, `1.5g`, `10MiB`)."""
    m = _SIZE_RE.fullmatch(text.strip())
    if not m or not text.isascii():
        raise ValidationError(f"invalid --log-max-size {text!r}: use bytes or a size like 512k, 10m, 1g")
    size = int(float(m[1]) * 1024 ** " kmgt".index(m[2].lower() or " "))
    if size < 1 or size > 2**40:
        raise ValidationError(f"invalid --log-max-size {text!r}: it must be between 1 byte and 1t")
    return size


_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")
_UNITS_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d\d:\d\d)?")


def log_time(text: str, now_ns: int, option: str = "--since") -> int:
    """--since / --until as `docker logs` takes them, in nanoseconds since the epoch: a duration
    before now (Go's spelling: 10m, 1h30m, 90s, 1.5h), an RFC 3339 time or a prefix of one
    (2026-01-02, 2026-01-02T15:04, ...; local time unless it ends in Z or +HH:MM), or a Unix
    timestamp (1700000000, 1700000000.5)."""
    import calendar
    import time

    t = text.strip()
    if _DURATION_RE.fullmatch(t):
        ns = sum(round(float(v) * _UNITS_NS[u]) for v, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", t))
        return now_ns - ns
    if re.fullmatch(r"\d+(\.\d{1,9})?", t):
        whole, _, frac = t.partition(".")
        return int(whole) * 10**9 + int(frac.ljust(9, "0") or 0)
    m = _TIME_RE.fullmatch(t)
    if m:
        date, hh, mm, ss, frac, zone = m.groups()
        try:
            fields = (*map(int, date.split("-")), int(hh or 0), int(mm or 0), int(ss or 0))
            tm = time.struct_time((*fields, 0, 0, -1))
            if zone is None:
                secs = int(time.mktime(tm))
            else:
                secs = calendar.timegm(tm)
                if zone != "Z":
                    sign = 1 if zone[0] == "+" else -1
                    secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
            if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24 and fields[4] < 60):
                raise ValueError
        except (ValueError, OverflowError):
            pass
        else:
            return secs * 10**9 + int((frac or "").ljust(9, "0"))
    raise ValidationError(
        f"invalid {option} {text!r}: use a duration (10m, 1h30m), an RFC 3339 time "
        "(2026-01-02T15:04:05Z) or a Unix timestamp"
    )
