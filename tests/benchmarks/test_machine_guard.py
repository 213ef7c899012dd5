"""The benchmarks' machine guard: a row measured beside other work must be marked (or refused with ``--strict``),
the benchmark's own processes must not count as other work, and each limit marks a row on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from machine_guard import (
    MAX_OTHER_SHARE,
    MIN_PARALLEL_EFFICIENCY,
    SLOWED_EXIT,
    CpuTimes,
    GuardReport,
    MachineGuard,
    ReferenceTiming,
    settle,
)

QUIET = ReferenceTiming(all_cores_ms=20.0, one_core_ms=38.0, cores=2)
TAKEN = ReferenceTiming(all_cores_ms=36.0, one_core_ms=38.0, cores=2)


def test_proc_stat_counts_busy_and_steal_ticks() -> None:
    times = CpuTimes.parse("cpu  100 7 50 800 10 3 2 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    assert (times.busy, times.steal) == (100 + 7 + 50 + 3 + 2, 40)  # idle and iowait are not busy


@pytest.mark.parametrize(
    ("other", "steal", "after", "expected"),
    [
        (0.02, 0.0, QUIET, []),
        (0.31, 0.0, QUIET, ["other processes"]),
        (0.0, 0.08, QUIET, ["steal"]),
        (0.0, 0.0, TAKEN, ["after measuring"]),
        (None, None, QUIET, []),  # no /proc: the reference timing still judges
    ],
)
def test_each_limit_marks_the_row_on_its_own(
    other: float | None, steal: float | None, after: ReferenceTiming, expected: list[str]
) -> None:
    reasons = GuardReport(60.0, 2, other, steal, QUIET, after).slowed_by()
    assert len(reasons) == len(expected) and all(e in r for e, r in zip(expected, reasons, strict=True)), reasons


def test_strict_refuses_a_slowed_machine_and_marks_rows_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    slowed, quiet = GuardReport(60.0, 2, 0.3, 0.0, QUIET, QUIET), GuardReport(60.0, 2, 0.0, 0.0, QUIET, QUIET)
    assert settle(quiet, strict=True) == ""
    assert settle(slowed, strict=False) == " (slowed)"
    with pytest.raises(SystemExit) as refused:
        settle(slowed, strict=True)
    assert refused.value.code == SLOWED_EXIT
    assert "SLOWED: other processes took 30%" in capsys.readouterr().out


def test_a_process_spinning_beside_the_benchmark_is_other_work_unless_it_is_the_benchmarks_own() -> None:
    """Two guards over the same window, one told the spinner is the benchmark's own process (as a benchmark tells
    it about the server it started): only the other sees a slowed machine, and the difference is the spinner."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        theirs, ours = MachineGuard(), MachineGuard([spinner.pid])
        time.sleep(2.0)
        seen_by_theirs, seen_by_ours = theirs.finish(), ours.finish()
    finally:
        spinner.kill()
        spinner.wait()
    assert seen_by_theirs.other_share is not None and seen_by_ours.other_share is not None
    cores = os.cpu_count() or 1
    assert seen_by_theirs.other_share - seen_by_ours.other_share > 0.6 / cores  # one core's worth, give or take
    assert seen_by_theirs.other_share > MAX_OTHER_SHARE
    assert any("other processes" in reason for reason in seen_by_theirs.slowed_by())
    if cores > 1:  # the spinner holds a core the reference wants: the all-cores run loses its speed-up
        assert seen_by_theirs.after.efficiency < MIN_PARALLEL_EFFICIENCY, seen_by_theirs.line()
