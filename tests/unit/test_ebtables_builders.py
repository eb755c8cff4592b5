"""Anti-spoofing builders (ebtables): exact restore input and argv, pinned by value."""

from __future__ import annotations

import pytest

from cnet.kernel import ebtables as eb

EP = {"host_veth": "cnetv1234567890", "mac": "02:42:0a:05:00:02", "ip": "10.5.0.2"}


def test_endpoint_rules_pin_mac_ip_and_arp():
    assert [r.line("-A") for r in eb.endpoint_rules(**EP)] == [
        "-A CNET-SPOOF -i cnetv1234567890 -s ! 02:42:0a:05:00:02 -j DROP",
        "-A CNET-SPOOF -p IPv4 -i cnetv1234567890 --ip-src ! 10.5.0.2 -j DROP",
        "-A CNET-SPOOF -p ARP -i cnetv1234567890 --arp-mac-src ! 02:42:0a:05:00:02 -j DROP",
        "-A CNET-SPOOF -p ARP -i cnetv1234567890 --arp-ip-src ! 10.5.0.2 -j DROP",
    ]


def test_endpoint_add_undo_deletes_exactly_its_rules():
    step = eb.endpoint_add(**EP)
    assert step.do.argv == ("ebtables-restore", "--noflush")
    assert step.do.stdin.splitlines()[0] == "*filter"
    [undo] = step.undo
    assert undo.stdin == step.do.stdin.replace("-A CNET-SPOOF", "-D CNET-SPOOF")


def test_endpoint_remove_has_a_per_rule_fallback():
    step = eb.endpoint_remove(**EP)
    assert step.undo == ()
    assert [c.argv for c in step.fallback] == [r.argv("-D") for r in eb.endpoint_rules(**EP)]
    assert step.fallback[0].argv == (
        "ebtables",
        "-t",
        "filter",
        "-D",
        "CNET-SPOOF",
        "-i",
        "cnetv1234567890",
        "-s",
        "!",
        "02:42:0a:05:00:02",
        "-j",
        "DROP",
    )


def test_base_create_and_delete():
    step = eb.base_create()
    assert step.do.stdin == "*filter\n:CNET-SPOOF RETURN\n-A INPUT -j CNET-SPOOF\n-A FORWARD -j CNET-SPOOF\n"
    [undo] = step.undo
    assert undo.stdin == "*filter\n-D INPUT -j CNET-SPOOF\n-D FORWARD -j CNET-SPOOF\n-F CNET-SPOOF\n-X CNET-SPOOF\n"
    assert [c.argv[3:] for c in eb.base_delete_fallback()] == [
        ("-D", "INPUT", "-j", "CNET-SPOOF"),
        ("-D", "FORWARD", "-j", "CNET-SPOOF"),
        ("-F", "CNET-SPOOF"),
        ("-X", "CNET-SPOOF"),
    ]


@pytest.mark.parametrize("bad", ["02:42 x", "10.0.0.1#", "", "a'b"])
def test_unsafe_values_never_reach_ebtables_restore(bad):
    with pytest.raises(ValueError, match="unsafe ebtables argument"):
        eb.endpoint_rules(host_veth="cnetv1", mac=bad, ip="10.0.0.2")
