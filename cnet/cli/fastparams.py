"""Start-up: keep typer from importing pydantic to convert plain CLI values.

typer >= 0.2x coerces every parameter value through a pydantic TypeAdapter, built on first use:
importing pydantic and building the adapters costs ~90-110 ms per command here, more than
sqlalchemy core. cnet's parameters are only str, int, float, bool and list[str]; for those, a
value in the plain form is converted here, exactly as pydantic would. Anything else (another
annotation, a range, a value not in the plain form) goes through typer's own path unchanged, so
error messages stay typer's. On a typer without this machinery, install() does nothing.
"""

from __future__ import annotations

import re

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def _convert(annotation, value):
    """(True, converted) when the value is in the plain form of a supported annotation."""
    if annotation is str:
        return isinstance(value, str), value
    if annotation is int and isinstance(value, str) and _INT.match(value):
        return True, int(value)
    if annotation is float and isinstance(value, str) and _FLOAT.match(value):
        return True, float(value)
    if annotation in (int, float, bool) and type(value) is annotation:
        return True, value
    return False, None


def install() -> None:
    try:
        import typer.core as core
        from typer import _coercion
    except ImportError:
        return
    original = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(core, "_cnet_fast", False):
        return
    from dataclasses import dataclass
    from typing import Any, get_args, get_origin

    @dataclass(frozen=True)
    class FastRuntimeParam(base):  # type: ignore[misc, valid-type]
        descriptor: Any = None

        def _coerce_value(self, value, param, ctx):
            ann = self.annotation
            if get_origin(ann) is list:
                item = get_args(ann)[0]
                if isinstance(value, (list, tuple)):
                    out = []
                    for v in value:
                        ok, conv = _convert(item, v)
                        if not ok:
                            break
                        out.append(conv)
                    else:
                        return out
            else:
                ok, conv = _convert(ann, value)
                if ok:
                    return conv
            return original(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def build(descriptor):
        info = descriptor.parameter_info
        ann = descriptor.annotation
        plain = ann in (str, int, float, bool) or (get_origin(ann) is list and get_args(ann)[0] in (str, int, float))
        ranged = getattr(info, "min", None) is not None or getattr(info, "max", None) is not None
        if not plain or ranged or descriptor.file_annotation is not None or getattr(info, "parser", None) or getattr(info, "click_type", None):
            return original(descriptor)
        return FastRuntimeParam(annotation=ann, parameter_info=info, descriptor=descriptor)

    core.build_runtime_param = build
    core._cnet_fast = True
