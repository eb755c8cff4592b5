"""Container states and kinds, as stored in the database: cnet.records' names for them, defined
apart from its dataclasses so that `cnet ps` (cnet/db/listing_store.py) reads them without
loading records (tests/unit/test_startup_imports.py). A `StrEnum` member is a `str` equal to its
stored text (`ContainerState.RUNNING == "running"`)."""

from enum import StrEnum


class ContainerState(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    RESTARTING = "restarting"  # the watcher is restarting the program (netns, address, ports kept)
    EXITED = "exited"
    REMOVING = "removing"
    ATTACHED = "attached"  # kind cni: wired by the runtime's ADD, until its DEL


class ContainerKind(StrEnum):
    """containers.kind: what a row stands for."""

    CNET = "cnet"  # a process `cnet run` started, with its own namespaces and watcher
    CNI = "cni"  # an attachment a CNI runtime made in its own namespace (no process of cnet's)
