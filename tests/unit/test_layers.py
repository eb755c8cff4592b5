"""The import structure of cnet/, read from the source (function-local imports included):

    cli -> services -> plans, journal, db, ipam, runner -> kernel, commands, records, naming, errors, ...

No cycles, lower layers never import higher ones, no private name imported from another module,
no module over MAX_LINES, SQL and the heavy dependencies only where they belong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CNET = Path(__file__).resolve().parents[2] / "cnet"
MAX_LINES = 450

# Highest first; a module may import its own layer or any layer below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("cnet.cli", "cnet.__main__")),
    ("services", ("cnet.services",)),
    # cnet.cluster: etcd, the overlay networks' cluster store (the only module that talks to it).
    ("middle", ("cnet.plans", "cnet.journal", "cnet.db", "cnet.ipam", "cnet.ipam6", "cnet.runner", "cnet.cluster")),
    (
        "base",
        (
            "cnet.kernel",
            "cnet.commands",
            "cnet.records",
            "cnet.frozen_record",
            "cnet.states",
            "cnet.naming",
            "cnet.errors",
            "cnet.procs",
            "cnet.netdev",
            "cnet.exec_args",
            "cnet.tty",
            "cnet.validate",
            "cnet.validate6",
            "cnet.validate_logs",
            "cnet._shfast",
            "cnet.cni",
            "cnet._profile",
            "cnet",
        ),
    ),
]
# Inside the middle layer: plans are pure (no database, journal or processes), the database
# layer knows nothing of plans, IPAM or the journal.
FORBIDDEN = {
    "cnet.plans": ("cnet.db", "cnet.journal", "cnet.runner", "cnet.ipam", "cnet.ipam6", "cnet.cluster"),
    "cnet.db": ("cnet.plans", "cnet.journal", "cnet.runner", "cnet.ipam", "cnet.ipam6", "cnet.cluster"),
    "cnet.runner": ("cnet.db", "cnet.journal", "cnet.plans", "cnet.ipam", "cnet.ipam6"),
}
# Third-party imports allowed only in these modules.
CONFINED = {
    "sh": ("cnet.runner",),
    "sqlalchemy": ("cnet.db.schema", "cnet.db.schema_overlay", "cnet.db.migrate"),
    "etcd3gw": ("cnet.cluster",),
    "alembic": ("cnet.db.migrate",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(CNET.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(CNET.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement in the module."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None) if sub in MODULES else (target, a.name))
    return out


def internal_edges() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports(m) if t in MODULES} for m in MODULES}


def layer_of(name: str) -> int:
    best = (-1, len(LAYERS))
    for rank, (_label, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or (p != "cnet" and name.startswith(p + "."))) and len(p) > best[0]:
                best = (len(p), rank)
    assert best[1] < len(LAYERS), f"{name} is in no layer: add it to LAYERS"
    return best[1]


def test_every_module_is_in_a_layer():
    for m in MODULES:
        layer_of(m)


def test_no_import_cycles():
    edges = internal_edges()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_lower_layers_never_import_higher_ones():
    bad = []
    for m, targets in internal_edges().items():
        for t in targets:
            if layer_of(t) < layer_of(m):
                bad.append(f"{m} -> {t}")
            for prefix, banned in FORBIDDEN.items():
                in_prefix = m == prefix or m.startswith(prefix + ".")
                if in_prefix and any(t == b or t.startswith(b + ".") for b in banned):
                    bad.append(f"{m} -> {t}")
    assert bad == []


def test_no_private_names_imported_across_modules():
    """Between cnet's own modules (a dependency's private API is another matter)."""
    bad = [
        f"{m}: from {t} import {n}"
        for m in MODULES
        for t, n in imports(m)
        if n and n.startswith("_") and not n.startswith("__") and t != m and t.split(".")[0] == "cnet"
    ]
    assert bad == []


def test_heavy_dependencies_are_confined():
    bad = []
    for m in MODULES:
        for t, _ in imports(m):
            top = t.split(".")[0]
            if top in CONFINED and m not in CONFINED[top]:
                bad.append(f"{m} imports {t}")
    assert bad == []


def test_no_module_is_too_long():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


SQL_WORDS = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM")


def test_no_sql_built_with_f_strings():
    """Statements are constants (cnet.db.queries); the one exception builds an INSERT from quoted
    identifiers (Connection.insert)."""
    bad = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
                if any(w in text.upper() for w in SQL_WORDS) and m != "cnet.db.connection":
                    bad.append(f"{m}:{node.lineno}")
    assert bad == []


def test_sql_runs_only_in_the_store_the_journal_and_ipam():
    """Services and the CLI go through cnet.db.store (cnet sql's user statement excepted)."""
    allowed = {
        "cnet.db.store",
        "cnet.db.journal_store",
        "cnet.db.names_store",
        "cnet.db.listing_store",
        "cnet.db.recovery_store",
        "cnet.db.overlay_store",
        "cnet.db.stack_store",
        "cnet.db.connection",
        "cnet.db.migrate",
        "cnet.journal",
        "cnet.ipam",
        "cnet.ipam6",  # IPv6 twin of cnet.ipam
        "cnet.services.query",
    }
    bad = []
    for m, path in MODULES.items():
        if m in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr
                in (
                    "execute",
                    "one",
                    "all",
                    "scalar",
                    "insert",
                    "exec_driver_sql",
                )
                and isinstance(node.value, ast.Name)
                and node.value.id in ("conn", "c", "store", "db")
            ):
                bad.append(f"{m}:{node.lineno} {node.value.id}.{node.attr}")
    assert bad == []
