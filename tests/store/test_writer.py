"""The background writer: requests never wait on, or fail with, the database, and no prediction is ever lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from autoinspect.store import BackgroundWriter, PredictionEntry, PredictionLog, PredictionRecord

EntryFactory = Callable[..., PredictionEntry]


class FlakyLog(PredictionLog):
    """A real log behind a slow link that drops out for its first ``failures`` writes; every other failing write
    commits before failing, as when the database's reply is lost, so replays must skip rows already stored."""

    def __init__(self, engine: Engine, *, delay: float = 0.0, failures: int = 0) -> None:
        super().__init__(engine)
        self.delay = delay
        self.failures = failures
        self.calls = 0
        self.committed_unreported = 0

    def write(self, entries: Sequence[PredictionEntry]) -> int:
        self.calls += 1
        time.sleep(self.delay)
        if self.calls <= self.failures:
            if self.calls % 2:
                self.committed_unreported += super().write(entries)
            raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))
        return super().write(entries)


class HangingLog(PredictionLog):
    """A database that hangs until released, then refuses every write."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.release = threading.Event()

    def write(self, entries: Sequence[PredictionEntry]) -> int:
        self.release.wait()
        raise OperationalError("INSERT", {}, TimeoutError("statement timeout"))


def _stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(PredictionRecord.request_id)))


def _submit_from_threads(writer: BackgroundWriter, entries: list[PredictionEntry], threads: int = 4) -> bool:
    """Submit every entry from ``threads`` callers at once; ``True`` when all of them returned."""
    workers = [
        threading.Thread(target=lambda share: [writer.submit(entry) for entry in share], args=(entries[k::threads],))
        for k in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return not any(worker.is_alive() for worker in workers)


def test_no_request_is_lost_while_the_database_is_slow_and_failing(
    engine: Engine, make_entry: EntryFactory, tmp_path: Path
) -> None:
    total = 2_000
    entries = [make_entry(i) for i in range(total)]
    log = FlakyLog(engine, delay=0.02, failures=6)
    writer = BackgroundWriter(log, queue_size=8, batch_size=50, spill_path=tmp_path / "spill.jsonl")
    assert _submit_from_threads(writer, entries)
    stats = writer.close(timeout=30)

    ids = _stored_ids(engine)
    assert sorted(ids) == sorted(entry.request_id for entry in entries)  # every request, each exactly once
    assert stats.written + log.committed_unreported == total and stats.dropped == 0
    assert log.committed_unreported > 0  # replays really met rows that were already stored
    assert stats.spilled > total // 2 and stats.replayed == stats.spilled
    assert log.calls > log.failures
    assert not list(tmp_path.glob("spill.jsonl*"))


def test_submit_returns_while_the_database_hangs(engine: Engine, make_entry: EntryFactory, tmp_path: Path) -> None:
    """Requests never wait on the database: all submits return while every write is still hanging (a behaviour,
    not a speed; how long a submit takes is measured in benchmarks/serve_load.py)."""
    entries = [make_entry(i) for i in range(400)]
    log = HangingLog(engine)
    writer = BackgroundWriter(log, queue_size=8, batch_size=50, spill_path=tmp_path / "spill.jsonl")
    assert _submit_from_threads(writer, entries)
    assert not log.release.is_set()  # the database never answered while the callers ran
    log.release.set()
    writer.close(timeout=10)
    lines = [line for path in tmp_path.glob("spill.jsonl*") for line in path.read_text().splitlines()]
    spilled = {PredictionEntry.model_validate_json(line).request_id for line in lines}
    assert spilled == {entry.request_id for entry in entries}  # and the refused writes are all on disk


def test_spill_left_by_a_stopped_writer_is_replayed_by_the_next_one(
    engine: Engine, make_entry: EntryFactory, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    down = BackgroundWriter(FlakyLog(engine, failures=10**6), queue_size=100, batch_size=10, spill_path=spill)
    for i in range(25):
        down.submit(make_entry(i))
    stats = down.close(timeout=0.2)
    down.submit(make_entry(25))  # after close: spilled, not lost
    assert stats.written == 0 and down.stats.spilled == 26 and spill.is_file()

    with BackgroundWriter(PredictionLog(engine), queue_size=100, batch_size=10, spill_path=spill) as up:
        up.submit(make_entry(26))
    assert sorted(_stored_ids(engine)) == sorted(make_entry(i).request_id for i in range(27))
    assert up.stats.replayed == 26 and not spill.exists()


def test_a_torn_spill_line_is_set_aside_and_the_rest_is_replayed(
    engine: Engine, make_entry: EntryFactory, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    torn = make_entry(2).model_dump_json()[:40]
    spill.write_text(make_entry(0).model_dump_json() + "\n" + make_entry(1).model_dump_json() + "\n" + torn)
    writer = BackgroundWriter(FlakyLog(engine, failures=10**6), queue_size=1, batch_size=1, spill_path=spill)
    writer.submit(make_entry(3))
    writer.submit(make_entry(4))
    writer.close(timeout=0.2)

    with BackgroundWriter(PredictionLog(engine), queue_size=10, batch_size=10, spill_path=spill):
        pass
    assert sorted(_stored_ids(engine)) == [make_entry(i).request_id for i in (0, 1, 3, 4)]
    assert (tmp_path / "spill.jsonl.rejected").read_text() == torn + "\n"


def test_close_spills_what_a_hanging_database_still_holds(
    engine: Engine, make_entry: EntryFactory, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    log = HangingLog(engine)
    writer = BackgroundWriter(log, queue_size=100, batch_size=3, spill_path=spill)
    for i in range(7):
        writer.submit(make_entry(i))
    started = time.perf_counter()
    writer.close(timeout=0.2)
    assert time.perf_counter() - started < 1.0
    spilled = {PredictionEntry.model_validate_json(line).request_id for line in spill.read_text().splitlines()}
    assert spilled == {make_entry(i).request_id for i in range(7)}
    log.release.set()
    writer.close(timeout=0.3)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(PredictionRecord)).scalar_one() == 0
