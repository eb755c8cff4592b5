"""Kernel builders are pure: they return argv tuples (and batch stdin), compared here exactly."""

import shlex
import subprocess

import pytest

from cnet import naming
from cnet.commands import HEREDOC_END, Command, Plan, Step, cmd
from cnet.kernel import ip as ipk
from cnet.kernel import iptables as ipt
from cnet.kernel import netns as nsk
from cnet.records import Direction


# --- ip.py ------------------------------------------------------------------------------------
def test_bridge_create_is_one_batch_with_link_del_undo():
    step = ipk.bridge_create("cnet-0123456789", "10.5.0.1", 24, 1400, "0a:01:23:45:67:89")
    assert step.do.argv == ("ip", "-batch", "-")
    assert step.do.stdin == (
        # Its own MAC: otherwise it copies its lowest port's and changes it when that port leaves.
        "link add name cnet-0123456789 address 0a:01:23:45:67:89 mtu 1400 type bridge\n"
        "addr add 10.5.0.1/24 dev cnet-0123456789\n"
        "link set cnet-0123456789 up\n"
    )
    assert [u.argv for u in step.undo] == [("ip", "link", "del", "cnet-0123456789")]
    assert all(u.stdin is None for u in step.undo)


def test_bridge_delete_has_no_undo():
    step = ipk.bridge_delete("cnet-abc")
    assert step.do.argv == ("ip", "link", "del", "cnet-abc")
    assert step.undo == ()


def test_batch_in_netns_and_force():
    c = ipk.batch(["link set lo up"], netns="cnet-x", force=True)
    assert c.argv == ("nsenter", "--net=/run/netns/cnet-x", "ip", "-force", "-batch", "-")
    assert c.stdin == "link set lo up\n"


def test_netns_add_and_del():
    step = ipk.netns_add("cnet-aaaaaaaaaaaa")
    assert step.do.argv == ("ip", "netns", "add", "cnet-aaaaaaaaaaaa")
    assert [u.argv for u in step.undo] == [("ip", "netns", "del", "cnet-aaaaaaaaaaaa")]


def test_sysctl_steps():
    assert ipk.route_localnet("cnet-b").do.argv == (
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.cnet-b.route_localnet=1",
    )
    on = ipk.ip_forward(True, "0")
    assert on.do.argv == ("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    assert [u.argv for u in on.undo] == [("sysctl", "-q", "-w", "net.ipv4.ip_forward=0")]
    off = ipk.ip_forward(False, "0")
    assert off.do.argv == ("sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    assert off.undo == ()
    # One value written or not: a failed write changed nothing, a rollback has nothing to undo.
    assert on.atomic and off.atomic and ipk.route_localnet("cnet-b").atomic


def test_bridge_set_mac():
    assert ipk.bridge_set_mac("cnet-b", "0a:00:00:00:00:01").do.argv == (
        "ip",
        "link",
        "set",
        "dev",
        "cnet-b",
        "address",
        "0a:00:00:00:00:01",
    )


def test_bridge_mac_is_local_unicast_and_follows_the_bridge_name():
    from cnet import naming

    mac = naming.bridge_mac("0123456789ab")
    assert mac == "0a:01:23:45:67:89" and naming.bridge_name("0123456789ab") == "cnet-0123456789"
    first = int(mac[:2], 16)
    assert first & 0b10 and not first & 0b01  # locally administered, unicast
    assert not mac.startswith("02:42:")  # never a container's MAC (ip.mac_for_ip)


def test_endpoint_host_side_batch():
    step = ipk.endpoint_host_side(
        netns="cnet-c1",
        host_veth="cnetvabc",
        interface="eth0",
        bridge="cnet-b",
        mtu=1500,
        mac="02:42:0a:05:00:02",
        create_netns=True,
    )
    assert step.do.argv == ("ip", "-batch", "-")
    assert step.do.stdin.splitlines() == [
        "netns add cnet-c1",
        "link add name cnetvabc mtu 1500 type veth peer name eth0 mtu 1500 address 02:42:0a:05:00:02 netns cnet-c1",
        "link set cnetvabc master cnet-b",
        "link set dev cnetvabc type bridge_slave hairpin on",
        "link set cnetvabc up",
    ]
    # Undo in the order that works: the veth first, then the namespace.
    assert [u.argv for u in step.undo] == [("ip", "link", "del", "cnetvabc"), ("ip", "netns", "del", "cnet-c1")]
    again = ipk.endpoint_host_side(
        netns="cnet-c1",
        host_veth="cnetvabc",
        interface="eth1",
        bridge="cnet-b",
        mtu=1500,
        mac="02:42:0a:05:00:02",
        create_netns=False,
    )
    assert "netns add" not in again.do.stdin
    assert [u.argv for u in again.undo] == [("ip", "link", "del", "cnetvabc")]


def test_endpoint_host_side_seeds_the_hosts_neighbour_entries():
    """The host knows a new endpoint's MAC at once (STALE, as if learnt): its first packet to it
    needs no ARP broadcast flooded to every port. Cache, not configuration: no undo of its own."""
    step = ipk.endpoint_host_side(
        netns="cnet-c1", host_veth="cnetvabc", interface="eth0", bridge="cnet-b", mtu=1500,
        mac="02:42:0a:05:00:02", create_netns=False, ip="10.5.0.2", ip6="fd00:5::2",
    )  # fmt: skip
    assert step.do.stdin.splitlines()[-2:] == [
        "neigh replace 10.5.0.2 lladdr 02:42:0a:05:00:02 dev cnet-b nud stale",
        "neigh replace fd00:5::2 lladdr 02:42:0a:05:00:02 dev cnet-b nud stale",
    ]
    assert [u.argv for u in step.undo] == [("ip", "link", "del", "cnetvabc")]


def test_endpoint_container_side_batch():
    step = ipk.endpoint_container_side(
        netns="cnet-c1", interface="eth0", ip="10.5.0.2", prefix_len=24, gateway="10.5.0.1", loopback=True
    )
    assert step.do.argv == ("nsenter", "--net=/run/netns/cnet-c1", "ip", "-batch", "-")
    assert step.do.stdin.splitlines() == [
        "link set lo up",
        "addr add 10.5.0.2/24 dev eth0",
        "link set eth0 up",
        "route add default via 10.5.0.1 dev eth0",
    ]


def test_mac_for_ip():
    assert ipk.mac_for_ip("10.5.0.2") == "02:42:0a:05:00:02"
    assert ipk.mac_for_ip("175.50.255.254") == "02:42:af:32:ff:fe"


# --- naming.py --------------------------------------------------------------------------------
def test_kernel_names_fit_and_start_with_cnet():
    nid = naming.new_id()
    assert naming.ID_RE.match(nid)
    assert naming.bridge_name(nid) == "cnet-" + nid[:10]
    assert len(naming.bridge_name(nid).encode()) <= 15
    veth = naming.host_veth_name("a" * 12, "b" * 12)
    assert veth.startswith("cnetv") and len(veth) == 15
    assert veth != naming.host_veth_name("a" * 12, "c" * 12)
    assert naming.netns_path("a" * 12) == "/run/netns/cnet-" + "a" * 12


# --- iptables.py ------------------------------------------------------------------------------
def test_rule_argv_and_line():
    r = ipt.Rule("nat", "CNET-POSTROUTING", ("-s", "10.5.0.0/24", "-j", "MASQUERADE"))
    assert r.argv("-D") == (
        "iptables",
        "-w",
        "-t",
        "nat",
        "-D",
        "CNET-POSTROUTING",
        "-s",
        "10.5.0.0/24",
        "-j",
        "MASQUERADE",
    )
    assert r.line("-A") == "-A CNET-POSTROUTING -s 10.5.0.0/24 -j MASQUERADE"


@pytest.mark.parametrize("bad", ["", "a b", "a\tb", "x\ny", 'a"b', "a'b", "a\\b", "#c", "cnet:net:x y"])
def test_rule_rejects_unsafe_args(bad):
    with pytest.raises(ValueError, match="unsafe iptables argument"):
        ipt.Rule("filter", "CNET-FORWARD", ("-m", "comment", "--comment", bad, "-j", "ACCEPT"))


def test_network_rules_exact():
    rules = ipt.network_rules(name="n1", bridge="cnet-b", subnet="10.5.0.0/24", internal=False)
    c = ("-m", "comment", "--comment", "cnet:net:n1")
    assert rules == [
        ipt.Rule("filter", "CNET-ISOLATION-1", ("-i", "cnet-b", "!", "-o", "cnet-b") + c + ("-j", "CNET-ISOLATION-2")),
        ipt.Rule("filter", "CNET-ISOLATION-2", ("-o", "cnet-b") + c + ("-j", "DROP")),
        ipt.Rule("filter", "CNET-FORWARD", ("-i", "cnet-b", "-o", "cnet-b") + c + ("-j", "ACCEPT")),
        ipt.Rule(
            "filter",
            "CNET-FORWARD",
            ("-o", "cnet-b", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED") + c + ("-j", "ACCEPT"),
        ),
        ipt.Rule(
            "filter", "CNET-FORWARD", ("-o", "cnet-b", "-m", "conntrack", "--ctstate", "DNAT") + c + ("-j", "ACCEPT")
        ),
        ipt.Rule("filter", "CNET-FORWARD", ("-i", "cnet-b") + c + ("-j", "ACCEPT")),
        ipt.Rule("filter", "CNET-FORWARD", ("-o", "cnet-b") + c + ("-j", "DROP")),
        ipt.Rule("nat", "CNET-POSTROUTING", ("-s", "10.5.0.0/24", "!", "-o", "cnet-b") + c + ("-j", "MASQUERADE")),
        ipt.Rule("nat", "CNET-POSTROUTING", ("-s", "127.0.0.0/8", "-o", "cnet-b") + c + ("-j", "MASQUERADE")),
        ipt.Rule(
            "nat",
            "CNET-POSTROUTING",
            ("-s", "10.5.0.0/24", "-d", "10.5.0.0/24", "-o", "cnet-b", "-m", "conntrack", "--ctstate", "DNAT")
            + c
            + ("-j", "MASQUERADE"),
        ),
    ]


def test_internal_network_has_no_masquerade():
    rules = ipt.network_rules(name="n1", bridge="cnet-b", subnet="10.5.0.0/24", internal=True)
    assert not [r for r in rules if "MASQUERADE" in r.spec]
    assert {r.table for r in rules} == {"filter"}
    c = ("-m", "comment", "--comment", "cnet:net:n1")
    assert rules == [
        ipt.Rule("filter", "CNET-ISOLATION-1", ("-i", "cnet-b", "!", "-o", "cnet-b") + c + ("-j", "DROP")),
        ipt.Rule("filter", "CNET-ISOLATION-1", ("!", "-i", "cnet-b", "-o", "cnet-b") + c + ("-j", "DROP")),
        ipt.Rule("filter", "CNET-FORWARD", ("-i", "cnet-b", "-o", "cnet-b") + c + ("-j", "ACCEPT")),
    ]


def test_isolation_stage_one_holds_only_drops_and_stage_two_jumps():
    """Stage 1's verdict cannot depend on rule order (so on creation order) only if every rule in it
    is a DROP or a jump into stage 2, and the DNAT exception lives in stage 2."""
    rules = ipt.base_rules()
    for internal in (False, True):
        rules += ipt.network_rules(name="n", bridge="cnet-b", subnet="10.5.0.0/24", internal=internal)
    stage1 = [r for r in rules if r.chain == "CNET-ISOLATION-1"]
    assert stage1 and all(r.spec[-1] in ("DROP", "CNET-ISOLATION-2") for r in stage1)
    assert (
        next(r for r in rules if "DNAT" in r.spec and r.table == "filter" and "RETURN" in r.spec).chain
        == "CNET-ISOLATION-2"
    )


def test_port_rule():
    [r] = ipt.port_rules(
        container_id="c" * 12,
        host_ip="127.0.0.1",
        host_port=8085,
        container_ip="10.5.0.2",
        container_port=80,
        protocol="tcp",
    )
    assert r.argv("-A") == (
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "CNET-DNAT",
        "-d",
        "127.0.0.1/32",
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        "8085",
        "-m",
        "comment",
        "--comment",
        "cnet:ctr:" + "c" * 12,
        "-j",
        "DNAT",
        "--to-destination",
        "10.5.0.2:80",
    )
    [any_ip] = ipt.port_rules(
        container_id="c" * 12, host_ip=None, host_port=53, container_ip="10.5.0.2", container_port=53, protocol="udp"
    )
    assert "-d" not in any_ip.spec and any_ip.spec[:4] == ("-p", "udp", "-m", "udp")


def test_rules_add_is_one_restore_with_exact_undo():
    rules = ipt.network_rules(name="n1", bridge="cnet-b", subnet="10.5.0.0/24", internal=False)
    step = ipt.rules_add(rules, "x")
    assert step.do.argv == ("iptables-restore", "-w", "--noflush")
    lines = step.do.stdin.splitlines()
    # Tables in raw, nat, filter order, each one transaction.
    assert lines[0] == "*nat" and lines.count("COMMIT") == 2 and lines[lines.index("COMMIT") + 1] == "*filter"
    assert [ln for ln in lines if ln.startswith("-A")] == [
        r.line("-A") for t in ("nat", "filter") for r in rules if r.table == t
    ]
    [undo] = step.undo
    assert undo.argv == ("iptables-restore", "-w", "--noflush")
    assert undo.stdin == step.do.stdin.replace("-A ", "-D ")


def test_base_create_and_delete():
    step = ipt.base_create()
    assert step.do.argv == ("iptables-restore", "-w", "--noflush")
    assert step.do.stdin.splitlines() == [
        "*raw",
        ":CNET-PREROUTING - [0:0]",
        "-A CNET-PREROUTING -d 127.0.0.0/8 ! -i lo -m comment --comment cnet:base -j DROP",
        "-I PREROUTING 1 -m comment --comment cnet:base -j CNET-PREROUTING",
        "COMMIT",
        "*nat",
        ":CNET-DNAT - [0:0]",
        ":CNET-POSTROUTING - [0:0]",
        "-I PREROUTING 1 -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
        "-I OUTPUT 1 -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
        "-I POSTROUTING 1 -m comment --comment cnet:base -j CNET-POSTROUTING",
        "COMMIT",
        "*filter",
        ":CNET-FORWARD - [0:0]",
        ":CNET-ISOLATION-1 - [0:0]",
        ":CNET-ISOLATION-2 - [0:0]",
        "-A CNET-FORWARD -m comment --comment cnet:base -j CNET-ISOLATION-1",
        "-A CNET-ISOLATION-2 -m conntrack --ctstate DNAT -m comment --comment cnet:base -j RETURN",
        "-I FORWARD 1 -m comment --comment cnet:base -j CNET-FORWARD",
        "COMMIT",
    ]
    [undo] = step.undo
    assert undo == ipt.base_delete_command()
    assert not step.atomic  # one transaction per table: a later table may fail after an earlier one
    assert undo.stdin.splitlines() == [
        "*raw",
        "-D PREROUTING -m comment --comment cnet:base -j CNET-PREROUTING",
        "-F CNET-PREROUTING",
        "-X CNET-PREROUTING",
        "COMMIT",
        "*nat",
        "-D PREROUTING -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
        "-D OUTPUT -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
        "-D POSTROUTING -m comment --comment cnet:base -j CNET-POSTROUTING",
        "-F CNET-DNAT",
        "-F CNET-POSTROUTING",
        "-X CNET-DNAT",
        "-X CNET-POSTROUTING",
        "COMMIT",
        "*filter",
        "-D FORWARD -m comment --comment cnet:base -j CNET-FORWARD",
        "-F CNET-FORWARD",
        "-F CNET-ISOLATION-1",
        "-F CNET-ISOLATION-2",
        "-X CNET-FORWARD",
        "-X CNET-ISOLATION-1",
        "-X CNET-ISOLATION-2",
        "COMMIT",
    ]


def test_single_deletes():
    rules = ipt.network_rules(name="n1", bridge="cnet-b", subnet="10.5.0.0/24", internal=True)
    assert [c.argv for c in ipt.single_deletes(rules)] == [r.argv("-D") for r in rules]


def test_every_chain_name_is_cnet_prefixed_and_short():
    for chains in ipt.BASE_CHAINS.values():
        for c in chains:
            assert c.startswith("CNET-") and len(c) <= 28


# --- netns.py ---------------------------------------------------------------------------------
def test_launch_argv():
    argv = nsk.launch_argv(
        container_id="a" * 12,
        hostname="web",
        hosts_file="/var/lib/cnet/containers/x/hosts",
        resolv_file="/var/lib/cnet/containers/x/resolv.conf",
        command=["python3", "-m", "http.server", "80"],
        python="/usr/bin/python3",
        pythonpath="/opt/cnet",
        state_dir="/var/lib/cnet",
        reap_log="/var/lib/cnet/r.log",
        env_file="/var/lib/cnet/env",
    )
    assert argv == [
        "unshare",
        "--pid",
        "/bin/sh",
        "-c",
        nsk.WATCH_SCRIPT,
        "cnet-watch",
        "/usr/bin/python3",
        "/opt/cnet",
        "/var/lib/cnet",
        "a" * 12,
        "/var/lib/cnet/r.log",
        "/run/netns/cnet-" + "a" * 12,
        nsk.INIT_SCRIPT,
        "0",  # back-off: 0 = started by a cnet command
        "",  # no mount namespace template: a copy of the host's
        "web",
        "/var/lib/cnet/containers/x/hosts",
        "/var/lib/cnet/containers/x/resolv.conf",
        "/var/lib/cnet/env",
        "python3",
        "-m",
        "http.server",
        "80",
    ]
    with_template = nsk.launch_argv(
        container_id="a" * 12,
        hostname="web",
        hosts_file="h",
        resolv_file="r",
        command=["true"],
        python="p",
        pythonpath="pp",
        state_dir="/var/lib/cnet",
        reap_log="l",
        env_file="e",
        template="/var/lib/cnet/mntns/template",
    )
    assert with_template[12:16] == [nsk.INIT_SCRIPT, "0", "/var/lib/cnet/mntns/template", "web"]


def test_watch_script_enters_the_template_only_when_given(tmp_path):
    # The nsenter line as the watcher runs it, with `nsenter` a function that prints its
    # arguments: an empty template adds no argument (not even an empty one), a given one adds
    # --mount=PATH; the working directory passed on is the watcher's.
    line = nsk.WATCH_SCRIPT.split("exec 5<&0 6>&1 7>&2; ", 1)[1].split(" unshare ", 1)[0]
    script = 'nsenter() { printf "[%s]" "$@"; echo; }; ' + line + '; echo "$wd"'
    for tmpl, expect in (("", "[--net=/run/netns/x]"), ("/s/mntns/t", "[--net=/run/netns/x][--mount=/s/mntns/t]")):
        out = subprocess.run(
            ["/bin/sh", "-c", f'ns=/run/netns/x tmpl="$1"; {script}', "w", tmpl],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        assert out.stdout == f"{expect}\n{tmp_path}\n"
    assert 'env -i --default-signal=INT,QUIT CNET_WD="$wd" /bin/sh' in nsk.WATCH_SCRIPT


def test_init_script_goes_to_the_watchers_directory_or_to_root(tmp_path):
    # Inside the template's copy the watcher's directory may be missing (a mount the template did
    # not get): the container then starts in /, as it must start at all; neither CNET_WD nor the
    # OLDPWD that cd exports is passed on (the program sees exactly its environment).
    cd_part = nsk.INIT_SCRIPT.split('echo "$1"', 1)[0]
    for wd, expect in ((str(tmp_path), str(tmp_path)), (str(tmp_path / "gone"), "/")):
        out = subprocess.run(
            ["/bin/sh", "-c", cd_part + 'pwd; echo "[${CNET_WD-unset}${OLDPWD-unset}]"'],
            env={"CNET_WD": wd, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout == f"{expect}\n[unsetunset]\n"


def test_mount_template_step():
    step = nsk.mount_template_step("/var/lib/cnet")
    assert step.do.argv == (
        "flock",
        "/var/lib/cnet/mntns.lock",
        "/bin/sh",
        "-c",
        nsk.MOUNT_TEMPLATE_SCRIPT,
        "cnet-template",
        "/var/lib/cnet/mntns",
        "/var/lib/cnet/mntns/template",
        "/run/netns",
    )
    assert step.undo == () and step.do.stdin is None  # kept: see the builder's docstring
    assert nsk.mount_template_paths("/s") == ("/s/mntns/template", "/s/mntns/template.ready", "/s/mntns.lock")
    script = nsk.MOUNT_TEMPLATE_SCRIPT
    # Already made and without a mount on /run/netns: nothing to do; else made (again), after
    # its folder is a private mount; slave of the host's mounts; every /run/netns mount gone.
    assert script.index("pins || {") < script.index("mount --bind")
    assert 'mount --make-private "$d"' in script
    assert 'unshare --mount="$t" --propagation slave' in script
    assert 'while umount -l "$1" 2>/dev/null; do :; done' in script
    # The ready mark: gone before the template is made, written only when it is found clean.
    assert script.index('rm -f "$t.ready"') < script.index('mount --bind "$d" "$d"')
    assert script.count('! pins && { : > "$t.ready"; exit 0; }') == 1
    assert script.count('pins || { : > "$t.ready"; exit 0; }') == 1


def test_init_script_mounts_the_names_files_over_the_hosts_own():
    # The container's own files, bound over /etc/hosts and /etc/resolv.conf, each guarded: a
    # failed mount stops the start (exit 125) rather than leave the host's files in view.
    script = nsk.INIT_SCRIPT
    assert 'mount --bind "$2" /etc/hosts || exit 125' in script
    assert 'mount --bind "$3" /etc/resolv.conf || exit 125' in script
    assert script.index("mount --bind") < script.index('exec "$@"')


def test_init_script_turns_router_advertisements_off(tmp_path):
    # After the hostname (whose failure still stops the start), before the bind mounts; run here
    # on a copy of the conf directory: every file of all, default and each interface becomes 0,
    # other settings stay, a missing directory (no IPv6 on the host) is no error and prints nothing.
    script = nsk.INIT_SCRIPT
    assert script.index("kernel/hostname || exit 125") < script.index(nsk.IPV6_SYSCTLS) < script.index("mount")
    assert nsk.IPV6_SYSCTLS in script and "exit" not in nsk.IPV6_SYSCTLS
    conf = tmp_path / "conf"
    for dev in ("all", "default", "lo", "eth0"):
        (conf / dev).mkdir(parents=True)
        for key in ("accept_ra", "accept_dad", "forwarding"):
            (conf / dev / key).write_text("1\n")
    fragment = nsk.IPV6_SYSCTLS.replace(nsk.IPV6_CONF, str(conf))
    out = subprocess.run(["/bin/sh", "-c", fragment + "echo started"], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "started\n", "")
    for dev in ("all", "default", "lo", "eth0"):
        assert [(conf / dev / k).read_text() for k in ("accept_ra", "accept_dad", "forwarding")] == [
            "0\n",
            "0\n",
            "1\n",
        ]
    missing = nsk.IPV6_SYSCTLS.replace(nsk.IPV6_CONF, str(tmp_path / "absent"))
    out = subprocess.run(["/bin/sh", "-c", missing + "echo started"], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "started\n", "")


def test_watch_script_never_forks_after_the_container_exits():
    # A PID namespace whose init has died refuses fork(): after `wait` only builtins and exec.
    after_wait = nsk.WATCH_SCRIPT.split("wait $pid1", 1)[1]
    assert after_wait.count("exec ") == 1 and "$(" not in after_wait and "|" not in after_wait


def test_enter_argv():
    assert nsk.enter_argv(42, ["ip", "a"]) == [
        "nsenter",
        "--target",
        "42",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--pid",
        "ip",
        "a",
    ]
    assert nsk.enter_hint(42) == "nsenter --target 42 --mount --uts --ipc --net --pid"
    assert nsk.enter_argv(42, ["env"], "/s/env")[8:] == [
        "env",
        "-i",
        "/bin/sh",
        "-c",
        nsk.ENV_LOADER,
        "cnet-exec",
        "/s/env",
        "env",
    ]


def test_env_file_gives_the_program_exactly_its_environment(tmp_path):
    # Sourced by the init shell started with `env -i`: the program sees these variables and no
    # other (not even the PWD dash exports by itself), values byte for byte.
    env = {"PATH": "/opt/app/bin:/usr/bin:/bin", "LD_PRELOAD": "", "Q": 'it\'s "q" $(x) `y`\nline2', "PWD": "/w"}
    f = tmp_path / "env"
    f.write_text(nsk.env_file_text(env))
    out = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", nsk.ENV_LOADER, "cnet-exec", str(f), "/usr/bin/env", "-0"],
        capture_output=True,
        check=True,
    )
    got = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if item)
    assert got == env


def test_init_script_passes_user_args_verbatim(tmp_path):
    # The user's command is positional parameters: a shell metacharacter stays a literal argument.
    marker = tmp_path / "pwned"
    out = subprocess.run(
        [
            "/bin/sh",
            "-c",
            # Only the tail: the hostname and the bind mounts belong in a container, not on this host.
            "shift 3; " + nsk.INIT_SCRIPT.split("shift 3; ", 1)[1],
            "cnet-init",
            "host",
            "/nonexistent/hosts",
            "/nonexistent/resolv.conf",
            "/dev/null",
            "printf",
            "%s|",
            f"$(touch {marker})",
            "a b",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"$(touch {marker})|a b|"
    assert not marker.exists()


# --- commands.py ------------------------------------------------------------------------------
def test_command_requires_str_argv():
    with pytest.raises(TypeError):
        Command(())
    with pytest.raises(TypeError):
        Command(("ip", 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Command(("cat",), f"x\n{HEREDOC_END}\ny\n")


@pytest.mark.parametrize(
    "argv",
    [
        ("ip", "link", "del", "cnet-x"),
        ("echo", "a b", "$(reboot)", "x;rm -rf /", "it's", '"q"', "`id`", "", "*"),
    ],
)
def test_render_quotes_with_shlex(argv):
    line = cmd(*argv).render()
    assert line == shlex.join(argv)
    assert tuple(shlex.split(line)) == argv


def test_render_roundtrips_through_sh():
    argv = ("printf", "%s\\n", "a b", "$(echo no)", "x;y", "it's")
    out = subprocess.run(["/bin/sh", "-c", cmd(*argv).render()], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["a b", "$(echo no)", "x;y", "it's"]


def test_render_heredoc_is_quoted_and_literal():
    c = cmd("cat", stdin="$HOME `id` $(x)\nline2")
    assert c.render() == f"cat <<'{HEREDOC_END}'\n$HOME `id` $(x)\nline2\n{HEREDOC_END}"
    out = subprocess.run(["/bin/sh", "-c", c.render()], capture_output=True, text=True, check=True)
    assert out.stdout == "$HOME `id` $(x)\nline2\n"


def test_command_json_roundtrip():
    c = cmd("ip", "-batch", "-", stdin="link set lo up\n")
    assert Command.from_json(c.to_json()) == c
    step = Step("s", c, undo=(cmd("ip", "link", "del", "x"),))
    assert step.undo_json() == '[{"argv": ["ip", "link", "del", "x"], "stdin": null}]'
    assert step.fallback_json() == "[]"


def test_plan_as_shell_script_format():
    plan = Plan()
    plan.add(Step("first thing", cmd("ip", "link", "del", "a b")))
    plan.add(None)  # ignored
    plan.add(Step("second", cmd("iptables-restore", "--noflush", stdin="*nat\nCOMMIT\n")))
    assert len(plan) == 2
    assert plan.as_shell_script("title here") == (
        "#!/bin/sh\n"
        "set -e\n"
        "# title here\n"
        "# step: first thing\n"
        "ip link del 'a b'\n"
        "# step: second\n"
        f"iptables-restore --noflush <<'{HEREDOC_END}'\n"
        "*nat\n"
        "COMMIT\n"
        f"{HEREDOC_END}\n"
    )
    assert Plan().as_shell_script() == "#!/bin/sh\nset -e\n"


def test_plan_script_runs_and_stops_at_first_failure(tmp_path):
    log = tmp_path / "log"
    plan = Plan()
    plan.add(Step("one", cmd("sh", "-c", f"echo one >> {log}")))
    plan.add(Step("fail", cmd("false")))
    plan.add(Step("never", cmd("sh", "-c", f"echo never >> {log}")))
    res = subprocess.run(["/bin/sh", "-c", plan.as_shell_script()])
    assert res.returncode != 0
    assert log.read_text() == "one\n"


def test_teardown_plan_suffix_goes_after_the_heredoc_marker():
    plan = Plan(direction=Direction.DESTROY)
    plan.add(Step("a", cmd("ip", "link", "del", "x")))
    plan.add(Step("b", cmd("iptables-restore", "--noflush", stdin="*nat\nCOMMIT\n")))
    script = plan.as_shell_script()
    assert script.splitlines()[3] == "ip link del x || true"
    assert f"iptables-restore --noflush <<'{HEREDOC_END}' || true\n*nat\nCOMMIT\n{HEREDOC_END}\n" in script
    # Runs to the end under set -e although every command fails.
    fake = script.replace("ip link del x", "false").replace(
        "iptables-restore --noflush", "sh -c 'cat >/dev/null; exit 1'"
    )
    assert (
        subprocess.run(["/bin/sh", "-c", fake + "echo reached\n"], capture_output=True, text=True).stdout == "reached\n"
    )


def test_base_create_adopts_leftover_jumps_without_duplicating_them():
    """The database was lost, the kernel kept cnet's rules: a built-in chain holding exactly the
    jump keeps it; one holding it twice (or an other cnet rule) gets exactly one again."""
    jumps = {(j.table, j.chain): j for j in ipt.base_jumps()}
    raw = jumps[("raw", "PREROUTING")]
    fwd = jumps[("filter", "FORWARD")]
    stale = ("-m", "comment", "--comment", "cnet:base", "-j", "CNET-OLD")
    leftovers = {
        ("raw", "PREROUTING"): [(raw.spec, raw.line("-D"))],
        ("filter", "FORWARD"): [(fwd.spec, fwd.line("-D")), (fwd.spec, fwd.line("-D")), (stale, "-D FORWARD x")],
    }
    lines = ipt.base_create(leftovers).do.stdin.splitlines()
    assert not any(line.startswith(("-I PREROUTING", "-D PREROUTING")) and "CNET-PREROUTING" in line for line in lines)
    assert lines.count(fwd.line("-D")) == 2 and "-D FORWARD x" in lines
    assert lines.count("-I FORWARD 1 -m comment --comment cnet:base -j CNET-FORWARD") == 1
    assert lines.index("-I FORWARD 1 -m comment --comment cnet:base -j CNET-FORWARD") > lines.index("-D FORWARD x")
    # The nat jumps were not there: inserted as on a fresh host.
    assert "-I POSTROUTING 1 -m comment --comment cnet:base -j CNET-POSTROUTING" in lines


def test_endpoint_container_side_seeds_the_gateways_neighbour_entries():
    step = ipk.endpoint_container_side(
        netns="cnet-c1", interface="eth0", ip="10.5.0.2", prefix_len=24, gateway="10.5.0.1", loopback=False,
        ip6="fd00:5::2/64", gateway6="fd00:5::1",
        neighbours=[("10.5.0.1", "0a:01:23:45:67:89"), ("fd00:5::1", "0a:01:23:45:67:89")],
    )  # fmt: skip
    assert step.do.stdin.splitlines() == [
        "addr add 10.5.0.2/24 dev eth0",
        "link set eth0 up",
        "addr add fd00:5::2/64 dev eth0 nodad",
        "neigh replace 10.5.0.1 lladdr 0a:01:23:45:67:89 dev eth0 nud stale",
        "neigh replace fd00:5::1 lladdr 0a:01:23:45:67:89 dev eth0 nud stale",
        "route add default via 10.5.0.1 dev eth0",
        "route add default via fd00:5::1 dev eth0",
    ]
    assert step.undo == ()  # they live in the namespace
