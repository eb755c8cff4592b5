"""The hosts and resolv.conf a container gets (cnet.plans.names): pure text."""

from cnet.plans import names


def m(net, cid, iface, ip, name, hostname=None, aliases=()):
    return names.Member(net, cid, iface, ip, name, hostname or name, tuple(aliases))


def test_hosts_list_the_members_of_each_network_of_the_viewer():
    members = [
        m("A", "c1", "eth0", "10.0.0.2", "web1"),
        m("A", "c2", "eth0", "10.0.0.3", "web2", "h2", ["db"]),
        m("B", "c2", "eth1", "10.1.0.3", "web2", "h2", ["db"]),
        m("B", "c3", "eth0", "10.1.0.4", "other"),
        m("C", "c4", "eth0", "10.2.0.5", "alone"),
    ]
    files = names.hosts_files(["c1", "c2", "c3", "c4"], members)
    body = {cid: text.split(names.HOSTS_NOTE)[1] for cid, text in files.items()}
    assert all(text.startswith(names.HOSTS_HEADER) for text in files.values())
    assert body["c1"] == "10.0.0.2\tweb1\n10.0.0.3\tweb2 h2 db\n"
    # web2 is on A (eth0) and B (eth1): A's block first, so its own name resolves on A.
    assert body["c2"] == "10.0.0.2\tweb1\n10.0.0.3\tweb2 h2 db\n10.1.0.3\tweb2 h2 db\n10.1.0.4\tother\n"
    assert body["c3"] == "10.1.0.3\tweb2 h2 db\n10.1.0.4\tother\n"
    assert "web1" not in body["c3"] and body["c4"] == "10.2.0.5\talone\n"


def test_dual_stack_members_are_listed_on_both_addresses_ipv4_first():
    members = [
        names.Member("A", "c1", "eth0", "10.0.0.2", "web1", "web1", (), "fd00::2"),
        names.Member("A", "c2", "eth0", "10.0.0.3", "web2", "h2", ("db",), "fd00::3"),
        m("B", "c2", "eth1", "10.1.0.3", "web2"),  # an IPv4-only network: one line
    ]
    body = names.hosts_files(["c2"], members)["c2"].split(names.HOSTS_NOTE)[1]
    assert body == ("10.0.0.2\tweb1\nfd00::2\tweb1\n10.0.0.3\tweb2 h2 db\nfd00::3\tweb2 h2 db\n10.1.0.3\tweb2\n")


def test_a_viewer_without_networks_gets_only_the_header():
    assert names.hosts_files(["x"], []) == {"x": names.HOSTS_HEADER + names.HOSTS_NOTE}


def test_interfaces_sort_numerically():
    members = [m(f"N{i}", "c", f"eth{i}", f"10.{i}.0.2", "c") for i in (10, 2)]
    body = names.hosts_files(["c"], members)["c"].split(names.HOSTS_NOTE)[1]
    assert body.index("10.2.0.2") < body.index("10.10.0.2")


def test_resolv_drops_loopback_nameservers():
    host = "# hi\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver ::1\nsearch example.org\noptions edns0\n"
    assert names.container_resolv(host) == "# hi\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n"


def test_resolv_systemd_resolved_stub_uses_its_upstream_list():
    stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    upstream = "nameserver 192.0.2.53\nsearch lan\n"
    assert names.container_resolv(stub, upstream) == upstream
    # No usable upstream: a comment, and no nameserver at all.
    out = names.container_resolv(stub, "nameserver 127.0.0.1\n")
    assert names.nameservers(out) == [] and out.endswith(names.NO_NAMESERVER) and "search lan" in out
    assert names.nameservers(names.container_resolv("")) == []
