import os
import shutil

import pytest

from tests.sandbox import Sandbox


def _can_sandbox() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") and shutil.which("iptables-restore")


def pytest_collection_modifyitems(config, items):
    if _can_sandbox():
        return
    skip = pytest.mark.skip(reason="needs root, unshare and iptables (integration test)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sandbox(tmp_path):
    """A fresh throwaway host per test, with a baseline taken before the test acts.
    The test should end with `assert sb.snapshot() == sb.baseline` (nothing left behind)."""
    sb = Sandbox(tmp_path / "state")
    sb.baseline = sb.snapshot()
    try:
        yield sb
    finally:
        sb.close()
