"""gc and net restore repair attachments, never kill a live container, and do not race with the
operations beside them (issue 15 items 3, 6, 7)."""

import threading
import time

import pytest

from .conftest import answers, inspect, no_cnet_leftovers, run_server, settled

pytestmark = pytest.mark.root


def _setup(sb, tools) -> tuple[dict, dict, dict]:
    sb.cnet("net", "create", "n1", "--subnet", "10.10.9.0/24")
    a = run_server(sb, tools, "a", "--net", "n1", "-p", "8080:80")
    b = run_server(sb, tools, "b", "--net", "n1")
    return inspect(sb, "n1"), a, b


def _paths(a: dict, b: dict) -> dict[str, tuple[str | None, str]]:
    """(netns, target) -> the name that must answer: neighbour over the bridge, host to a published
    port, and a container to its own published port through the gateway (hairpin)."""
    ip_a = a["networks"][0]["ip"]
    gw = a["networks"][0]["gateway"]
    return {
        "neighbour": (b["netns"], f"tcp:{ip_a}:80"),
        "published": (None, "tcp:127.0.0.1:8080"),
        "hairpin": (a["netns"], f"tcp:{gw}:8080"),
    }


def _reachable(sb, tools, paths) -> dict[str, bool]:
    return {what: answers(sb, tools, [target], netns=netns)[target] == "a" for what, (netns, target) in paths.items()}


def _cleanup(sb) -> None:
    sb.cnet("rm", "-f", "a", "b")
    sb.cnet("net", "rm", "n1")


BREAKS = {
    "bridge deleted": "ip link del {bridge}",
    "veth nomaster": "ip link set {veth} nomaster",
    "veth down": "ip link set {veth} down",
    "hairpin off": "ip link set dev {veth} type bridge_slave hairpin off",
    "veth deleted": "ip link del {veth}",
}


@pytest.mark.parametrize("repair", ["gc", "net restore"])
@pytest.mark.parametrize("case", list(BREAKS))
def test_repair_reattaches_and_second_run_has_nothing_to_do(sandbox, tools, case, repair):
    sb = sandbox
    net, a, b = _setup(sb, tools)
    paths = _paths(a, b)
    assert _reachable(sb, tools, paths) == dict.fromkeys(paths, True)
    veth = a["networks"][0]["host_veth"]
    sb.sh(BREAKS[case].format(bridge=net["bridge"], veth=veth))
    broken = _reachable(sb, tools, {"hairpin": paths["hairpin"]})
    assert broken == {"hairpin": False}, "the break must cut something off"
    argv = ("gc",) if repair == "gc" else ("net", "restore")
    out = sb.cnet(*argv)
    assert "repair step(s)" in out.stdout, out
    assert f"veth {veth}" in out.stderr or "re-created" in out.stderr, out.stderr
    assert _reachable(sb, tools, paths) == dict.fromkeys(paths, True)
    link = sb.run(["ip", "-d", "-j", "link", "show", veth], check=True).stdout
    assert f'"master":"{net["bridge"]}"' in link and '"hairpin":true' in link
    again = sb.cnet(*argv)
    assert again.stdout.strip() == "nothing to do", again
    assert sb.cnet("gc").stdout.strip() == "nothing to do"
    _cleanup(sb)


@pytest.mark.leaves_state  # the database is deleted on purpose: its journal rows start again
def test_gc_keeps_live_orphans_until_force(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.10.0/24")
    a = run_server(sb, tools, "a", "--net", "n1", "-p", "8080:80")
    ip_a = a["networks"][0]["ip"]
    for f in sb.state_dir.glob("cnet.db*"):
        f.unlink()
    out = sb.cnet("gc")
    assert f"keep orphan network namespace {a['netns']}" in out.stderr, out
    assert "gc --force" in out.stderr
    assert sb.run(["kill", "-0", str(a["pid"])]).returncode == 0, "gc killed a live container"
    assert answers(sb, tools, [f"tcp:{ip_a}:80"])[f"tcp:{ip_a}:80"] == "a"
    assert answers(sb, tools, ["tcp:127.0.0.1:8080"])["tcp:127.0.0.1:8080"] == "a"
    # Again: still kept, nothing else to do.
    again = sb.cnet("gc")
    assert again.stdout.strip() == "nothing to do" and "keep orphan" in again.stderr
    dry = sb.cnet("--dry-run", "gc", "--force")
    assert "kill -KILL" in dry.stdout and sb.run(["kill", "-0", str(a["pid"])]).returncode == 0
    forced = sb.cnet("gc", "--force")
    assert "repair step(s)" in forced.stdout, forced
    assert sb.wait_for(lambda: sb.run(["kill", "-0", str(a["pid"])]).returncode != 0, timeout=3)
    assert sb.wait_for(lambda: not [n for n in sb.link_names() if n.startswith("cnet")], timeout=3)
    no_cnet_leftovers(sb)
    assert sb.cnet("gc").stdout.strip() == "nothing to do"


RUNS = 30
GC_DEADLINE = 240.0


def test_gc_beside_run_rm_and_connect_never_fails_nor_leaks(sandbox):
    """A stress loop bounded in count and time: RUNS run -d / net connect / rm -f cycles in one
    thread while gc runs back to back in another."""
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.11.0/24")
    sb.cnet("net", "create", "n2", "--subnet", "10.10.12.0/24")
    baseline = settled(sb)
    failures: list[str] = []
    stop = threading.Event()
    gcs = [0]

    def gc_loop() -> None:
        while not stop.is_set():
            res = sb.cnet("gc", check=False)
            gcs[0] += 1
            if res.returncode != 0 or "error" in res.stderr:
                failures.append(f"gc: {res.stderr.strip()}")

    started = time.monotonic()
    t = threading.Thread(target=gc_loop)
    t.start()
    try:
        for i in range(RUNS):
            if time.monotonic() - started > GC_DEADLINE:
                failures.append(f"time bound hit after {i} runs")
                break
            for argv in (
                ("run", "-d", "--name", f"s{i}", "--net", "n1", "-p", f"{9000 + i}:80", "--", "sleep", "60"),
                ("net", "connect", "n2", f"s{i}"),
                ("rm", "-f", f"s{i}"),
            ):
                res = sb.cnet(*argv, check=False)
                if res.returncode != 0 or "error" in res.stderr:
                    failures.append(f"{argv[0]} {i}: {res.stderr.strip()}")
    finally:
        stop.set()
        t.join(timeout=120)
    assert not failures, failures
    assert gcs[0] >= 3, f"only {gcs[0]} gc runs beside {RUNS} cycles"
    assert sb.wait_for(lambda: settled(sb) == baseline, timeout=5), settled(sb)
    assert sb.cnet("gc").stdout.strip() == "nothing to do"
    print(f"stress: {RUNS} run/connect/rm cycles beside {gcs[0]} gc runs in {time.monotonic() - started:.0f} s")
    sb.cnet("net", "rm", "n1", "n2")
