"""`cnet-cni`: the CNI plugin's entry point (installed as the executable `cnet`).

A runtime execs it for every ADD, DEL, CHECK, GC, STATUS and VERSION, so it starts with nothing:
VERSION imports only the version table; the other verbs import the protocol, then the service
that does the work. Output is the CNI document on stdout (result, version report or error JSON);
exit status 0 on success, 1 with an error document otherwise. Nothing else is ever printed.
"""

from __future__ import annotations

import json
import os
import sys

# Runtimes may exec plugins with no PATH at all; ip, iptables-restore and nsenter must be found.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _emit(doc: dict | None) -> None:
    if doc is not None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()


def _terminate(_sig: int, _frame: object) -> None:
    # A runtime giving up on a slow call sends SIGTERM: turning it into an exception lets the
    # journal roll the half-made attachment back now rather than at the next call.
    raise KeyboardInterrupt


def _exit(code: int) -> None:
    """End the process without the interpreter's teardown (freeing every module one by one, paid
    on every runtime call), as the `cnet` command does (cli.main.exit_now): by now the document
    is written and flushed and the database closed (services.cni.dispatch closes it). The plugin
    starts no thread; should one ever be alive, the normal exit waits for it."""
    from .process_end import end_process

    end_process(code)


def main() -> None:
    if not os.environ.get("PATH"):
        os.environ["PATH"] = DEFAULT_PATH
    os.umask(0o077)  # the state database and journal are private to root
    data = sys.stdin.buffer.read() if sys.stdin is not None else b""
    if os.environ.get("CNI_COMMAND") == "VERSION":
        from ..cni.versions import version_report

        _emit(version_report(data))
        _exit(0)

    import signal

    signal.signal(signal.SIGTERM, _terminate)
    from ..cni import protocol
    from ..cni.versions import requested_version

    version = requested_version(data)
    try:
        env = protocol.parse_env(os.environ)
        conf = protocol.parse_config(data, env.command)
        from ..services import cni as service

        doc = service.dispatch(env, conf, environ=os.environ)
    except BaseException as exc:  # every failure becomes the CNI error document, never a traceback
        if isinstance(exc, SystemExit):
            raise
        err = protocol.error_from(exc)
        if os.environ.get("CNET_DEBUG") and err.code == protocol.Code.INTERNAL:
            import traceback

            err.details = traceback.format_exc()
        _emit(protocol.error_document(version, err))
        _exit(1)
    _emit(doc)
    _exit(0)


if __name__ == "__main__":
    main()
