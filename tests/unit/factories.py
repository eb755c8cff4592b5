"""Records and state dirs for unit tests, built with every field set once here; a test names only what it means."""

from __future__ import annotations

import os
from pathlib import Path
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


def broken_state_dirs(tmp_path: Path) -> list[Path]:
    """State dirs every command must refuse in one line: a file, a damaged database, a directory
    others may write to (refused before anything is read), a path below a file."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    damaged = tmp_path / "damaged"
    damaged.mkdir(mode=0o700)
    (damaged / "cnet.db").write_bytes(b"not a database" * 100)
    wide = tmp_path / "wide"
    wide.mkdir()
    os.chmod(wide, 0o777)
    return [not_a_dir, damaged, wide, not_a_dir / "below"]
