"""Process statistics for `payflow bench`: /proc parsing and the CPU rule between snapshots,
on sample text; one check reads this very test process (the OS, not a mock)."""

import os

import pytest

from workers.bench.procstats import (
    GroupSample,
    ProcSample,
    cpu_seconds,
    descendants,
    group_usage,
    parse_stat,
    parse_status_kib,
    peak_rss_kib,
    snapshot,
    usage,
)

# A postgres backend whose command name holds spaces and a ')'.
STAT = (
    "4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194560 900 0 0 0 "
    "150 50 30 20 20 0 1 0 987654 221184000 4500 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 "
    "17 1 0 0 0 0 0"
)
STATUS = """Name:\tpostgres
State:\tS (sleeping)
Pid:\t4242
VmPeak:\t  230000 kB
VmHWM:\t   18000 kB
VmRSS:\t   17000 kB
RssAnon:\t    3000 kB
Threads:\t1
"""


def proc(
    pid: int, cpu: float, *, ppid: int = 1, started: int = 100, children: float = 0.0
) -> ProcSample:
    return ProcSample(pid, ppid, started, cpu, children, 1000, 900, 100)


def group(*procs: ProcSample) -> GroupSample:
    return GroupSample({s.key: s for s in procs})


def test_stat_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    stat = parse_stat(STAT)
    assert (stat.state, stat.ppid) == ("S", 4200)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (150, 50, 30, 20)
    assert stat.starttime == 987654


def test_stat_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a /proc/<pid>/stat"):
        parse_stat("4242 (x) S 1 2")


def test_status_memory_lines_in_kib() -> None:
    values = parse_status_kib(STATUS)
    assert values == {"VmPeak": 230000, "VmHWM": 18000, "VmRSS": 17000, "RssAnon": 3000}


def test_descendants_cover_the_whole_tree_once() -> None:
    parents = {10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 30: 30}
    assert sorted(descendants([10], parents)) == [10, 11, 12, 13]
    assert sorted(descendants([10, 12, 99], parents)) == [10, 11, 12, 13, 99]
    assert descendants([30], parents) == [30]  # a loop in the data does not spin


def test_cpu_of_processes_alive_in_both_and_of_new_ones() -> None:
    before = group(proc(1, 5.0), proc(2, 1.0, ppid=1))
    after = group(proc(1, 6.5), proc(2, 1.5, ppid=1), proc(3, 0.25, ppid=1))
    assert group_usage(before, after).cpu_s == pytest.approx(1.5 + 0.5 + 0.25)


def test_child_reaped_by_a_member_counts_only_its_cpu_since_the_first_snapshot() -> None:
    # Backend 2 used 1.0 s before, 3.0 s in all; the postmaster reaped it (children time +3.0).
    before = group(proc(1, 5.0), proc(2, 1.0, ppid=1))
    after = group(proc(1, 5.0, children=3.0))
    assert group_usage(before, after).cpu_s == pytest.approx(2.0)


def test_child_that_ran_and_exited_between_snapshots_counts_through_its_parent() -> None:
    before = group(proc(1, 5.0))
    after = group(proc(1, 5.0, children=0.75))
    assert group_usage(before, after).cpu_s == pytest.approx(0.75)


def test_process_reaped_outside_the_group_loses_its_cpu_and_nothing_else() -> None:
    before = group(proc(1, 5.0), proc(7, 2.0, ppid=999))
    after = group(proc(1, 5.5))
    assert group_usage(before, after).cpu_s == pytest.approx(0.5)


def test_a_reused_pid_is_a_new_process() -> None:
    before = group(proc(2, 4.0, started=100))
    after = group(proc(2, 0.5, started=200))
    assert group_usage(before, after).cpu_s == pytest.approx(0.5)


def test_memory_is_taken_at_the_later_snapshot() -> None:
    after = GroupSample(
        {
            (1, 1): ProcSample(1, 0, 1, 0.0, 0.0, 18000, 17000, 3000),
            (2, 1): ProcSample(2, 1, 1, 0.0, 0.0, 25000, 9000, 1000),
        }
    )
    got = group_usage(group(), after)
    assert (got.peak_rss_kib, got.rss_kib, got.anon_rss_kib, got.processes) == (
        25000,
        26000,
        4000,
        2,
    )


def test_usage_covers_groups_missing_from_one_snapshot() -> None:
    got = usage({"kafka": group(proc(5, 1.0))}, {"redis": group(proc(6, 0.5))})
    assert got["kafka"].cpu_s == 0.0 and got["kafka"].processes == 0
    assert got["redis"].cpu_s == pytest.approx(0.5)


def test_this_process_reads_from_the_os() -> None:
    pid = os.getpid()
    assert cpu_seconds(pid) > 0
    assert peak_rss_kib(pid) > 0
    sampled = snapshot({"tests": [pid]})["tests"]
    assert pid in {s.pid for s in sampled.procs.values()}
    with pytest.raises(ProcessLookupError, match="no process"):
        cpu_seconds(2**22 + 1)  # above pid_max's ceiling: never a process
