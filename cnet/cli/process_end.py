"""The end of a cnet process once its work is done: without the interpreter's teardown (freeing
every module and object one by one, which costs more than many a command's work: scripts/bench).
Used by the `cnet` command (cli.main.exit_now) and the CNI plugin (cli.cni_plugin)."""

from __future__ import annotations

import os
import sys


def end_process(code: int) -> None:
    """What a normal exit would still do, done here: flush stdout and stderr (a failed flush is an
    error exit, as it would be), logging's atexit handler (sh imports logging), the CNET_PROFILE
    report. When anything else could still need the interpreter's exit, a thread other than this
    one, the normal way is taken."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # the reader went away (`cnet ps | head`), or fd closed
            code = code or 1
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    profiling = sys.modules.get("cnet._profile")  # loaded only with CNET_PROFILE set
    if profiling is not None and profiling.PROFILE is not None:
        profiling.PROFILE.report()
    if "threading" in sys.modules:
        import threading

        if any(t is not threading.main_thread() and t.is_alive() for t in threading.enumerate()):
            sys.exit(code)
    os._exit(code)
