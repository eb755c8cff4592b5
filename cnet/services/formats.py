"""Shared output formats of the views (inspect, ps, net ls), kept apart so `ps` needs no other
use-case module."""

from __future__ import annotations

import datetime


def iso(ts: float | None) -> str | None:
    """A stored UNIX time as ISO 8601 in UTC, to the second (None stays None)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")
