"""The executable `cnet cni install` puts in the runtime's plugin directory. Pure.

Runtimes exec plugins with little more than the CNI_* variables (no PYTHONPATH, maybe no PATH),
so it names its interpreter and the directory holding the cnet package by absolute path. A Python
shebang, not a shell wrapper: the plugin runs on every runtime call, and a shell start-up would
be paid each time.
"""

from __future__ import annotations

from ..errors import ValidationError

# Linux reads at most this many bytes of a "#!" line (BINPRM_BUF_SIZE - 1).
SHEBANG_MAX = 255
PLUGIN_NAME = "cnet"


def shim_text(python: str, package_root: str, search_path: list[str] | tuple[str, ...] = ()) -> str:
    """`search_path`: the directories the plugin imports from besides the standard library (the
    installing interpreter's site-packages, where `sh` lives). The plugin runs with -S: site's
    start-up (its .pth files, each possibly importing modules) is skipped on every call, and the
    search path is the one cnet was installed with, whatever the runtime's environment."""
    if not python.startswith("/") or any(c.isspace() for c in python):
        # The kernel splits a shebang at whitespace: such a path cannot be an interpreter line.
        raise ValidationError(f"the interpreter path {python!r} must be absolute and contain no whitespace")
    shebang = f"#!{python} -SE"  # one argument: the kernel passes everything after the path as one
    if len(shebang.encode()) > SHEBANG_MAX:
        raise ValidationError(f"the interpreter path {python!r} is too long for a #! line")
    return (
        f"{shebang}\n"
        '# cnet\'s CNI plugin (CNI type "cnet"), written by `cnet cni install`.\n'
        "# -SE and absolute paths: neither site's start-up nor the runtime's environment decide anything.\n"
        "import sys\n"
        f"sys.path[:0] = {[package_root, *[p for p in search_path if p != package_root]]!r}\n"
        "from cnet.cli.cni_plugin import main\n"
        "main()\n"
    )
