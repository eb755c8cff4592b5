"""Records for unit tests, built with every field set once here; a test names only what it means."""

from __future__ import annotations

from typing import Any

from cnet.records import Network, NetworkState


def network(**fields: Any) -> Network:
    """A ready bridge network on 10.5.0.0/24; any field can be given."""
    values: dict[str, Any] = {
        "id": "n1",
        "name": "a",
        "driver": "bridge",
        "subnet": "10.5.0.0/24",
        "subnet_first_int": 0,
        "subnet_last_int": 0,
        "prefix_len": 24,
        "gateway": "10.5.0.1",
        "ip_range": None,
        "range_first_int": 0,
        "range_last_int": 0,
        "alloc_cursor_int": 0,
        "bridge": "cnet-n1",
        "mtu": 1500,
        "internal": False,
        "state": NetworkState.READY,
        "created_at": 0.0,
        "bridge_mac": "0a:00:00:00:00:01",
    }
    values.update(fields)
    return Network(**values)
