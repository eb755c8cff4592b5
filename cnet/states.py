"""Container states and kinds as the database stores them (containers.state, containers.kind):
plain strings, so that `cnet ps` compares them without loading enum, a large share of its start-up
(tests/unit/test_startup_imports.py, scripts/bench). cnet.records makes its `StrEnum`s
ContainerState and ContainerKind of these very texts."""

# containers.state
CREATING = "creating"
RUNNING = "running"
RESTARTING = "restarting"  # the watcher is restarting the program (netns, address, ports kept)
EXITED = "exited"
REMOVING = "removing"
ATTACHED = "attached"  # kind cni: wired by the runtime's ADD, until its DEL

# containers.kind: what a row stands for
CNET = "cnet"  # a process `cnet run` started, with its own namespaces and watcher
CNI = "cni"  # an attachment a CNI runtime made in its own namespace (no process of cnet's)
