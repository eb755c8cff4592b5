"""etcd, the cluster store of overlay networks: the only module that talks to it.

Through etcd3gw, which speaks etcd's v3 JSON gateway over HTTP (no gRPC stack and its protobuf
pins). Imported only by the commands that touch an overlay network: `run`, `ps` and `--help`
never pay for requests (tests/unit/test_startup_imports.py).

Several endpoints (`--etcd URL,URL,...`) are tried in turn: a member that is down or cut off
from the quorum does not stop cnet while another answers. Every failure becomes one line that
names the endpoints (ClusterUnavailable).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import CnetError, ValidationError

DEFAULT_TIMEOUT = 3.0


class ClusterUnavailable(CnetError):
    """No etcd endpoint answered: nothing was changed there."""


@dataclass(frozen=True)
class TLS:
    """Passed through to the HTTP client: a CA bundle to verify etcd, a client certificate."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_endpoints(urls: str) -> list[Endpoint]:
    """`http://10.0.0.1:2379,https://etcd2:2379` (a bare HOST[:PORT] means http)."""
    out = []
    for raw in (u.strip() for u in urls.split(",")):
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"http://{raw}")
        try:
            port = parts.port or 2379
        except ValueError:
            raise ValidationError(f"invalid etcd endpoint {raw!r}: bad port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValidationError(f"invalid etcd endpoint {raw!r}: expected http(s)://HOST:PORT")
        out.append(Endpoint(parts.scheme, parts.hostname, port))
    if not out:
        raise ValidationError("--etcd: no endpoint given")
    return out


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def _range_end(prefix: str) -> str:
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


# Transaction operations, as the gateway's JSON spells them.
def put(key: str, value: Any, lease: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(json.dumps(value, sort_keys=True))}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def delete(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


def delete_prefix(prefix: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(prefix), "range_end": _range_end(prefix)}}


def absent(key: str) -> dict[str, Any]:
    return {"target": "CREATE", "result": "EQUAL", "key": _b64(key), "create_revision": "0"}


def present(key: str) -> dict[str, Any]:
    return {"target": "CREATE", "result": "GREATER", "key": _b64(key), "create_revision": "0"}


def unchanged(key: str, mod_revision: int) -> dict[str, Any]:
    return {"target": "MOD", "result": "EQUAL", "key": _b64(key), "mod_revision": str(mod_revision)}


@dataclass(frozen=True)
class Entry:
    value: Any  # decoded JSON
    mod_revision: int
    lease: int


class Cluster:
    def __init__(self, urls: str, tls: TLS | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoints = parse_endpoints(urls)
        self.tls = tls or TLS()
        self.timeout = timeout
        self._clients: dict[Endpoint, Any] = {}
        self._order = list(self.endpoints)

    def describe(self) -> str:
        return ",".join(str(e) for e in self.endpoints)

    def _client(self, ep: Endpoint) -> Any:
        client = self._clients.get(ep)
        if client is None:
            import etcd3gw  # requests and its kin: paid only by overlay commands

            client = etcd3gw.Etcd3Client(
                host=ep.host,
                port=ep.port,
                protocol=ep.scheme,
                ca_cert=self.tls.ca,
                cert_key=self.tls.key,
                cert_cert=self.tls.cert,
                timeout=self.timeout,
                api_path="/v3/",  # etcd >= 3.4; skips a discovery request per command
            )
            self._clients[ep] = client
        return client

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        from etcd3gw import exceptions as ex

        errors = []
        for ep in list(self._order):
            try:
                out = fn(self._client(ep))
            except (ex.ConnectionFailedError, ex.ConnectionTimeoutError, ex.InternalServerError) as exc:
                # Down, unreachable, or a member without quorum: the next one may answer.
                errors.append(f"{ep}: {type(exc).__name__}")
                continue
            except ex.Etcd3Exception as exc:
                raise ClusterUnavailable(f"etcd at {ep} refused the request: {exc.detail_text or exc}") from None
            if ep is not self._order[0]:  # remember who answered
                self._order.remove(ep)
                self._order.insert(0, ep)
            return out
        raise ClusterUnavailable(f"etcd at {self.describe()} is unreachable ({'; '.join(errors)})")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call(lambda c: c.post(c.get_url(path), json=body))
        return out

    # --- reads ---------------------------------------------------------------------------------
    def range_prefix(self, prefix: str) -> tuple[int, dict[str, Entry]]:
        """Every key under prefix: (the store's revision, key -> Entry)."""
        out = self._post("/kv/range", {"key": _b64(prefix), "range_end": _range_end(prefix)})
        entries = {}
        for kv in out.get("kvs", []):
            try:
                value = json.loads(_unb64(kv.get("value", "")))
            except ValueError:
                continue  # not ours to read
            entries[_unb64(kv["key"])] = Entry(value, int(kv.get("mod_revision", 0)), int(kv.get("lease", 0)))
        return int(out.get("header", {}).get("revision", 0)), entries

    # --- writes --------------------------------------------------------------------------------
    def txn(
        self, compare: list[dict[str, Any]], success: list[dict[str, Any]], failure: list[dict[str, Any]] | None = None
    ) -> bool:
        """One transaction: success applies when every compare holds. True if it did."""
        out = self._post("/kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(out.get("succeeded", False))

    def grant(self, ttl: int) -> int:
        return int(self._post("/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> int:
        """The lease's TTL after renewal; 0 when it had expired (its keys are gone)."""
        out = self._post("/lease/keepalive", {"ID": str(lease)})
        return int(out.get("result", {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        self._post("/lease/revoke", {"ID": str(lease)})

    # --- watching ------------------------------------------------------------------------------
    def watch_prefix(self, prefix: str, start_revision: int) -> tuple[Iterator[Any], Callable[[], None]]:
        """Events under prefix after start_revision (etcd3gw runs the stream in a thread)."""
        return self._call(lambda c: c.watch_prefix(prefix, start_revision=start_revision))  # type: ignore[no-any-return]
