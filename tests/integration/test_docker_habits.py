"""Docker habits (issue 10): --network / `cnet network`, the default network, `--net none`,
ps -q / --filter / --format, inspect --format, labels, prune, `exec CTR -it`, `run --rm` exit codes."""

import json

import pytest

pytestmark = pytest.mark.root


def test_default_network_none_and_docker_spellings(sandbox):
    sb = sandbox
    # No network option: the default network `cnet` is created on first use, from the default pools.
    sb.cnet("run", "-d", "--name", "a", "--", "sleep", "600")
    nets = json.loads(sb.cnet("network", "ls", "--json").stdout)
    assert [n["name"] for n in nets] == ["cnet"]
    assert nets[0]["subnet"].startswith("10.9") and nets[0]["containers"][0]["name"] == "a"
    sb.cnet("run", "-d", "--name", "b", "--", "sleep", "600")  # reuses it
    assert sb.cnet("net", "ls", "-q").stdout.split() == ["cnet"]
    # ...where containers resolve each other as on any shared network.
    assert sb.cnet("exec", "a", "getent", "hosts", "b", check=False).returncode == 0
    # --net none: loopback only, as before.
    sb.cnet("run", "-d", "--name", "lo", "--net", "none", "--", "sleep", "600")
    assert json.loads(sb.cnet("inspect", "lo").stdout)["networks"] == []
    links = sb.cnet("exec", "lo", "--", "ip", "-j", "link").stdout
    assert [x["ifname"] for x in json.loads(links)] == ["lo"]
    # --network and `cnet network` are the same as --net and `cnet net`.
    sb.cnet("network", "create", "n2", "--subnet", "10.40.2.0/24", "--label", "team=x")
    sb.cnet("run", "-d", "--name", "c", "--network", "n2", "--", "sleep", "600")
    assert json.loads(sb.cnet("network", "inspect", "n2").stdout)["labels"] == {"team": "x"}
    assert "c" in sb.cnet("network", "inspect", "n2").stdout
    sb.cnet("rm", "-f", "a", "b", "c", "lo")
    # prune removes the unused networks and says how many.
    res = sb.cnet("network", "prune")
    assert sorted(res.stdout.split()) == ["cnet", "n2"] and "removed 2 network(s)" in res.stderr
    assert sb.cnet("net", "ls", "-q").stdout == ""


def test_ps_scripting_output(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.40.1.0/24")
    ida = sb.cnet("run", "-d", "--name", "web", "--net", "n1", "--label", "app=shop", "--label", "tier=front",
                  "--", "sleep", "600").stdout.strip()  # fmt: skip
    idb = sb.cnet("run", "-d", "--name", "db", "--net", "n1", "-l", "app=shop", "--", "sleep", "600").stdout.strip()
    sb.cnet("run", "--name", "done", "--net", "none", "--", "sh", "-c", "exit 4", check=False)

    assert sb.cnet("ps", "-q").stdout.split() == [ida, idb]
    assert sb.cnet("ps", "-aq").stdout.split()[-1] != idb  # -a adds the exited one
    assert len(sb.cnet("ps", "-aq").stdout.split()) == 3

    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return sb.cnet("ps", "-a", *args, "--format", "{{.Name}}").stdout.split()

    assert names("label=app=shop") == ["web", "db"]
    assert names("label=app=shop", "label=tier") == ["web"]  # label filters: all must match
    assert names("name=we", "name=db") == ["web", "db"]  # one key's values: any
    assert names("name=we", "status=running") == ["web"]  # different keys: all
    assert names("status=exited") == ["done"]
    assert sb.cnet("ps", "--filter", "status=exited", "-q").stdout.split() != []  # status looks at all
    assert names("network=n1") == ["web", "db"]
    assert names("network=none-such") == []
    res = sb.cnet("ps", "--filter", "colour=red", check=False)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1

    # Typed JSON: numbers as numbers, lists as lists (no "pid": "").
    rows = {r["name"]: r for r in json.loads(sb.cnet("ps", "-a", "--json").stdout)}
    assert isinstance(rows["web"]["pid"], int) and rows["done"]["pid"] is None
    assert rows["web"]["ips"] == ["10.40.1.2"] and rows["web"]["labels"] == {"app": "shop", "tier": "front"}
    assert rows["done"]["exit_code"] == 4 and rows["web"]["command"] == ["sleep", "600"]
    lines = sb.cnet("ps", "--format", "json").stdout.splitlines()
    assert [json.loads(x)["name"] for x in lines] == ["web", "db"]
    assert sb.cnet("ps", "--format", "{{.Names}} {{.State}} {{json .Networks}}").stdout.splitlines() == [
        'web running "n1"',
        'db running "n1"',
    ]

    # inspect --format
    out = sb.cnet("inspect", "--format", "{{.State.Status}} {{.NetworkSettings.Networks.n1.IPAddress}}", "web")
    assert out.stdout == "running 10.40.1.2\n"
    assert sb.cnet("inspect", "-f", "{{.Config.Labels}}", "web", "db").stdout.splitlines() == [
        "map[app:shop tier:front]",
        "map[app:shop]",
    ]
    assert json.loads(sb.cnet("inspect", "--format", "json", "web").stdout)[0]["name"] == "web"
    res = sb.cnet("inspect", "--format", "{{.Nope}}", "web", check=False)
    assert res.returncode == 1 and "no field 'Nope'" in res.stderr and "Traceback" not in res.stderr
    labels = json.loads(sb.cnet("sql", "SELECT name, key, value FROM v_labels ORDER BY 1, 2", "--json").stdout)
    assert [tuple(r.values()) for r in labels] == [("db", "app", "shop"), ("web", "app", "shop"),
                                                   ("web", "tier", "front")]  # fmt: skip

    # container prune: the exited ones, with a count line.
    res = sb.cnet("container", "prune")
    assert res.stdout.split() == ["done"] and "removed 1 container(s)" in res.stderr
    sb.cnet("rm", "-f", "web", "db")
    sb.cnet("net", "rm", "n1")


def test_exec_takes_cnets_options_after_the_container(sandbox):
    sb = sandbox
    sb.cnet("run", "-d", "--name", "x", "--net", "none", "-e", "A=1", "--", "sleep", "600")
    assert sb.cnet("exec", "x", "-it", "sh", "-c", "echo $A").stdout == "1\n"
    assert sb.cnet("exec", "x", "-e", "A=2", "-w", "/tmp", "sh", "-c", "echo $A $PWD").stdout == "2 /tmp\n"
    assert sb.cnet("exec", "-i", "x", "-u", "65534", "id", "-u").stdout == "65534\n"
    assert sb.cnet("exec", "x", "--", "sh", "-c", "echo -it").stdout == "-it\n"
    assert sb.cnet("exec", "x", "sh", "-c", "echo $0", "-it").stdout == "-it\n"  # the command's own
    sb.cnet("rm", "-f", "x")


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
def test_run_rm_passes_the_exit_code_through(sandbox, detach):
    sb = sandbox
    if detach:
        sb.cnet("run", "-d", "--rm", "--net", "none", "--name", "q", "--", "sh", "-c", "exit 3")
        assert sb.wait_for(lambda: sb.cnet("ps", "-aq").stdout == "", timeout=5)
        return
    res = sb.cnet("run", "--rm", "--net", "none", "--", "sh", "-c", "exit 3", check=False)
    assert res.returncode == 3, res
    res = sb.cnet("run", "--rm", "--net", "none", "--", "sh", "-c", "sleep 0.2; exit 7", check=False)
    assert res.returncode == 7, res
    assert sb.cnet("ps", "-aq").stdout == ""
