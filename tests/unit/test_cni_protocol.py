"""The CNI protocol layer, pure: environment, configuration, versions, result and error documents."""

import json
from dataclasses import replace

import pytest

from cnet.cni import protocol as p
from cnet.cni import versions
from cnet.cni.protocol import CniError, Code
from cnet.errors import AllocationError, CommandFailed, Conflict, NotFound, PermissionDenied, ValidationError

CID = "a1c9d041ff66" + "0" * 52


def env(**kw):
    base = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": CID,
        "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def code_of(fn, *args):
    with pytest.raises(CniError) as info:
        fn(*args)
    return info.value.code


# --- environment --------------------------------------------------------------------------------
def test_env_add():
    e = p.parse_env(env(CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=web;junk"))
    assert (e.command, e.container_id, e.netns, e.ifname) == ("ADD", CID, "/run/netns/x", "eth0")
    assert e.arg("K8S_POD_NAME") == "web" and e.arg("junk") is None


@pytest.mark.parametrize("bad", [None, "", "add", "DELETE", "VERSION2"])
def test_env_unknown_command(bad):
    assert code_of(p.parse_env, env(CNI_COMMAND=bad)) == Code.INVALID_ENVIRONMENT


@pytest.mark.parametrize("command", ["ADD", "CHECK"])
def test_env_netns_required(command):
    assert code_of(p.parse_env, env(CNI_COMMAND=command, CNI_NETNS=None)) == Code.INVALID_ENVIRONMENT


def test_env_del_without_netns_is_fine():
    assert p.parse_env(env(CNI_COMMAND="DEL", CNI_NETNS=None)).netns == ""


@pytest.mark.parametrize("cid", ["", "-abc", "a b", "a/b", "x" * 300, "é"])
def test_env_bad_container_id(cid):
    assert code_of(p.parse_env, env(CNI_CONTAINERID=cid)) == Code.INVALID_ENVIRONMENT


@pytest.mark.parametrize("ifname", ["", ".", "..", "a/b", "a:b", "a b", "x" * 16, "eth\t0", "e\x01"])
def test_env_bad_ifname(ifname):
    assert code_of(p.parse_env, env(CNI_IFNAME=ifname)) == Code.INVALID_ENVIRONMENT


@pytest.mark.parametrize("ifname", ["eth0", "net1", "x" * 15, "my-if.2", "veth_A"])
def test_env_any_ifname(ifname):
    assert p.parse_env(env(CNI_IFNAME=ifname)).ifname == ifname


def test_env_relative_netns():
    assert code_of(p.parse_env, env(CNI_NETNS="netns-1")) == Code.INVALID_ENVIRONMENT


@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_env_gc_status_need_no_container(command):
    e = p.parse_env({"CNI_COMMAND": command, "CNI_PATH": "/x"})
    assert e.command == command and e.container_id == ""


# --- configuration ------------------------------------------------------------------------------
def conf(**kw):
    doc = {"cniVersion": "1.0.0", "name": "net1", "type": "cnet"}
    doc.update(kw)
    return json.dumps(doc)


def test_config_minimal():
    c = p.parse_config(conf(), "ADD")
    assert (c.cni_version, c.name, c.network, c.state_dir, c.port_mappings, c.ips, c.mac) == (
        "1.0.0",
        "net1",
        "net1",
        None,
        (),
        (),
        None,
    )


def test_config_network_and_state_dir():
    c = p.parse_config(conf(network="blue", stateDir="/srv/cnet"), "ADD")
    assert (c.network, c.state_dir) == ("blue", "/srv/cnet")


@pytest.mark.parametrize("data", ["", "{", "not json", b"\xff\xfe", "[1, 2]", "42", "null"])
def test_config_garbage(data):
    assert code_of(p.parse_config, data, "ADD") == Code.DECODE_FAILURE


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "2.0.0", "1.2.0", "1.0", 1])
def test_config_unsupported_version(version):
    assert code_of(p.parse_config, conf(cniVersion=version), "ADD") == Code.INCOMPATIBLE_VERSION


@pytest.mark.parametrize("version", p.SUPPORTED_VERSIONS)
def test_config_supported_versions(version):
    assert p.parse_config(conf(cniVersion=version), "ADD").cni_version == version


def test_config_needs_version_and_name():
    assert code_of(p.parse_config, json.dumps({"name": "n"}), "ADD") == Code.INVALID_CONFIG
    assert code_of(p.parse_config, json.dumps({"cniVersion": "1.0.0"}), "ADD") == Code.INVALID_CONFIG
    assert code_of(p.parse_config, conf(network=""), "ADD") == Code.INVALID_CONFIG
    assert code_of(p.parse_config, conf(stateDir="rel/dir"), "ADD") == Code.INVALID_CONFIG
    assert code_of(p.parse_config, conf(runtimeConfig=[1]), "ADD") == Code.INVALID_CONFIG


def test_config_ipam_is_unsupported():
    assert code_of(p.parse_config, conf(ipam={"type": "host-local"}), "ADD") == Code.UNSUPPORTED_FIELD


def rc(**kw):
    return conf(runtimeConfig=kw)


def test_port_mappings():
    c = p.parse_config(
        rc(
            portMappings=[
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
                {"hostPort": 9000, "containerPort": 90, "hostIP": ""},
            ]
        ),
        "ADD",
    )
    assert [(m.host_ip, m.host_port, m.container_port, m.protocol) for m in c.port_mappings] == [
        ("0.0.0.0", 8080, 80, "tcp"),
        ("127.0.0.1", 5353, 53, "udp"),
        ("0.0.0.0", 9000, 90, "tcp"),
    ]


@pytest.mark.parametrize(
    "mapping",
    [
        {"hostPort": "80", "containerPort": 80},
        {"hostPort": 0, "containerPort": 80},
        {"hostPort": 70000, "containerPort": 80},
        {"hostPort": True, "containerPort": 80},
        {"hostPort": 80.5, "containerPort": 80},
        {"containerPort": 80},
        {"hostPort": 80, "containerPort": 80, "protocol": "sctp"},
        {"hostPort": 80, "containerPort": 80, "hostIP": "::1"},
        {"hostPort": 80, "containerPort": 80, "hostIP": "224.0.0.1"},
        {"hostPort": 80, "containerPort": 80, "hostIP": "nope"},
        "80:80",
    ],
)
def test_bad_port_mapping(mapping):
    assert code_of(p.parse_config, rc(portMappings=[mapping]), "ADD") == Code.INVALID_CONFIG


def test_port_mapped_twice_in_one_request():
    twice = [{"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 81, "hostIP": "127.0.0.1"}]
    assert code_of(p.parse_config, rc(portMappings=twice), "ADD") == Code.INVALID_CONFIG
    udp = [{"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 80, "protocol": "udp"}]
    assert len(p.parse_config(rc(portMappings=udp), "ADD").port_mappings) == 2


def test_runtime_config_only_read_by_add():
    bad = rc(portMappings="garbage", ips="x", mac="y")
    assert p.parse_config(bad, "DEL").port_mappings == ()


def test_ips():
    assert p.parse_config(rc(ips=["10.1.0.5/24"]), "ADD").ips == (p.StaticIP("10.1.0.5", 24),)
    assert p.parse_config(rc(ips=["10.1.0.5"]), "ADD").ips == (p.StaticIP("10.1.0.5", None),)
    for bad in (["fd00::5", "fd00::6/64"], ["10.1.0.5", "10.1.0.6"], ["x"], "10.1.0.5", [5]):
        assert code_of(p.parse_config, rc(ips=bad), "ADD") == Code.INVALID_CONFIG


def test_mac():
    assert p.parse_config(rc(mac="02:AA:bb:cc:dd:ee"), "ADD").mac == "02:aa:bb:cc:dd:ee"
    for bad in ("01:00:5e:00:00:01", "00:00:00:00:00:00", "02-aa-bb-cc-dd-ee", "02:aa:bb", 5):
        assert code_of(p.parse_config, rc(mac=bad), "ADD") == Code.INVALID_CONFIG


def test_gc_valid_attachments():
    c = p.parse_config(
        conf(cniVersion="1.1.0", **{p.VALID_ATTACHMENTS: [{"containerID": "a", "ifname": "eth0"}]}), "GC"
    )
    assert c.valid_attachments == (("a", "eth0"),)
    assert p.parse_config(conf(cniVersion="1.1.0"), "GC").valid_attachments == ()
    assert p.parse_config(conf(), "ADD").valid_attachments is None
    bad = conf(cniVersion="1.1.0", **{p.VALID_ATTACHMENTS: [{"containerID": "a"}]})
    assert code_of(p.parse_config, bad, "GC") == Code.INVALID_CONFIG


def test_prev_result_kept():
    assert p.parse_config(conf(prevResult={"ips": []}), "DEL").prev_result == {"ips": []}


# --- output documents ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "asked, answered", [("1.0.0", "1.0.0"), ("0.4.0", "0.4.0"), ("9.9.9", "1.1.0"), (None, "1.1.0")]
)
def test_version_report(asked, answered):
    data = json.dumps({"cniVersion": asked}) if asked else "garbage"
    doc = versions.version_report(data)
    assert doc == {"cniVersion": answered, "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


def test_error_document():
    err = CniError(Code.INVALID_CONFIG, "network 'x' not found", "more")
    assert p.error_document("1.0.0", err) == {
        "cniVersion": "1.0.0",
        "code": 7,
        "msg": "network 'x' not found",
        "details": "more",
    }
    assert p.error_document("garbage", CniError(1, "m"))["cniVersion"] == p.LATEST
    assert "details" not in p.error_document("0.4.0", CniError(1, "m"))


@pytest.mark.parametrize(
    "exc, code",
    [
        (ValidationError("v"), 7),
        (NotFound("n"), 7),
        (Conflict("c"), 101),
        (AllocationError("a"), 102),
        (PermissionDenied("p"), 104),
        (CommandFailed(("ip", "link"), 2, "RTNETLINK answers: File exists"), 100),
        (KeyboardInterrupt(), 11),
        (OSError(5, "Input/output error"), 5),
        (RuntimeError("bug"), 199),
    ],
)
def test_error_codes(exc, code):
    assert p.error_from(exc).code == code


def test_database_busy_is_try_again():
    import sqlite3

    assert p.error_from(sqlite3.OperationalError("database is locked")).code == Code.TRY_AGAIN_LATER


ATT = p.Attachment(
    bridge="cnet-abc",
    host_veth="cnetv123",
    ifname="net1",
    mac="02:42:0a:01:00:05",
    sandbox="/run/netns/x",
    ip="10.1.0.5",
    prefix_len=24,
    gateway="10.1.0.1",
    default_route=True,
    mtu=1500,
)


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_result_new_style(version):
    doc = p.result_document(version, ATT)
    assert doc["cniVersion"] == version
    assert doc["interfaces"][2]["name"] == "net1" and doc["interfaces"][2]["sandbox"] == "/run/netns/x"
    assert doc["ips"] == [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}]
    assert doc["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]
    assert doc["dns"] == {}
    assert ("mtu" in doc["interfaces"][2]) == (version == "1.1.0")


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_result_old_style_has_ip_version(version):
    doc = p.result_document(version, ATT)
    assert doc["ips"][0]["version"] == "4" and doc["cniVersion"] == version


DUAL = replace(ATT, ip6="fd00:1::5", prefix6_len=64, gateway6="fd00:1::1")


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_result_on_a_dual_stack_network_lists_both_addresses_and_routes(version):
    # The spec per version: entries carry "version" up to 0.4.0, none from 1.0.0 on.
    doc = p.result_document(version, DUAL)
    v4 = {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}
    v6 = {"address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 2}
    if version < "1.0.0":
        v4, v6 = {"version": "4", **v4}, {"version": "6", **v6}
    assert doc["ips"] == [v4, v6]
    assert doc["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0", "gw": "fd00:1::1"}]
    assert p.result_document(version, replace(DUAL, default_route=False))["routes"] == []
    assert p.result_document(version, ATT)["ips"] == [v4]  # an IPv4-only network: as before


def test_result_without_default_route():
    from dataclasses import replace

    assert p.result_document("1.0.0", replace(ATT, default_route=False))["routes"] == []


@pytest.mark.parametrize(
    "command, too_old, enough", [("CHECK", "0.3.1", "0.4.0"), ("GC", "1.0.0", "1.1.0"), ("STATUS", "1.0.0", "1.1.0")]
)
def test_newer_verbs_need_their_version(command, too_old, enough):
    assert code_of(p.parse_config, conf(cniVersion=too_old), command) == Code.INCOMPATIBLE_VERSION
    assert p.parse_config(conf(cniVersion=enough), command).cni_version == enough


def test_port_mappings_as_containerd_sends_them():
    # containerd 1.6 (go-cni): Go field names as keys, an empty HostIP (measured; see the CRI tests).
    sent = [{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]
    (m,) = p.parse_config(rc(portMappings=sent), "ADD").port_mappings
    assert (m.host_ip, m.host_port, m.container_port, m.protocol) == ("0.0.0.0", 18080, 80, "tcp")


def test_dns_from_runtime_config():
    sent = {"Servers": ["10.96.0.10"], "Searches": ["default.svc.cluster.local"], "Options": ["ndots:5"]}
    c = p.parse_config(rc(dns=sent), "ADD")
    assert c.dns == {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "options": ["ndots:5"]}
    assert p.result_document("1.0.0", ATT, c.dns)["dns"] == c.dns
    assert p.parse_config(rc(dns={"servers": [], "searches": None}), "ADD").dns is None
    assert p.parse_config(rc(dns=sent), "DEL").dns is None
    for bad in ({"Servers": ["dns.example"]}, {"Searches": "a.b"}, [1]):
        assert code_of(p.parse_config, rc(dns=bad), "ADD") == Code.INVALID_CONFIG


def test_static_addresses_one_per_family_and_ipv6_host_ips():
    """runtimeConfig.ips: at most one address of each family (ADD checks an IPv6 one against the
    network's IPv6 subnet); an IPv6 hostIP as `run -p [IPV6]:...` takes it."""
    ips = p.parse_config(rc(ips=["10.0.0.5/24", "fd00::5/64"]), "ADD").ips
    assert ips == (p.StaticIP("10.0.0.5", 24, 4), p.StaticIP("fd00::5", 64, 6))
    assert p.parse_config(rc(ips=["fd00::5"]), "ADD").ips == (p.StaticIP("fd00::5", None, 6),)
    for two in (["fd00::5", "fd00::6"], ["10.0.0.5", "10.0.0.6"]):
        with pytest.raises(CniError, match="addresses requested: a cnet attachment has one"):
            p.parse_config(rc(ips=two), "ADD")
    v6_host = [{"hostPort": 80, "containerPort": 80, "hostIP": "2001:DB8::1"}]
    (m,) = p.parse_config(rc(portMappings=v6_host), "ADD").port_mappings
    assert (m.host_ip, m.host_port) == ("2001:db8::1", 80)
    for bad, why in (("::1", "cannot DNAT to ::1"), ("::", "leave hostIP out"), ("fe80::1", "not a global unicast")):
        with pytest.raises(CniError, match=why):
            p.parse_config(rc(portMappings=[{"hostPort": 80, "containerPort": 80, "hostIP": bad}]), "ADD")
