import pytest

pytestmark = pytest.mark.root


def test_network_create_and_remove_leaves_nothing(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "mynet1", "--subnet", "175.50.0.0/24")
    assert any(n.startswith("cnet-") for n in sb.link_names())
    sb.cnet("net", "rm", "mynet1")
