"""Every answer is logged through a crash: a writer killed with SIGKILL while the database is locked loses nothing.

The writer runs in a child process against a real SQLite file that this test locks exclusively (a long
transaction elsewhere, a backup, a stalled disk), submits a burst and is killed while the entries still wait in
its memory. A new writer on the same files, once the lock is gone, must store every one of them.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from autoinspect.store import (
    BackgroundWriter,
    PredictionEntry,
    PredictionLog,
    PredictionRecord,
    create_schema,
    make_engine,
)
from autoinspect.store import writer as writer_module

EntryFactory = Callable[..., PredictionEntry]
BURST = 200
CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from autoinspect.store import BackgroundWriter, PredictionEntry, PredictionLog, make_engine
database, spill, journal = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "journal"
log = PredictionLog(make_engine(f"sqlite:///{database}"))
writer = BackgroundWriter(log, queue_size=1000, batch_size=20, spill_path=spill, journal=journal)
for index in range(int(sys.argv[4])):
    writer.submit(PredictionEntry(request_id=f"burst-{index}", created_at=datetime.now(UTC), model_version="1",
                                  route="champion", verdict="None", needs_review=False, max_score=0.0, latency_ms=1.0))
print("answered", flush=True)
sys.stdin.read()  # killed here, with the database still locked
"""


def _killed_during_a_lock(database: Path, spill: Path, *, journal: bool) -> None:
    """Run the child writer while ``database`` is locked; SIGKILL it once every submit has returned."""
    lock = sqlite3.connect(database, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(database), str(spill), "journal" if journal else "none", str(BURST)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "answered"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        lock.rollback()
        lock.close()


def _stored(database: Path) -> int:
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(PredictionRecord)).scalar_one()
    engine.dispose()
    return int(count)


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_a_writer_killed_while_the_database_is_locked_loses_nothing(tmp_path: Path, journal: bool) -> None:
    database, spill = tmp_path / "log.db", tmp_path / "spill.jsonl"
    engine = make_engine(f"sqlite:///{database}")
    create_schema(engine)
    _killed_during_a_lock(database, spill, journal=journal)
    with BackgroundWriter(PredictionLog(engine), queue_size=100, batch_size=50, spill_path=spill) as restarted:
        pass
    engine.dispose()
    if journal:
        assert _stored(database) == BURST and restarted.stats.replayed == BURST
        assert not list(tmp_path.glob("spill.jsonl*"))  # journal and spill replayed and removed
    else:  # the reference: without the journal the entries waiting in memory die with the process
        assert _stored(database) < BURST


class SlowLog(PredictionLog):
    """A database that takes 10 ms a batch: the queue never runs dry during a burst."""

    def write(self, entries: Sequence[PredictionEntry]) -> int:
        time.sleep(0.01)
        return super().write(entries)


def test_the_journal_is_sealed_under_unbroken_load_and_emptied_once_written(
    make_entry: EntryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "JOURNAL_SEGMENT_BYTES", 2_000)  # a few entries a segment
    database, spill = tmp_path / "log.db", tmp_path / "spill.jsonl"
    engine = make_engine(f"sqlite:///{database}")
    create_schema(engine)
    with BackgroundWriter(SlowLog(engine), queue_size=500, batch_size=5, spill_path=spill) as writer:
        for index in range(300):
            writer.submit(make_entry(index))
        sealed = len(list(tmp_path.glob("spill.jsonl.journal.*")))
        assert sealed > 10  # the burst outran the database: segments wait for their entries to be written
        deadline = time.monotonic() + 30
        while writer.stats.written < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(tmp_path.glob("spill.jsonl.journal.*"))) == 0  # deleted as their entries were written
    engine.dispose()
    assert _stored(database) == 300 and writer.stats.spilled == 0
    assert not list(tmp_path.glob("spill.jsonl*"))
