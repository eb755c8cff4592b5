import os
import shutil

import pytest

from tests.sandbox import Sandbox, left_behind


def _can_sandbox() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("iptables-restore"))


def pytest_collection_modifyitems(config, items):
    if _can_sandbox():
        return
    skip = pytest.mark.skip(reason="needs root, unshare and iptables (integration test)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so the sandbox fixture's teardown can tell whether the
    # test itself failed (then the leftovers are a symptom, not a second finding).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_report_{report.when}", report)


@pytest.fixture
def sandbox(request, tmp_path):
    """A fresh throwaway host per test, with a baseline taken before the test acts.

    The test cleans up after itself (`cnet rm -f`, `cnet net rm`, its own links); at teardown the
    fixture checks that it did: the host is back to `sb.baseline` (links, rules, netns, mounts
    under the state dir but the kept mount namespace template, which must hold no netns pin,
    ip_forward, state rows) and the database holds no network, container, endpoint, allocation or
    port row and no unfinished operation. A test that arranges the host first (a foreign route, a
    sysctl) sets `sb.baseline = sb.snapshot()` after doing so. `@pytest.mark.leaves_state` opts out
    (tests that deliberately leave things); a test that failed is not checked again. The sandbox is
    killed in every case."""
    sb = Sandbox(tmp_path / "state")
    try:
        sb.baseline = sb.snapshot()
        yield sb
        failed = any(getattr(getattr(request.node, f"_report_{w}", None), "failed", False) for w in ("setup", "call"))
        if not failed and request.node.get_closest_marker("leaves_state") is None:
            problems = left_behind(sb)
            assert not problems, "the test left things behind:\n" + "\n".join(problems)
    finally:
        sb.close()
