"""CPU time and memory of groups of processes, read from /proc (Linux only).

A group is a name and its root pids (e.g. "postgres": the postmaster); every sample covers the
roots and all their descendants at that moment, so Postgres backends that come and go are in.
A process is identified by pid and start time, so a reused pid is never taken for the same
process.

CPU between two snapshots is, per group: each process's CPU since the first snapshot (all of
it for a process started since), plus the CPU of children its members reaped in between (the
kernel adds it to the parent's cutime/cstime: a backend that ran and exited between the two is
counted this way), minus the share such an exited process had already spent before the first
snapshot. A process that exited and was reaped by a process outside the group loses its CPU
since the first snapshot: rare here (Postgres backends are pooled, long-lived children of the
postmaster).
"""

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.services import kafka, postgres, redis
from infra.services import process as p
from infra.settings import Settings

PROC = Path("/proc")
# redis.py identifies its server by this word in the command line (no helper to import).
REDIS_MARKER = "redis-server"

ProcKey = tuple[int, int]  # (pid, start time in clock ticks)


class ProcStatsUnavailable(RuntimeError):
    """This system has no Linux /proc to read process statistics from."""


@dataclass(frozen=True)
class StatFields:
    """The fields of /proc/<pid>/stat we use (times in clock ticks)."""

    state: str
    ppid: int
    utime: int
    stime: int
    cutime: int  # reaped children, all their CPU
    cstime: int
    starttime: int


@dataclass(frozen=True)
class ProcSample:
    pid: int
    ppid: int
    started: int
    cpu_s: float
    children_cpu_s: float  # of children this process reaped
    peak_rss_kib: int  # VmHWM
    rss_kib: int  # VmRSS
    anon_rss_kib: int  # RssAnon: private memory, which a sum over processes does not overcount

    @property
    def key(self) -> ProcKey:
        return (self.pid, self.started)


@dataclass(frozen=True)
class GroupSample:
    procs: Mapping[ProcKey, ProcSample]


@dataclass(frozen=True)
class GroupUsage:
    cpu_s: float
    peak_rss_kib: int  # the largest VmHWM of the group's processes at the later snapshot
    rss_kib: int  # sum of current RSS (shared pages such as shared_buffers counted per process)
    anon_rss_kib: int  # sum of private resident memory
    processes: int  # processes in the later snapshot


def parse_stat(text: str) -> StatFields:
    """/proc/<pid>/stat; the command name in parentheses may itself hold spaces or ')'."""
    rest = text.rpartition(")")[2].split()
    if len(rest) < 20:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    # rest[0] is field 3 of proc(5): state, ppid=4, utime..cstime=14..17, starttime=22.
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return StatFields(rest[0], int(rest[1]), utime, stime, cutime, cstime, int(rest[19]))


def parse_status_kib(text: str) -> dict[str, int]:
    """The "Name:  123 kB" lines of /proc/<pid>/status, in KiB."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            values[name] = int(parts[0])
    return values


def descendants(roots: Iterable[int], parents: Mapping[int, int]) -> list[int]:
    """The roots and every process below them, given pid -> ppid."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, None] = {}  # insertion-ordered set
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = None
            todo.extend(children.get(pid, []))
    return list(found)


def group_usage(before: GroupSample, after: GroupSample) -> GroupUsage:
    """What one group used between two samples (see the module docstring for the CPU rule)."""
    cpu = 0.0
    for key, now in after.procs.items():
        then = before.procs.get(key)
        cpu += now.cpu_s + now.children_cpu_s
        if then is not None:
            cpu -= then.cpu_s + then.children_cpu_s
    by_pid = {s.pid: s for s in before.procs.values()}
    for key, gone in before.procs.items():
        if key not in after.procs and _reaped_inside(gone, by_pid, after.procs):
            cpu -= gone.cpu_s + gone.children_cpu_s  # its parent's children time holds it all
    procs = after.procs.values()
    return GroupUsage(
        cpu_s=max(cpu, 0.0),
        peak_rss_kib=max((s.peak_rss_kib for s in procs), default=0),
        rss_kib=sum(s.rss_kib for s in procs),
        anon_rss_kib=sum(s.anon_rss_kib for s in procs),
        processes=len(after.procs),
    )


def _reaped_inside(
    gone: ProcSample, by_pid: Mapping[int, ProcSample], survivors: Mapping[ProcKey, ProcSample]
) -> bool:
    """Whether an exited process's CPU ended up in a group member alive in both samples (its
    parent, or the parent's parent when that exited too)."""
    seen: set[int] = set()
    parent = by_pid.get(gone.ppid)
    while parent is not None and parent.pid not in seen:
        if parent.key in survivors:
            return True
        seen.add(parent.pid)
        parent = by_pid.get(parent.ppid)
    return False


# -- reading /proc -----------------------------------------------------------------------------


def _require_proc() -> None:
    if not sys.platform.startswith("linux") or not (PROC / "self" / "stat").exists():
        raise ProcStatsUnavailable(
            f"process statistics need Linux /proc; this system is {sys.platform}"
        )


def _ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> ProcSample | None:
    """The process's CPU and memory now; None when it is gone."""
    try:
        stat = parse_stat((PROC / str(pid) / "stat").read_text())
        status = parse_status_kib((PROC / str(pid) / "status").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None
    hz = _ticks_per_s()
    return ProcSample(
        pid=pid,
        ppid=stat.ppid,
        started=stat.starttime,
        cpu_s=(stat.utime + stat.stime) / hz,
        children_cpu_s=(stat.cutime + stat.cstime) / hz,
        peak_rss_kib=status.get("VmHWM", 0),
        rss_kib=status.get("VmRSS", 0),
        anon_rss_kib=status.get("RssAnon", 0),
    )


def _sample_or_fail(pid: int) -> ProcSample:
    _require_proc()
    found = sample(pid)
    if found is None:
        raise ProcessLookupError(f"no process {pid}")
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process (all its threads) has used so far."""
    return _sample_or_fail(pid).cpu_s


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in KiB."""
    return _sample_or_fail(pid).peak_rss_kib


def parents() -> dict[int, int]:
    """pid -> ppid for every process now."""
    found: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = parse_stat((entry / "stat").read_text()).ppid
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while we looked
    return found


def snapshot(groups: Mapping[str, Iterable[int]]) -> dict[str, GroupSample]:
    """Each group's processes (roots and descendants) as they are now; exited ones are skipped."""
    _require_proc()
    tree = parents()
    result: dict[str, GroupSample] = {}
    for name, roots in groups.items():
        samples = (sample(pid) for pid in descendants(roots, tree))
        result[name] = GroupSample({s.key: s for s in samples if s is not None})
    return result


def usage(
    before: Mapping[str, GroupSample], after: Mapping[str, GroupSample]
) -> dict[str, GroupUsage]:
    """Per group in either snapshot: CPU between them and memory at the later one."""
    empty = GroupSample({})
    return {
        name: group_usage(before.get(name, empty), after.get(name, empty))
        for name in dict.fromkeys([*before, *after])
    }


def service_pids(settings: Settings) -> dict[str, list[int]]:
    """The root pids of the Kafka, Postgres and Redis that payflow's scripts started (found by
    their pid files). A service payflow did not start (a foreign or external one) is left out:
    its cost cannot be measured here, and the caller should say so."""
    found = {
        "kafka": p.read_pid(kafka.pid_file(settings), kafka.marker(settings), unlink_stale=False),
        "postgres": postgres.owned_pid(settings),  # the postmaster; backends are its children
        "redis": p.read_pid(redis.pid_file(settings), REDIS_MARKER, unlink_stale=False),
    }
    return {name: [pid] for name, pid in found.items() if pid is not None}
