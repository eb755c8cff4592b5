"""`cnet up` / `down` without root: the stack file (validation, errors named by key), the diff
against the recorded containers, and the batched plan (plans.batch) as argv equality."""

import tomllib
from pathlib import Path

import pytest

from cnet.commands import cmd
from cnet.errors import ValidationError
from cnet.frozen_record import replace
from cnet.kernel import iptables as ipt
from cnet.plans import batch
from cnet.plans import container as cplans
from cnet.records import Container, ContainerState, Direction, Endpoint, PortMapping
from cnet.services.stack import spec
from cnet.services.stack.check import plan_diff
from tests.unit.factories import network

PATH = Path("/srv/shop/stack.toml")

GOOD = """
name = "demo"
[networks.mynet1]
subnet = "175.50.0.0/24"
labels = { tier = "front" }

[containers.2233]
command = ["python3", "-m", "http.server", "80"]
networks = ["mynet1"]
ports = ["8085:80"]

[containers.web]
command = "sleep 100"
networks = ["mynet1"]
ports = ["9001-9003:80", "127.0.0.1:7001-7006:70-71/udp"]
scale = 3
environment = { A = 1, B = "x", C = true }
labels = ["app=shop"]
restart = "on-failure:3"
init = true
"""


def parse(text: str, path: Path = PATH, stack: str | None = None) -> spec.StackSpec:
    return spec.parse(tomllib.loads(text), path, stack)


def test_a_good_file():
    s = parse(GOOD)
    assert s.name == "demo"
    assert [n.name for n in s.networks] == ["mynet1"] and s.networks[0].labels == {"tier": "front"}
    assert [c.name for c in s.containers] == ["2233", "web-1", "web-2", "web-3"]
    web2 = s.containers[2].request
    # The host port ranges are spread over the replicas, one slice each.
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol) for p in web2.ports] == [
        ("0.0.0.0", 9002, 80, "tcp"),
        ("127.0.0.1", 7003, 70, "udp"),
        ("127.0.0.1", 7004, 71, "udp"),
    ]
    assert s.containers[2].port_keys == (
        "containers.web.ports[0]",
        "containers.web.ports[1]",
        "containers.web.ports[1]",
    )
    assert web2.env == {"A": "1", "B": "x", "C": "true"}
    assert web2.command == ("sleep", "100") and web2.init and web2.restart_max == 3
    assert web2.labels == {
        "app": "shop",
        spec.STACK_LABEL: "demo",
        spec.SERVICE_LABEL: "web",
        spec.HASH_LABEL: s.containers[2].digest,
    }


def test_the_digest_follows_the_definition_only():
    a = parse(GOOD)
    assert [c.digest for c in parse(GOOD).containers] == [c.digest for c in a.containers]
    changed = parse(GOOD.replace('"sleep 100"', '"sleep 101"'))
    assert changed.containers[0].digest == a.containers[0].digest  # 2233 is the same
    assert all(x.digest != y.digest for x, y in zip(changed.containers[1:], a.containers[1:], strict=True))
    assert len({c.digest for c in a.containers}) == 4  # replicas differ by their ports


def test_stack_name_from_the_directory_or_the_option():
    text = GOOD.replace('name = "demo"\n', "")
    assert parse(text, Path("/srv/My Shop!/x.toml")).name == "myshop"
    assert parse(GOOD, stack="other").name == "other"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("[containers.web]", "[containers.web]\nbogus = 1"), "containers.web.bogus: unknown key"),
        (('name = "demo"', 'name = "demo"\nversion = "3"'), "version: unknown key"),
        (('ports = ["8085:80"]', 'ports = ["8085:80", "80:x"]'), "containers.2233.ports[1]: invalid container port"),
        (('"9001-9003:80"', '"9001-9002:80"'), "containers.web.ports[0]: 2 host port(s) for 3 replicas"),
        (("scale = 3", "scale = 0"), "containers.web.scale: invalid scale 0"),
        (("scale = 3", 'scale = "3"'), "containers.web.scale: must be a number"),
        (('subnet = "175.50.0.0/24"', 'subnet = "175.50.0.1/24"'), "networks.mynet1.subnet: invalid subnet"),
        (('networks = ["mynet1"]\nports = ["8085:80"]', 'networks = ["my net"]'), "containers.2233.networks[0]"),
        (('B = "x"', '"B-1" = "x"'), "containers.web.environment.B-1: invalid environment variable name"),
        (('labels = ["app=shop"]', 'labels = ["cnet.stack=x"]'), "containers.web.labels[0]: the label keys"),
        (('restart = "on-failure:3"', 'restart = "sometimes"'), "containers.web.restart: invalid restart policy"),
        (("init = true", 'init = "yes"'), "containers.web.init: must be true or false"),
        (("init = true", 'hostname = "-x"'), "containers.web.hostname: invalid hostname"),
        (("init = true", 'ip = "175.50.0.9"'), "containers.web.ip: one static address cannot go to 3 replicas"),
        (
            ('"8085:80"', '"9002:80"'),
            "containers.web.ports[0]: host port 9002/tcp is also published by containers.2233.ports[0]",
        ),
        (
            ("[containers.web]", '[containers.web-1]\ncommand = "true"\n[containers.web]'),
            "containers.web: container name 'web-1'",
        ),
        (
            ("[containers.2233]", '[networks.b]\nsubnet = "175.50.0.128/25"\n[containers.2233]'),
            "networks.b.subnet: 175.50.0.128/25 overlaps",
        ),
        (
            ('ports = ["8085:80"]', 'ports = ["8085:80"]\nip = "175.50.0.1"'),
            "containers.2233.ip: 175.50.0.1 is not a free host address",
        ),
        (
            ("[networks.mynet1]", "[networks.mynet1]\ninternal = true"),
            "containers.2233.ports: network mynet1 is internal",
        ),
        (("[networks.mynet1]", '[networks.mynet1]\ndriver = "macvlan"'), "networks.mynet1.driver: unknown driver"),
    ],
)
def test_errors_name_the_key(edit, key):
    old, new = edit
    assert old in GOOD
    with pytest.raises(ValidationError) as err:
        parse(GOOD.replace(old, new, 1))
    assert str(err.value).startswith(key), str(err.value)


def test_unreadable_or_broken_files(tmp_path):
    with pytest.raises(ValidationError, match="cannot read"):
        spec.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[containers.web\n")
    with pytest.raises(ValidationError, match="not valid TOML"):
        spec.load(bad)


# --- the diff: up against what is recorded -----------------------------------------------------
def ctr(name: str, state: ContainerState = ContainerState.RUNNING) -> Container:
    return Container(
        id=f"id-{name}",
        name=name,
        state=state,
        command=("true",),
        hostname=name,
        env={},
        spec={},
        detached=True,
        netns=f"cnet-{name}",
        created_at=0.0,
    )


def test_diff_keeps_recreates_creates_and_finds_orphans():
    s = parse(GOOD)
    byname = {c.name: c for c in s.containers}
    recorded = [ctr("2233"), ctr("web-1"), ctr("web-2", ContainerState.EXITED), ctr("old")]
    labels = {
        "id-2233": {spec.HASH_LABEL: byname["2233"].digest},  # unchanged, running: kept
        "id-web-1": {spec.HASH_LABEL: "changed"},  # definition changed: recreated
        "id-web-2": {spec.HASH_LABEL: byname["web-2"].digest},  # unchanged but exited: recreated
    }
    keep, recreate, create, orphans = plan_diff(recorded, labels, s.containers)
    assert [c.name for c in keep] == ["2233"]
    assert [c.name for c in recreate] == ["web-1", "web-2"]
    assert [d.name for d in create] == ["web-1", "web-2", "web-3"]
    assert [c.name for c in orphans] == ["old"]
    # The second up of the same file: nothing to do.
    labels = {f"id-{d.name}": {spec.HASH_LABEL: d.digest} for d in s.containers}
    keep, recreate, create, orphans = plan_diff([ctr(d.name) for d in s.containers], labels, s.containers)
    assert (len(keep), recreate, create, orphans) == (4, [], [], [])


# --- the batched plan ---------------------------------------------------------------------------
NET = network(id="aaaaaaaaaaaa", name="web", bridge="cnet-aaaaaaaaaa")


def wired(n: int, *, udp: bool = False) -> tuple[Container, Endpoint, list[PortMapping]]:
    c = replace(ctr(f"c{n}"), id=f"{n:012d}", netns=f"cnet-{n:012d}")
    ip = f"10.5.0.{n + 1}"
    ep = Endpoint(
        id=n, container_id=c.id, network_id=NET.id, interface="eth0", host_veth=f"cnetv{n:010d}", ip=ip, ip_int=0,
        mac=f"02:42:0a:05:00:{n + 1:02x}", is_default_route=True, created_at=0.0, network="web",
        bridge=NET.bridge, gateway=NET.gateway, prefix_len=24, mtu=1500,
    )  # fmt: skip
    ports = [PortMapping(n, c.id, n, "0.0.0.0", 8000 + n, 80, "tcp", ip)]
    if udp:
        ports.append(PortMapping(100 + n, c.id, n, "0.0.0.0", 5353, 53, "udp", ip))
    return c, ep, ports


def test_merged_wiring_is_the_single_plans_batched():
    parts = [wired(1), wired(2, udp=True), wired(3)]
    singles = [cplans.wiring(c, [ep], ports) for c, ep, ports in parts]
    merged = batch.merge(singles, "3 containers")
    assert merged.direction == Direction.CREATE
    kinds = [s.do.argv[:2] for s in merged]
    assert kinds == [
        ("ip", "-batch"),  # every host side
        *[("nsenter", f"--net=/run/netns/{c.netns}") for c, _, _ in parts],  # one per namespace
        ("ebtables-nft-restore", "--noflush"),
        ("iptables-restore", "-w"),
        ("conntrack", "-D"),
    ]
    host = merged.steps[0]
    assert host.do == cmd("ip", "-batch", "-", stdin="".join(p.steps[0].do.stdin for p in singles))
    # The undo removes every veth and namespace in one best-effort batch, newest first.
    assert host.undo == (
        cmd(
            "ip", "-force", "-batch", "-",
            stdin="".join(f"link del {ep.host_veth}\nnetns del {c.netns}\n" for c, ep, _ in reversed(parts)),
        ),
    )  # fmt: skip
    # The inside steps are the single plans' own.
    assert merged.steps[1:4] == [p.steps[1] for p in singles]
    rules = [r for c, _, ports in parts for r in cplans.port_rules(c.id, ports)]
    nat = merged.steps[5]
    assert nat.do == ipt.restore(ipt.restore_input(rules, "-A"))
    assert nat.undo == (ipt.restore(ipt.restore_input(list(reversed_by_container(parts)), "-D")),)
    spoof = merged.steps[4]
    assert spoof.do.stdin == "*filter\n" + "".join(
        line + "\n" for p in singles for line in p.steps[2].do.stdin.splitlines()[1:]
    )
    assert spoof.undo == tuple(u for p in reversed(singles) for u in p.steps[2].undo) and spoof.atomic
    assert merged.steps[6].nothing_to_do == ("0 flow entries",)
    script = merged.as_shell_script()
    lines = script.splitlines()
    assert sum(line.startswith("ip -batch -") for line in lines) == 1
    assert sum(line.startswith("iptables-restore") for line in lines) == 1


def reversed_by_container(parts):
    for c, _, ports in reversed(parts):
        yield from cplans.port_rules(c.id, ports)


def test_merged_release_is_best_effort_and_batched():
    parts = [wired(1), wired(2)]
    singles = [cplans.release(c, ports, [ep]) for c, ep, ports in parts]
    merged = batch.merge(singles, "2 containers", Direction.DESTROY)
    assert merged.teardown
    assert [s.do.argv[0] for s in merged] == ["iptables-restore", "ebtables-nft-restore", "ip"]
    assert merged.steps[2].do == cmd(
        "ip", "-force", "-batch", "-", stdin="".join(f"netns del {c.netns}\n" for c, _, _ in parts)
    )
    # A batched delete that fails because one rule is gone falls back to every rule on its own.
    assert merged.steps[0].fallback == tuple(f for p in singles for f in p.steps[0].fallback)


def test_one_plan_is_left_as_it_is():
    c, ep, ports = wired(1)
    single = cplans.wiring(c, [ep], ports)
    assert batch.merge([single], "1").steps == single.steps


# --- --dry-run up: the whole batched script, nothing written ------------------------------------
def test_dry_run_up_prints_the_whole_batched_script(tmp_path):
    import os
    import subprocess
    import sys

    f = tmp_path / "stack.toml"
    f.write_text(GOOD.replace("init = true\n", ""))
    state = tmp_path / "state"
    env = dict(os.environ, CNET_STATE_DIR=str(state))
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "--dry-run", "up", str(f)], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:3] == ["#!/bin/sh", "set -e", f"# cnet up {f} (stack demo)"]
    # the network (its own operation), then the four containers batched
    assert "# step: create bridge" in res.stdout
    host = [i for i, line in enumerate(lines) if line.startswith("# step: host side of 4 container(s) of stack demo")]
    assert len(host) == 1 and lines[host[0] + 1] == "ip -batch - <<'CNET_EOF'"
    assert sum(line.startswith("nsenter --net=/run/netns/cnet-") for line in lines) == 4
    assert sum(line.startswith("ebtables-nft-restore") for line in lines) == 2  # the chain, then the 4 pins
    port_rules = [i for i, line in enumerate(lines) if line.startswith("# step: rules of 4 container(s)")]
    assert len(port_rules) == 1 and lines[port_rules[0] + 1].startswith("iptables-restore -w --noflush")
    assert sum(" -j DNAT " in line for line in lines) == 1 + 3 * 3  # 2233: one; web-N: one tcp, two udp
    assert sum(line.startswith("# step: start the watcher") for line in lines) == 4
    assert not state.exists()  # nothing written


def test_a_second_up_says_it_waits_for_the_one_holding_the_stack_lock(tmp_path):
    # Another `up` holds the lock (its pid in the file): this one says so once, waits, then holds
    # it and writes its own pid; uncontended, it says nothing.
    import fcntl
    import os
    import threading
    import time

    from cnet.services.context import Context

    said: list[str] = []
    ctx = Context(state_dir=tmp_path, say=said.append)
    with ctx.stack_lock():
        assert said == []
        assert (tmp_path / "stack.lock").read_text() == f"{os.getpid()}\n"
    fd = os.open(tmp_path / "stack.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"4242\n", 0)
    held = threading.Event()

    def second() -> None:
        with ctx.stack_lock():
            held.set()

    t = threading.Thread(target=second)
    t.start()
    try:
        for _ in range(1000):
            if said:
                break
            time.sleep(0.01)
        assert said == ["waiting for another cnet up or down (pid 4242) to finish"]
        assert not held.is_set()  # still waiting
    finally:
        os.close(fd)  # releases the lock
    t.join(10)
    assert held.is_set()
