"""The log writer of a detached container: its command, and the format of the records it writes.

One process per detached container, started by cnet beside the watcher: the container's stdout
and stderr reach it through two pipes (its stdin and fd STDERR_FD). It is a Perl script run by
`perl` (Debian's perl-base, which is Essential: always installed), using builtins only (no module
is loaded: each costs resident memory per container). Perl rather than a shell or awk because
one process can wait on both pipes at once (select), keeps each stream's bytes apart, bounds
what it holds (once CHUNK bytes of a line wait for their newline they are written as a piece, so
no output can grow it), renames
the file at the size limit and knows the size exactly, since it is the only writer.

Each record is one line, the CRI log format (Kubernetes, containerd): `TIME STREAM TAG DATA`,
TIME in UTC with nine fraction digits (fixed width, so records compare as strings), STREAM
`stdout` or `stderr`, TAG `F` when DATA ended with a newline (not stored), `P` when it did not
(a partial line: the rest of the program's line follows in later records, or the program exited
without a newline, and its bytes are kept as written).

Time comes from /proc/uptime (hundredths of a second; perl-base has no finer clock) plus the
offset to the epoch measured by cnet when it starts the writer; the writer keeps that sum inside
the second that time() gives, so a step of the system clock moves the stamps with it.

The writer ends when both pipes are closed by every holder: the container's processes (all of
them die with its PID 1, being in its PID namespace) and the watcher (which keeps them for a
restart). A killed watcher therefore ends it too. While it runs it holds a shared lock on
LOG.lock, which `cnet logs -f` waits on to see the last lines written.
"""

from __future__ import annotations

from ..records import DEFAULT_LOG_MAX_SIZE

STDERR_FD = 4  # the stderr pipe's read end, in the writer
CHUNK = 16384  # a line's bytes are written as a partial record once this many wait (Docker: 16 KiB)
# It reads 4 KiB at a time: larger reads were faster but left more of the heap dirty after a burst
# of output (scripts/bench measures the writer's memory).
DEFAULT_MAX_SIZE = DEFAULT_LOG_MAX_SIZE

# One line (as ps and --dry-run show it); perl needs no newlines between these statements.
WRITER_SCRIPT = " ".join(
    line.strip()
    for line in r"""
($log, $max, $off) = @ARGV; umask 077;
open $in[0], '<&=', 0 or die "cnet-log: stdin: $!\n";
open $in[1], '<&=', 4 or die "cnet-log: fd 4: $!\n";
@fd = (0, 4); @name = ('stdout', 'stderr'); @buf = ('', ''); @live = (1, 1);
open LOCK, '>>', "$log.lock" and flock LOCK, 1;
sub reopen { open OUT, '>>', $log or die "cnet-log: $log: $!\n"; $size = -s OUT || 0 }
sub flush {
  while (length $pend) { $n = syswrite OUT, $pend; last unless $n; substr($pend, 0, $n) = '' }
  $size += $w; $w = 0; $pend = '';
}
sub put {
  if ($size + $w > 0 && $size + $w + length($_[0]) > $max) {
    flush(); close OUT; rename $log, "$log.1"; reopen();
  }
  $pend .= $_[0]; $w += length $_[0];
}
sub stamp {
  open U, '<', '/proc/uptime' and $up = (split ' ', <U>)[0]; close U;
  $s = time; $t = $off + $up;
  if ($t < $s) { $off = $s - $up; $t = $s } elsif ($t >= $s + 1) { $off = $s + 0.99 - $up; $t = $s + 0.99 }
  $i = int $t; @g = gmtime $i;
  sprintf '%04d-%02d-%02dT%02d:%02d:%02d.%09dZ', $g[5] + 1900, $g[4] + 1, @g[3, 2, 1, 0], ($t - $i) * 1e9;
}
reopen();
while ($live[0] || $live[1]) {
  $rin = ''; for (0, 1) { vec($rin, $fd[$_], 1) = 1 if $live[$_] }
  next if select($rout = $rin, undef, undef, undef) < 1;
  $ts = stamp();
  for $k (0, 1) {
    next unless $live[$k] && vec($rout, $fd[$k], 1);
    if (!sysread $in[$k], $buf[$k], 4096, length $buf[$k]) {
      put("$ts $name[$k] P $buf[$k]\n") if length $buf[$k];
      $buf[$k] = ''; $live[$k] = 0; next;
    }
    @l = split /\n/, $buf[$k], -1; $buf[$k] = pop @l;
    put("$ts $name[$k] F $_\n") for @l;
    if (length $buf[$k] >= 16384) { put("$ts $name[$k] P $buf[$k]\n"); $buf[$k] = '' }
  }
  flush();
}
flush();
""".splitlines()
    if line.strip()
)


def writer_argv(log_path: str, max_size: int, clock_offset: float) -> list[str]:
    """The writer's command. clock_offset: the epoch time minus /proc/uptime, measured now."""
    return ["perl", "-e", WRITER_SCRIPT, log_path, str(max_size), f"{clock_offset:.6f}"]


# TIME STREAM TAG DATA: fixed-width up to DATA.
TIME_WIDTH = 30  # 2026-01-02T03:04:05.123456789Z
DATA_AT = TIME_WIDTH + 10


_HEADS = {b" stdout F ": ("stdout", True), b" stdout P ": ("stdout", False), b" stderr F ": ("stderr", True),
          b" stderr P ": ("stderr", False)}  # fmt: skip


def parse_record(line: bytes) -> tuple[bytes, str, bytes] | None:
    """(time, stream, bytes as the program wrote them) of one record line (with its newline),
    or None for a line that is not a record (a log written before cnet kept times). The fixed
    part is looked up rather than matched (reading a full log is this function, 200,000 times)."""
    head = _HEADS.get(line[TIME_WIDTH:DATA_AT])
    if head is None or line[29:30] != b"Z" or line[10:11] != b"T" or not line[:4].isdigit():
        return None
    stream, full = head
    data = line[DATA_AT:]
    if not full and data.endswith(b"\n"):
        data = data[:-1]
    return line[:TIME_WIDTH], stream, data
