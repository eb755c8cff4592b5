"""Every user-typed value is checked before anything changes; each error is one clear sentence."""

import re

import pytest

from cnet import exec_args, validate
from cnet.errors import ValidationError
from cnet.validate import PortSpec


# --- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["a", "0", "mynet1", "a.b_c-1", "Net.2", "a" * 64, "1-2-3"])
def test_valid_names(good):
    assert validate.name(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "badname!",
        "-x",
        "_x",
        ".x",
        "a/b",
        "a b",
        "$(reboot)",
        "x;rm -rf /",
        "ünïcode",
        "netž",
        "ｎｅｔ",
        "a\nb",
        "abc\n",
        "abc\x00",
        "a*",
        "../x",
    ],
)
def test_invalid_names(bad):
    with pytest.raises(ValidationError) as exc:
        validate.name(bad, "network name")
    msg = str(exc.value)
    assert msg.startswith("invalid network name ")
    assert "\n" not in msg or repr(bad) in msg  # the value is shown quoted (repr), never raw


def test_empty_name():
    with pytest.raises(ValidationError, match=r"^invalid network name: it is empty$"):
        validate.name("", "network name")


def test_name_too_long():
    with pytest.raises(ValidationError, match="at most 64 characters"):
        validate.name("a" * 65)


def test_name_error_is_one_line():
    with pytest.raises(ValidationError) as exc:
        validate.name("x;rm -rf /\nreboot", "network name")
    assert len(str(exc.value).splitlines()) == 1


# --- subnets ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, fragment",
    [
        ("10.0.0.0/33", "not an IPv4 CIDR"),
        ("10.0.0/24", "10.0.0/24"),
        ("abc", "expected CIDR notation"),
        ("abc/24", "not an IPv4 CIDR"),
        ("300.1.1.0/24", "not an IPv4 CIDR"),
        ("10.0.0.0", "expected CIDR notation"),
        ("", "expected CIDR notation"),
        ("10.0.0.0/-1", "not an IPv4 CIDR"),
        ("10.1.2.12/24", "host bits are set; did you mean 10.1.2.0/24?"),
        ("10.1.2.12/16", "did you mean 10.1.0.0/16?"),
        ("10.0.0.0/31", "a /31 has no room for a gateway and a container"),
        ("10.0.0.0/32", "a /32 has no room"),
        ("fd00::/64", "an IPv6 subnet needs --ipv6"),
        ("::/0", "an IPv6 subnet needs --ipv6"),
    ],
)
def test_invalid_network_subnets(value, fragment):
    with pytest.raises(ValidationError) as exc:
        validate.network_subnet(value)
    msg = str(exc.value)
    assert msg.startswith(f"invalid subnet {value!r}")
    assert fragment in msg
    assert len(msg.splitlines()) == 1


@pytest.mark.parametrize("value", ["10.0.0.0/30", "10.0.0.0/29", "175.50.0.0/24", "10.0.0.0/8", " 192.168.4.0/22 "])
def test_valid_network_subnets(value):
    assert str(validate.network_subnet(value)) == value.strip()


def test_plain_subnet_allows_small_prefix():
    # --ip-range may be a single address or a /31; only a network's own subnet needs room.
    assert str(validate.subnet("10.0.0.4/31", "ip range")) == "10.0.0.4/31"
    with pytest.raises(
        ValidationError, match=r"^invalid ip range '10\.0\.0\.5/30': host bits are set; did you mean 10\.0\.0\.4/30\?$"
    ):
        validate.subnet("10.0.0.5/30", "ip range")


@pytest.mark.parametrize("value", ["abc", "10.0.0", "10.0.0.256", "fd00::1", "10.0.0.0/24", ""])
def test_invalid_addresses(value):
    with pytest.raises(ValidationError, match=r"^invalid gateway "):
        validate.ipv4_address(value, "gateway")


def test_ipv6_address_where_ipv4_is_expected():
    with pytest.raises(ValidationError, match="an IPv6 address where IPv4 is expected"):
        validate.ipv4_address("::1", "gateway")


@pytest.mark.parametrize(
    "value, ok",
    [(576, True), (1500, True), (9000, True), (65535, True), (575, False), (0, False), (-1, False), (65536, False)],
)
def test_mtu(value, ok):
    if ok:
        assert validate.mtu(value) == value
    else:
        with pytest.raises(ValidationError, match=f"invalid MTU {value}"):
            validate.mtu(value)


# --- port specs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("0:80", "invalid host port '0': must be between 1 and 65535"),
        ("65536:80", "invalid host port '65536'"),
        ("80:0", "invalid container port '0'"),
        ("80:65536", "invalid container port '65536'"),
        ("abc:80", "invalid host port 'abc': not a number"),
        ("80:abc", "invalid container port 'abc'"),
        ("-1:80", "not a number"),
        ("8080", "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT"),
        ("", "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT"),
        ("1:2:3:4", "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT"),
        ("1.2.3:80:80", "'1.2.3': not an IPv4 address"),
        ("1.2.3.4.5:80:80", "not an IPv4 address"),
        ("localhost:80:80", "not an IPv4 address"),
        ("9090-9089:80", "host port range 9090-9089 ends before it starts"),
        ("80:91-90", "container port range 91-90 ends before it starts"),
        ("8000-8002:80-81", "host range has 3 ports, container range 2"),
        ("8000-8001:80", "host range has 2 ports, container range 1"),
        ("80:80/sctp", "protocol 'sctp' is not supported (tcp or udp)"),
        ("80:80/", "protocol '' is not supported"),
        ("\u00b2:80", "invalid host port '\u00b2': not a number"),
        ("80:\u0661\u0662", "invalid container port"),
        ("\uff18\uff10:80", "not a number"),
        ("255.255.255.255:8080:80", "host IP 255.255.255.255 is not a unicast address"),
        ("224.0.0.1:8080:80", "host IP 224.0.0.1 is not a unicast address"),
        ("240.0.0.1:8080:80", "not a unicast address"),
    ],
)
def test_invalid_port_specs(spec, fragment):
    with pytest.raises(ValidationError) as exc:
        validate.port_mapping(spec)
    msg = str(exc.value)
    assert fragment in msg
    assert len(msg.splitlines()) == 1


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("8085:80", [PortSpec("0.0.0.0", 8085, 80, "tcp")]),
        ("8085:80/tcp", [PortSpec("0.0.0.0", 8085, 80, "tcp")]),
        ("53:53/udp", [PortSpec("0.0.0.0", 53, 53, "udp")]),
        ("53:53/UDP", [PortSpec("0.0.0.0", 53, 53, "udp")]),
        ("127.0.0.1:8080:80", [PortSpec("127.0.0.1", 8080, 80, "tcp")]),
        ("10.1.2.3:9000:9000/udp", [PortSpec("10.1.2.3", 9000, 9000, "udp")]),
        (":8080:80", [PortSpec("0.0.0.0", 8080, 80, "tcp")]),
        ("0.0.0.0:8080:80", [PortSpec("0.0.0.0", 8080, 80, "tcp")]),
        ("1:65535", [PortSpec("0.0.0.0", 1, 65535, "tcp")]),
        (
            "8000-8002:9000-9002",
            [
                PortSpec("0.0.0.0", 8000, 9000, "tcp"),
                PortSpec("0.0.0.0", 8001, 9001, "tcp"),
                PortSpec("0.0.0.0", 8002, 9002, "tcp"),
            ],
        ),
        (
            "127.0.0.1:7000-7001:80-81/udp",
            [PortSpec("127.0.0.1", 7000, 80, "udp"), PortSpec("127.0.0.1", 7001, 81, "udp")],
        ),
        ("5000-5000:6000", [PortSpec("0.0.0.0", 5000, 6000, "tcp")]),
    ],
)
def test_valid_port_specs(spec, expected):
    assert validate.port_mapping(spec) == expected


def test_port_spec_render():
    assert PortSpec("127.0.0.1", 8085, 80, "tcp").render() == "127.0.0.1:8085->80/tcp"


# --- env, hostname ----------------------------------------------------------------------------
def test_env_pair():
    assert validate.env_pair("A=b=c") == ("A", "b=c")
    assert validate.env_pair("EMPTY=") == ("EMPTY", "")
    for bad in ["A", "1A=x", "A-B=x", "=x", "A\n=x"]:
        with pytest.raises(ValidationError):
            validate.env_pair(bad)


def test_hostname():
    assert validate.hostname("web-1.local") == "web-1.local"
    for bad in ["", "-x", "a b", "a_b", "a" * 64, "web\n", "$(id)"]:
        with pytest.raises(ValidationError):
            validate.hostname(bad)


# --- issue 15.4: integers in range, host IPs that are unicast addresses of this host -----------
def test_integer_and_seconds_ranges():
    from cnet import validate as v

    assert v.integer(5, "x", 1) == 5
    for bad in (0, -1, 2**63, 10**30):
        with pytest.raises(ValidationError, match="between 1 and"):
            v.integer(bad, "x", 1)
    assert v.seconds(0.0, "t") == 0.0
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValidationError, match="finite"):
            v.seconds(bad, "t")


def test_host_ip_must_be_a_unicast_address_of_this_host():
    from cnet import validate as v
    from cnet.kernel.parse import HostAddr

    addrs = [HostAddr("127.0.0.1", 8, None, True), HostAddr("10.0.0.1", 24, "10.0.0.255", False)]
    for ok in ("127.0.0.1", "127.0.0.2", "10.0.0.1"):
        v.host_ip_of_this_host(ok, addrs)
    for bad, why in [
        ("10.0.0.255", "broadcast"),
        ("10.0.0.0", "network address"),
        ("127.255.255.255", "broadcast"),
        ("127.0.0.0", "network address"),
        ("10.0.0.7", "not an address of this host"),
        ("192.0.2.1", "not an address of this host"),
    ]:
        with pytest.raises(ValidationError, match=why):
            v.host_ip_of_this_host(bad, addrs)


# --- first-day Docker habits (issue 10) ---------------------------------------------------------
@pytest.mark.parametrize(
    "args, command, env, workdir, user",
    [
        (["-it", "sh"], ("sh",), {}, None, None),
        (["-i", "-t", "sh", "-c", "ls -l"], ("sh", "-c", "ls -l"), {}, None, None),
        (
            ["-e", "A=1", "--env=B=2", "-w", "/tmp", "-u", "nobody", "id"],
            ("id",),
            {"A": "1", "B": "2"},
            "/tmp",
            "nobody",
        ),
        (["-itu0:0", "id"], ("id",), {}, None, "0:0"),
        (["-eA=1", "--", "-it"], ("-it",), {"A": "1"}, None, None),
        (["ls", "-it"], ("ls", "-it"), {}, None, None),  # after the command, everything is the command's
        (["--user", "1000", "--workdir", "/", "x"], ("x",), {}, "/", "1000"),
    ],
)
def test_exec_args_split_cnets_options_from_the_command(args, command, env, workdir, user):
    got = exec_args.exec_args(args)
    assert (got.command, got.env, got.workdir, got.user) == (command, env, workdir, user)


@pytest.mark.parametrize(
    "args, match",
    [([], "needs a command"), (["-it"], "needs a command"), (["-e"], "needs a value"), (["-w", "rel", "x"], "absolute"),
     (["-ix", "sh"], "unknown option -x"), (["-e", "1=2", "x"], "environment variable")],
)  # fmt: skip
def test_exec_args_errors(args, match):
    with pytest.raises(ValidationError, match=match):
        exec_args.exec_args(args)


def test_ps_filters_and_labels():
    assert validate.ps_filter("label=a=b") == ("label", "a=b")
    assert validate.ps_filter("status=exited") == ("status", "exited")
    for bad in ("nope=1", "status=dead", "name=", "name"):
        with pytest.raises(ValidationError):
            validate.ps_filter(bad)
    assert validate.labels(["a=1", "b", "c.d/e=x=y"]) == {"a": "1", "b": "", "c.d/e": "x=y"}
    with pytest.raises(ValidationError, match="invalid label"):
        validate.label("=x")


def test_run_networks_default_and_none():
    base = dict(name=None, ports=[], ip=None, hostname=None, env=[], command=[])
    assert validate.run_request(networks=[], **base).networks == (validate.DEFAULT_NETWORK,)
    assert validate.run_request(networks=["none"], **base).networks == ()
    with pytest.raises(ValidationError, match="none"):
        validate.run_request(networks=["none", "n1"], **base)
    with pytest.raises(ValidationError, match="needs a network"):
        validate.run_request(networks=["none"], **base | {"ports": ["80:80"]})
    with pytest.raises(ValidationError, match="--ip needs a network"):  # not on the default network (Docker)
        validate.run_request(networks=[], **base | {"ip": "10.0.0.5"})
    req = validate.run_request(networks=["n1"], labels=["a=1"], aliases=["db", "db"], **base)
    assert req.labels == {"a": "1"} and req.aliases == ("db",)


# --- IPv6 (dual-stack networks) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, ipv6, fragment",
    [
        (["fd00::/64"], False, "an IPv6 subnet needs --ipv6"),
        (["10.1.0.0/24"], True, "--ipv6 needs an IPv6 --subnet"),
        (["fd00::/64", "fd01::/64"], True, "only one IPv6 --subnet"),
        (["10.1.0.0/24", "10.2.0.0/24"], False, "only one IPv4 --subnet"),
        (["fd00::/127"], True, "/127 has no room"),
        (["fd00::/128"], True, "/128 has no room"),
        (["fd00::1/64"], True, "host bits are set; did you mean fd00::/64?"),
        (["fe80::/64"], True, "link-local range"),
        (["ff02::/64"], True, "multicast range"),
        (["::1/128"], True, "loopback address"),
        (["::ffff:0:0/104"], True, "IPv4-mapped range"),
        (["fd00::"], True, "expected CIDR notation"),
        (["fd00::/200"], True, "not an IPv6 CIDR"),
    ],
)
def test_bad_subnet_pairs(values, ipv6, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        validate.subnets(values, ipv6)


def test_dual_stack_subnets_in_either_order():
    v4, v6 = validate.subnets(["fd00:1::/64", "10.1.0.0/24"], True)
    assert (str(v4), str(v6)) == ("10.1.0.0/24", "fd00:1::/64")
    assert validate.subnets(["fd00:1::/126"], True)[0] is None  # IPv4 then comes from the pools
    assert validate.subnets([], False) == (None, None)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("[::1]:8080:80", "cannot DNAT to ::1"),
        ("[::]:8080:80", "leave the host IP out"),
        ("[fe80::1]:8080:80", "global unicast"),
        ("[ff02::1]:8080:80", "global unicast"),
        ("[2001:db8::1]:8080", "expected [IPV6]"),
        ("[2001:db8::1:8080:80", "expected [IPV6]"),
        ("[10.0.0.1]:8080:80", "not an IPv6 address"),
        ("[2001:db8::1]:0:80", "between 1 and 65535"),
    ],
)
def test_bad_ipv6_port_mappings(spec, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        validate.port_mapping(spec)


def test_ipv6_port_mapping():
    assert validate.port_mapping("[2001:DB8::1]:8080-8081:80-81/udp") == [
        PortSpec("2001:db8::1", 8080, 80, "udp"),
        PortSpec("2001:db8::1", 8081, 81, "udp"),
    ]


def test_ip6_in_run_request():
    req = validate.run_request(
        name=None, networks=["d"], ports=[], ip=None, hostname=None, env=[], command=[], ip6="fd00::5"
    )
    assert req.ip6 == "fd00::5"
    with pytest.raises(ValidationError, match="--ip6 needs a network"):
        validate.run_request(
            name=None, networks=[], ports=[], ip=None, hostname=None, env=[], command=[], ip6="fd00::5"
        )
    with pytest.raises(ValidationError, match="not an IPv6 address"):
        validate.run_request(
            name=None, networks=["d"], ports=[], ip=None, hostname=None, env=[], command=[], ip6="10.0.0.5"
        )
