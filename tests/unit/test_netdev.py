"""cnet/netdev.py reads a device's MAC with one ioctl (read-only: this test looks at `lo` only)."""

from cnet import netdev


def test_link_mac_of_loopback_and_of_no_device():
    assert netdev.link_mac("lo") == "00:00:00:00:00:00"
    assert netdev.link_mac("cnet-nosuchdev") is None


def test_bridge_ready_wants_the_recorded_mac():
    assert netdev.bridge_ready("lo", "00:00:00:00:00:00")
    assert not netdev.bridge_ready("lo", "0a:01:23:45:67:89")
    assert netdev.bridge_ready("lo", "")  # no MAC recorded: present is enough
    assert not netdev.bridge_ready("cnet-nosuchdev", "")
