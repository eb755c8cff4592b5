"""Every broken state dir ends in one line and exit 1, with nothing changed in the kernel
(issue 15.5): a full disk, a garbage or truncated database, a database from a newer cnet, a
read-only state dir, a non-root user, a state dir with the wrong owner or mode.

Each case uses its own state dir inside the sandbox (a tmpfs where the case needs one), next to
a network created in a healthy state dir, so "nothing changed" compares a non-empty kernel."""

import pytest

pytestmark = pytest.mark.root

STATE = "/run/cnet-broken-state"


def _kernel(sb) -> dict:
    snap = sb.snapshot()
    snap.pop("db")
    return snap


def _cnet(sb, *args, user: str | None = None):
    argv = sb.cnet_argv("--state-dir", STATE, *args)
    if user:
        argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *argv]
    return sb.run(argv)


def _one_line_error(res, *needles: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("cnet: error: "), res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


# The commands every case runs: mutating (with and without kernel work), reading, and recovery.
COMMANDS = [
    ("net", "create", "x1", "--subnet", "10.66.0.0/24"),
    ("run", "-d", "--name", "c", "--", "sleep", "60"),
    ("gc",),
    ("ps",),
    ("journal",),
]


def _healthy_state(sb, size: str = "8m") -> None:
    sb.sh(f"mkdir -p {STATE} && mount -t tmpfs -o size={size},mode=0700 cnet-broken {STATE}")
    res = _cnet(sb, "net", "create", "ok", "--subnet", "10.67.0.0/24")
    assert res.returncode == 0, res.stderr
    _cnet(sb, "net", "rm", "ok")


def _db_file(sb) -> str:
    return f"{STATE}/cnet.db"


def _check_all(sb, *needles: str, commands=COMMANDS, user: str | None = None) -> None:
    before = _kernel(sb)
    for argv in commands:
        _one_line_error(_cnet(sb, *argv, user=user), *needles)
        assert _kernel(sb) == before, argv


@pytest.fixture
def base_net(sandbox):
    sandbox.cnet("net", "create", "base", "--subnet", "10.65.0.0/24")
    yield sandbox
    sandbox.run(["umount", "-l", STATE])
    sandbox.cnet("net", "rm", "base")


def test_disk_full(base_net):
    sb = base_net
    _healthy_state(sb, size="2m")
    # Fill the tmpfs to the last byte (dd stops at ENOSPC), and the database's own free pages too.
    sb.run(["dd", "if=/dev/zero", f"of={STATE}/filler", "bs=64k"])
    sb.run(["dd", "if=/dev/zero", f"of={STATE}/filler2", "bs=512"])
    _check_all(sb, "disk full", commands=COMMANDS[:3])
    # A fresh state dir on a full disk: the database cannot even be created.
    sb.sh(f"rm -f {STATE}/cnet.db* && dd if=/dev/zero of={STATE}/filler3 bs=512 || true")
    _check_all(sb, "disk full", commands=COMMANDS[:1])


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_database(base_net, damage):
    sb = base_net
    _healthy_state(sb)
    _cnet(sb, "net", "create", "y", "--subnet", "10.68.0.0/24")
    _cnet(sb, "net", "rm", "y")
    if damage == "garbage":
        sb.sh(f"rm -f {STATE}/cnet.db-wal {STATE}/cnet.db-shm; head -c 20000 /dev/urandom > {_db_file(sb)}")
    else:
        sb.run(
            [
                "python3",
                "-c",
                f"import sqlite3; c = sqlite3.connect('{_db_file(sb)}'); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); "
                "c.execute('PRAGMA journal_mode=DELETE'); c.close()",
            ],
            check=True,
        )
        sb.sh(f"truncate -s 8192 {_db_file(sb)}")
    _check_all(sb, "damaged", "move it away")


def test_newer_schema(base_net):
    sb = base_net
    _healthy_state(sb)
    sb.run(
        [
            "python3",
            "-c",
            f"import sqlite3; c = sqlite3.connect('{_db_file(sb)}'); "
            "c.execute(\"UPDATE alembic_version SET version_num = '9999_future'\"); c.commit()",
        ],
        check=True,
    )
    from cnet.db.migrate import HEAD_REVISION

    _check_all(sb, f"state database is at schema 9999_future, this cnet knows up to {HEAD_REVISION}: upgrade cnet")


def test_read_only_state_dir(base_net):
    sb = base_net
    _healthy_state(sb)
    sb.sh(f"mount -o remount,ro {STATE}")
    _check_all(sb, "read-only", commands=COMMANDS[:3])
    # A read-only dir with no database yet.
    sb.sh(f"mount -o remount,rw {STATE} && rm -f {STATE}/cnet.db* && mount -o remount,ro {STATE}")
    _check_all(sb, "read-only", commands=COMMANDS[:3])


def test_non_root_user(base_net):
    sb = base_net
    _healthy_state(sb)
    _check_all(sb, "must run as root", commands=COMMANDS[:3], user="65534")
    _check_all(sb, "cannot read the state dir", "needs root", commands=COMMANDS[3:], user="65534")


@pytest.mark.parametrize(("change", "needle"), [("chown 65534", "owned by uid 65534"), ("chmod 0777", "chmod 0700")])
def test_state_dir_owner_and_mode(base_net, change, needle):
    sb = base_net
    _healthy_state(sb)
    sb.sh(f"{change} {STATE}")
    _check_all(sb, needle)
    # A state dir that does not exist yet is created 0700 whatever the umask.
    sb.sh(f"rm -rf {STATE}/sub")
    res = sb.run(["sh", "-c", f"umask 0; {' '.join(sb.cnet_argv('--state-dir', STATE + '/sub', 'ps'))}"])
    assert res.returncode == 0 or "state dir" in res.stderr


def test_garbage_database_is_also_refused_by_sql(base_net):
    sb = base_net
    _healthy_state(sb)
    sb.sh(f"rm -f {STATE}/cnet.db-wal {STATE}/cnet.db-shm; head -c 20000 /dev/urandom > {_db_file(sb)}")
    res = _cnet(sb, "sql", "SELECT * FROM networks")
    _one_line_error(res)
