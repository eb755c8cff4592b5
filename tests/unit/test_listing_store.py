"""`cnet ps` reads a container's command word by word through SQLite's json_each
(cnet/db/listing_store.py): the words must be the stored ones, in order, whatever they hold."""

import pytest

from cnet.db import connection, listing_store, migrate, store
from cnet.records import Container, ContainerState

COMMANDS = {
    "a1" * 6: ("sleep", "infinity"),
    "b2" * 6: tuple(f"w{i}" for i in range(13)),  # array indexes past 9 sort as numbers
    "c3" * 6: ("sh", "-c", "echo \"a\\tb\" 'c'\n", "é中😀", "\x01\x7f", "", "[1, 2]", "null"),
    "d4" * 6: (),
    "e5" * 6: ("printf", "\udcff", "a\udcffb\udc80"),  # arguments that were not UTF-8 (os.fsdecode)
}
STATES = {
    "a1" * 6: ContainerState.RUNNING,
    "b2" * 6: ContainerState.EXITED,
    "c3" * 6: ContainerState.RESTARTING,
    "d4" * 6: ContainerState.RUNNING,
    "e5" * 6: ContainerState.RUNNING,
}


@pytest.fixture
def conn(tmp_path):
    connection.ensure_state_dir(tmp_path)
    c = connection.open_state(tmp_path)
    migrate.upgrade(c)
    with c.write():
        for i, (cid, command) in enumerate(COMMANDS.items()):
            store.insert_container(
                c,
                Container(
                    id=cid, name=f"c{i}", state=STATES[cid], command=command, hostname=f"c{i}", env={}, spec={},
                    detached=True, netns="cnet-" + cid, created_at=1_700_000_000.0 + i,
                ),
            )  # fmt: skip
    yield c
    c.close()


@pytest.mark.parametrize("all_", [True, False])
def test_commands_are_read_back_word_for_word(conn, all_):
    lines = listing_store.container_lines(conn, all_=all_)
    want = [cid for cid in COMMANDS if all_ or STATES[cid] != ContainerState.EXITED]
    assert [line[0] for line in lines] == want
    for line in lines:
        assert line[6] == list(COMMANDS[line[0]])
        assert all(type(w) is str for w in line[6])
        assert line[2] == STATES[line[0]] and type(line[2]) is str
