"""A small, safe subset of Go's text/template for `--format` (as `docker ps --format` takes it).

Nothing is ever evaluated as Python: a template is parsed into text, field paths, a few named
functions and `range`/`if` blocks, then walked over plain data (dicts, lists, strings, numbers).

    {{.Name}} {{.NetworkSettings.Networks}}   field paths (Docker's CamelCase names or cnet's keys)
    {{.}} {{json .X}} {{join .X ","}}          the value itself; functions json, join, upper, lower,
    {{index .X "k"}} {{len .X}} {{.X | json}}  index, len, title; pipes
    {{range .X}}{{.}}{{end}}                   over a list (or a dict's values, by key)
    {{if .X}}..{{else}}..{{end}}               Go's truth: empty/zero/absent is false

`\\t` and `\\n` in a format stand for a tab and a newline, as in Docker's CLI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MISSING = object()


class TemplateError(ValidationError):
    pass


@dataclass
class _Node:
    kind: str  # text | expr | range | if
    text: str = ""
    expr: str = ""
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


def parse(template: str) -> list[_Node]:
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    pos = 0
    for m in _ACTION.finditer(template):
        if m.start() > pos:
            stack[-1][1].append(_Node("text", text=template[pos : m.start()]))
        pos = m.end()
        action = m.group(1)
        word = action.split(None, 1)[0] if action else ""
        if word in ("range", "if"):
            node = _Node(word, expr=action[len(word) :].strip())
            if not node.expr:
                raise TemplateError(f"template: {{{{{word}}}}} needs a value")
            stack[-1][1].append(node)
            stack.append((node, node.body))
        elif word == "else":
            owner = stack[-1][0]
            if owner is None:
                raise TemplateError("template: {{else}} outside {{if}} or {{range}}")
            stack[-1] = (owner, owner.orelse)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("template: unexpected {{end}}")
            stack.pop()
        elif action.startswith("/*"):
            continue
        else:
            stack[-1][1].append(_Node("expr", expr=action))
    if len(stack) != 1:
        raise TemplateError("template: missing {{end}}")
    if pos < len(template):
        root.append(_Node("text", text=template[pos:]))
    return root


def render(template: str | list[_Node], data: Any) -> str:
    nodes = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    _walk(nodes, data, out)
    return "".join(out)


def _walk(nodes: list[_Node], dot: Any, out: list[str]) -> None:
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "expr":
            out.append(show(_pipeline(n.expr, dot)))
        elif n.kind == "if":
            _walk(n.body if truthy(_pipeline(n.expr, dot)) else n.orelse, dot, out)
        else:  # range
            value = _pipeline(n.expr, dot)
            items = [value[k] for k in sorted(value)] if isinstance(value, dict) else list(value or [])
            if not items:
                _walk(n.orelse, dot, out)
            for item in items:
                _walk(n.body, item, out)


def truthy(v: Any) -> bool:
    return v is not MISSING and bool(v)


def show(v: Any) -> str:
    """Go's default printing of a value."""
    if v is None or v is MISSING:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{show(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(show(x) for x in v) + "]"
    return str(v)


def _join(v: Any, sep: Any) -> str:
    return str(sep).join(show(x) for x in (v or []))


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        try:
            v = v[k]
        except (KeyError, IndexError, TypeError):
            raise TemplateError(f"template: index {k!r} not found") from None
    return v


FUNCS: dict[str, Callable[..., Any]] = {
    "json": lambda v: json.dumps(None if v is MISSING else v),
    "join": _join,
    "upper": lambda v: show(v).upper(),
    "lower": lambda v: show(v).lower(),
    "title": lambda v: show(v).title(),
    "len": lambda v: len(v or ()),
    "index": _index,
}


def _pipeline(expr: str, dot: Any) -> Any:
    value: Any = MISSING
    for i, part in enumerate(_split_pipes(expr)):
        tokens = _TOKEN.findall(part)
        if not tokens:
            raise TemplateError(f"template: empty command in {{{{{expr}}}}}")
        head, args = tokens[0], [_arg(t, dot) for t in tokens[1:]]
        if i > 0:
            args.append(value)
        if head in FUNCS:
            try:
                value = FUNCS[head](*args)
            except TypeError:
                raise TemplateError(f"template: wrong arguments to {head}") from None
        elif args:
            raise TemplateError(f"template: {head!r} is not a function (functions: {', '.join(sorted(FUNCS))})")
        else:
            value = _arg(head, dot)
    return value


def _split_pipes(expr: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in expr:
        if ch == '"':
            quoted = not quoted
        if ch == "|" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _arg(token: str, dot: Any) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.lstrip("-").isdigit():
        return int(token)
    if token in (".", "$"):
        return dot
    if token.startswith("."):
        value = dot
        for key in token[1:].split("."):
            value = lookup(value, key, token)
        return value
    raise TemplateError(f"template: cannot read {token!r} (a field is written .Name)")


ALIASES = {
    "names": "name",
    "ipaddress": "ip",
    "macaddress": "mac",
    "ipprefixlen": "prefix_len",
    "dnsnames": "dns_names",
}


def lookup(value: Any, key: str, path: str) -> Any:
    """A field of a dict by its name as written, lower-cased, snake_cased or Docker's alias."""
    if isinstance(value, dict):
        snake = _CAMEL.sub("_", key).lower()
        for k in (key, key.lower(), snake, ALIASES.get(key.lower(), "")):
            if k in value:
                return value[k]
    shown = path if len(path) < 60 else path[:57] + "..."
    raise TemplateError(f"template: no field {key!r} in {shown}")
