"""scripts/bench, stack phase: `cnet up` of a stack file against the same containers started one
`cnet run -d` at a time, side by side in one run, rounds interleaved (each round alternates which
goes first). Imported by bench.py inside its sandbox.

Per round: N sequential `cnet run -d` (busybox httpd with -p PORT:80) until every port answers on
127.0.0.1, then N sequential `rm -f`; and `cnet up FILE` of the same N (one [containers] entry
with scale = N and a host port range) until every port answers, a second `up` (nothing to do),
and `cnet down`. Growth: `up` of a stack of BIG containers against `up` of N, interleaved too.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bench_peers import percentile  # scripts/ is on sys.path (bench.py puts it there)

NETWORK, SUBNET = "sbench", "10.98.0.0/20"  # room for a few thousand
PORT_BASE = 30001


def stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": percentile(values, 50), "samples": [round(v, 1) for v in values]}


def answered(port: int) -> bool:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False
    finally:
        s.close()


def wait_all(ports: list[int], t0: float, timeout: float = 120) -> None:
    left = list(ports)
    while left:
        left = [p for p in left if not answered(p)]
        if left and time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{len(left)} port(s) never answered, e.g. {left[0]}")


def stack_file(path: Path, www: Path, n: int, name: str) -> Path:
    path.write_text(
        f'name = "{name}"\n'
        "[containers.h]\n"
        f'command = ["busybox", "httpd", "-f", "-p", "80", "-h", "{www}"]\n'
        f'networks = ["{NETWORK}"]\n'
        f'ports = ["{PORT_BASE}-{PORT_BASE + n - 1}:80"]\n'
        f"scale = {n}\n"
    )
    return path


class StackBench:
    def __init__(self, cnet: list[str], env: dict, tmp: Path, www: Path):
        self.cnet, self.env, self.tmp, self.www = cnet, env, tmp, www

    def run(self, *args: str) -> float:
        t0 = time.perf_counter()
        res = subprocess.run([*self.cnet, *args], capture_output=True, text=True, env=self.env)
        if res.returncode != 0:
            raise RuntimeError(f"cnet {' '.join(args)} failed: {res.stderr.strip()[-500:]}")
        return (time.perf_counter() - t0) * 1000

    def sequential(self, n: int) -> tuple[float, float]:
        """(ms of N run -d until all answer, ms of N rm -f)."""
        ports = [PORT_BASE + i for i in range(n)]
        t0 = time.perf_counter()
        for i, port in enumerate(ports):
            self.run("run", "-d", "--name", f"seq{i}", "--net", NETWORK, "-p", f"{port}:80", "--",
                     "busybox", "httpd", "-f", "-p", "80", "-h", str(self.www))  # fmt: skip
        wait_all(ports, t0)
        up = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        for i in range(n):
            self.run("rm", "-f", f"seq{i}")
        return up, (time.perf_counter() - t1) * 1000

    def stack(self, n: int, *, noop: bool = True) -> tuple[float, float | None, float]:
        """(ms of up until all answer, ms of a second up, ms of down)."""
        f = stack_file(self.tmp / f"stack{n}.toml", self.www, n, f"bench{n}")
        t0 = time.perf_counter()
        self.run("up", str(f))
        wait_all([PORT_BASE + i for i in range(n)], t0)
        up = (time.perf_counter() - t0) * 1000
        again = self.run("up", str(f)) if noop else None
        down = self.run("down", str(f))
        return up, again, down


def measure(cnet: list[str], env: dict, tmp: Path, www: Path, n: int, big: int, rounds: int) -> dict[str, Any]:
    b = StackBench(cnet, env, tmp, www)
    b.run("net", "create", NETWORK, "--subnet", SUBNET)
    seq_up: list[float] = []
    seq_rm: list[float] = []
    st_up: list[float] = []
    st_noop: list[float] = []
    st_down: list[float] = []
    up_n: list[float] = []
    up_big: list[float] = []
    try:
        for r in range(rounds):
            order = ("seq", "stack") if r % 2 == 0 else ("stack", "seq")
            for who in order:
                if who == "seq":
                    u, rm = b.sequential(n)
                    seq_up.append(u)
                    seq_rm.append(rm)
                else:
                    u, again, d = b.stack(n)
                    st_up.append(u)
                    st_noop.append(again or 0.0)
                    st_down.append(d)
        for r in range(rounds if big else 0):
            for size in (n, big) if r % 2 == 0 else (big, n):
                (up_n if size == n else up_big).append(b.stack(size, noop=False)[0])
    finally:
        b.run("net", "rm", NETWORK)
    out: dict[str, Any] = {
        "n": n,
        "big": big,
        "rounds": rounds,
        "sequential_run": stats(seq_up),
        "sequential_rm": stats(seq_rm),
        "up": stats(st_up),
        "noop_up": stats(st_noop),
        "down": stats(st_down),
        "up_n": stats(up_n + st_up),
        "up_big": stats(up_big),
    }

    def ratio(a: str, b_: str) -> float | None:
        x, y = out[a]["p50"], out[b_]["p50"]
        return None if x is None or not y else x / y

    out["up_ratio"] = ratio("up", "sequential_run")
    out["down_ratio"] = ratio("down", "sequential_rm")
    out["growth"] = ratio("up_big", "up_n")
    return out


def render(s: dict[str, Any]) -> list[str]:
    def f(v: float | None, unit: str = " ms") -> str:
        return "-" if v is None else (f"{v:.0f}{unit}" if unit == " ms" else f"{v:.2f}{unit}")

    n, big = s["n"], s["big"]
    return [
        f"stack (medians of {s['rounds']} interleaved rounds):",
        f"  {n} x run -d until all answer   {f(s['sequential_run']['p50'])}"
        f"   cnet up of {n} until all answer {f(s['up']['p50'])}   = {f(s['up_ratio'], 'x')}",
        f"  {n} x rm -f                     {f(s['sequential_rm']['p50'])}"
        f"   cnet down of {n}                {f(s['down']['p50'])}   = {f(s['down_ratio'], 'x')}",
        f"  no-op up of {n}: {f(s['noop_up']['p50'])};  up of {big}: {f(s['up_big']['p50'])} "
        f"/ up of {n}: {f(s['up_n']['p50'])} = {f(s['growth'], 'x')}",
        "",
    ]
