"""Whether the machine ran at full speed while a benchmark measured, so that a slowed run cannot fill a table.

Why: on 2 cores another process slows an ONNX Runtime run far more than its share (each operator is split over both
cores and waits for the slower half), and on a shared host the hypervisor takes time from this machine (steal)
that no process here shows. A serving table once held a 2.6x-inflated figure while other processes took only 11 %
of the cores. So a benchmark wraps its measuring window in a :class:`MachineGuard`, which records

- the share of the cores other processes used (``/proc/stat`` minus the benchmark's own processes),
- the share the hypervisor stole (``/proc/stat``'s steal column),
- a fixed reference workload (a small ONNX graph of matrix products) timed on all cores and on one, before and
  after measuring: on free cores the parallel run is nearly ``cores`` times quicker, on taken cores it is not,
  whatever took them (another process, steal, a throttled CPU). It is measured in the run itself, so no figure
  from another machine is needed to judge it.

:meth:`GuardReport.slowed_by` names what exceeded its limit; benchmarks mark such a row ``(slowed)`` and, with
``--strict``, refuse to print it (exit code :data:`SLOWED_EXIT`).

Example:
    >>> before = CpuTimes.parse("cpu  100 0 50 800 10 0 0 0 0 0")
    >>> after = CpuTimes.parse("cpu  170 0 80 900 10 0 0 20 0 0")
    >>> after.busy_s(100) - before.busy_s(100), after.steal_s(100) - before.steal_s(100)
    (1.0, 0.2)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_OTHER_SHARE = 0.10
"""Share of all cores that other processes may take during the window before the row is marked."""
MAX_STEAL_SHARE = 0.05
"""Share of all cores the hypervisor may steal during the window."""
MIN_PARALLEL_EFFICIENCY = 0.75
"""The reference workload on all cores must run at least this share of ``cores`` times faster than on one (2 cores:
1.5x); a quiet 2-core machine gives 0.9 and more."""
SLOWED_EXIT = 3
"""Exit code of a benchmark run with ``--strict`` on a slowed machine."""
REFERENCE_SIDE = 768
"""Side of the reference workload's square matrices: a run takes tens of milliseconds on 2 cores, long enough for
the timer and short enough to repeat."""
REFERENCE_LAYERS = 4
REFERENCE_REPEATS = 5


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time counters (``/proc/stat``'s first line), in clock ticks since boot."""

    busy: int
    """user + nice + system + irq + softirq: time some process (or the kernel for it) ran."""
    steal: int
    """Time the hypervisor gave to other guests while this machine wanted to run."""

    @classmethod
    def parse(cls, proc_stat: str) -> CpuTimes:
        fields = [int(v) for v in proc_stat.split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return cls(busy=user + nice + system + irq + softirq, steal=steal)

    @classmethod
    def read(cls) -> CpuTimes | None:
        """Now, or ``None`` off Linux."""
        try:
            return cls.parse(Path("/proc/stat").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def busy_s(self, ticks_per_s: int) -> float:
        return self.busy / ticks_per_s

    def steal_s(self, ticks_per_s: int) -> float:
        return self.steal / ticks_per_s


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process and its waited-for children, or ``None`` when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ReferenceTiming:
    """Best-of-N milliseconds of the reference workload on all cores and on one."""

    all_cores_ms: float
    one_core_ms: float
    cores: int

    @property
    def efficiency(self) -> float:
        """Speed-up on all cores over one, as a share of the ideal (1.0: ``cores`` times faster)."""
        return self.one_core_ms / self.all_cores_ms / self.cores


def _reference_model() -> bytes:
    """A fixed graph of :data:`REFERENCE_LAYERS` matrix products with ReLUs, weights from a fixed seed."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    side = REFERENCE_SIDE
    nodes, weights = [], []
    previous = "x"
    for layer in range(REFERENCE_LAYERS):
        weight = (rng.standard_normal((side, side)) / np.sqrt(side)).astype(np.float32)
        weights.append(numpy_helper.from_array(weight, name=f"w{layer}"))
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"m{layer}"]),
            helper.make_node("Relu", [f"m{layer}"], [f"r{layer}"]),
        ]
        previous = f"r{layer}"
    graph = helper.make_graph(
        nodes,
        "reference",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [side, side])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [side, side])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def time_reference(repeats: int = REFERENCE_REPEATS) -> ReferenceTiming:
    """The reference workload timed through ONNX Runtime on all cores, then on one thread."""
    import onnxruntime as ort

    model = _reference_model()
    feed = {"x": np.random.default_rng(1).standard_normal((REFERENCE_SIDE, REFERENCE_SIDE)).astype(np.float32)}
    cores = os.cpu_count() or 1
    best = {}
    for threads in (cores, 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        session.run(None, feed)  # warm-up: allocations and the thread pool's start
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(None, feed)
            timings.append((time.perf_counter() - started) * 1000)
        best[threads] = min(timings)
    return ReferenceTiming(all_cores_ms=best[cores], one_core_ms=best[1], cores=cores)


@dataclass(frozen=True)
class GuardReport:
    """What the guard saw over one measuring window."""

    wall_s: float
    cores: int
    other_share: float | None
    """Share of all cores' time used by processes other than the benchmark's; ``None`` off Linux."""
    steal_share: float | None
    before: ReferenceTiming
    after: ReferenceTiming

    def slowed_by(self) -> list[str]:
        """What exceeded its limit, in words (empty: the machine ran at full speed).

        Example:
            >>> quiet = ReferenceTiming(all_cores_ms=20.0, one_core_ms=38.0, cores=2)
            >>> taken = ReferenceTiming(all_cores_ms=36.0, one_core_ms=38.0, cores=2)
            >>> GuardReport(60.0, 2, 0.02, 0.0, quiet, quiet).slowed_by()
            []
            >>> GuardReport(60.0, 2, 0.31, 0.08, quiet, taken).slowed_by()  # doctest: +NORMALIZE_WHITESPACE
            ['other processes took 31% of the cores (limit 10%)', 'steal took 8% of the cores (limit 5%)',
             'on 2 cores the reference ran at 1.06x its one-core speed after measuring (at least 1.50x)']
        """
        reasons = []
        if self.other_share is not None and self.other_share > MAX_OTHER_SHARE:
            reasons.append(f"other processes took {self.other_share:.0%} of the cores (limit {MAX_OTHER_SHARE:.0%})")
        if self.steal_share is not None and self.steal_share > MAX_STEAL_SHARE:
            reasons.append(f"steal took {self.steal_share:.0%} of the cores (limit {MAX_STEAL_SHARE:.0%})")
        wanted = MIN_PARALLEL_EFFICIENCY * self.cores
        for when, timing in (("before", self.before), ("after", self.after)):
            speedup = timing.efficiency * self.cores
            if self.cores > 1 and timing.efficiency < MIN_PARALLEL_EFFICIENCY:
                reasons.append(
                    f"on {self.cores} cores the reference ran at {speedup:.2f}x its one-core speed {when} measuring "
                    f"(at least {wanted:.2f}x)"
                )
        return reasons

    def line(self) -> str:
        """One sentence for the benchmark's output: every figure, then the verdict."""
        share = "unknown (no /proc)" if self.other_share is None else f"{self.other_share:.0%}"
        steal = "unknown" if self.steal_share is None else f"{self.steal_share:.0%}"
        timings = ", ".join(
            f"{when} {t.all_cores_ms:.1f} ms on {t.cores} cores / {t.one_core_ms:.1f} ms on one"
            for when, t in (("before", self.before), ("after", self.after))
        )
        reasons = self.slowed_by()
        verdict = "SLOWED: " + "; ".join(reasons) if reasons else "machine at full speed"
        return (
            f"machine over {self.wall_s:.0f} s of measuring: other processes {share} of {self.cores} cores, steal "
            f"{steal}; reference {timings}; {verdict}"
        )


class MachineGuard:
    """Samples the machine at :meth:`start` and :meth:`finish` around a measuring window.

    ``own_pids`` are the benchmark's own processes besides this one (e.g. the server it started): their CPU time
    is the measurement itself, not interference.
    """

    def __init__(self, own_pids: Sequence[int] = ()) -> None:
        self._pids = [os.getpid(), *own_pids]
        self._cores = os.cpu_count() or 1
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._before = time_reference()
        self._started = time.perf_counter()
        self._times = CpuTimes.read()
        self._own = self._own_cpu_s()

    def _own_cpu_s(self) -> float:
        total = 0.0
        for pid in self._pids:
            if pid == os.getpid():  # with its waited-for children: worker processes a benchmark started and joined
                own = os.times()
                total += own.user + own.system + own.children_user + own.children_system
            else:
                total += process_cpu_s(pid) or 0.0
        return total

    def finish(self) -> GuardReport:
        """Close the window (its counters first, then the reference timing after it)."""
        wall = time.perf_counter() - self._started
        times, own = CpuTimes.read(), self._own_cpu_s()
        other = steal = None
        if self._times is not None and times is not None:
            capacity = wall * self._cores
            busy = times.busy_s(self._ticks) - self._times.busy_s(self._ticks)
            other = max(0.0, busy - (own - self._own)) / capacity
            steal = (times.steal_s(self._ticks) - self._times.steal_s(self._ticks)) / capacity
        return GuardReport(wall, self._cores, other, steal, self._before, time_reference())


def add_strict_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"refuse to print figures measured on a slowed machine (exit {SLOWED_EXIT})",
    )


def settle(report: GuardReport, *, strict: bool) -> str:
    """Print the guard's line; with ``strict`` exit on a slowed machine. Returns the mark for the table's rows."""
    print(report.line())
    if report.slowed_by() and strict:
        print("figures refused: rerun on a quiet machine", file=sys.stderr)
        raise SystemExit(SLOWED_EXIT)
    return " (slowed)" if report.slowed_by() else ""


def main() -> None:
    """Is the machine quiet enough to benchmark now? Watch it idle for a while and say."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    add_strict_flag(parser)
    args = parser.parse_args()
    guard = MachineGuard()
    time.sleep(args.seconds)
    settle(guard.finish(), strict=args.strict)


if __name__ == "__main__":
    main()
