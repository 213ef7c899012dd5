"""Writes predictions off the request path, so a slow or failing database never slows or fails a request.

Requests hand entries to :meth:`BackgroundWriter.submit`, which appends the entry to a write-ahead journal and
enqueues it. One daemon thread drains the queue in batches into the
:class:`~autoinspect.store.prediction_log.PredictionLog`. When the queue is full, or a batch fails, the entries are
appended to a JSON-lines spill file and fsync'd; after the next successful batch (and on
:meth:`~BackgroundWriter.close`, and when a writer starts on a leftover file) the spill is replayed. Replays may
repeat rows that did commit; the log skips a ``request_id`` it already holds, so each request is stored once.

The journal is what makes "every answer is logged" hold when the process dies (SIGKILL, OOM kill) while entries
still wait in memory, e.g. behind a database lock: ``submit`` returns, and the answer leaves, only after the line
reached the kernel (one buffered append; the writer thread fsyncs it within a batch, for power loss). Lines are
dropped once everything up to them is in the database or the spill: the journal is emptied whenever the queue
runs dry, and under unbroken load sealed into segments that are deleted once written. A writer that starts on a
journal moves it into the spill, whose replay stores what the dead process had not.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from pydantic import ValidationError

from autoinspect.store.prediction_log import PredictionLog
from autoinspect.store.tables import PredictionEntry

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
"""How often an idle writer looks for a close request; bounds how long ``close`` waits on an empty queue."""
MAX_RETRY_PAUSE_SECONDS = 1.0
"""Longest pause between attempts to replay the spill while closing against a database that is down."""
JOURNAL_SEGMENT_BYTES = 4_000_000
"""The journal is sealed into a segment at this size when the queue never runs dry to empty it."""


@dataclass(frozen=True)
class WriterStats:
    """What a writer did so far; exported as metrics by the service."""

    written: int
    """Rows inserted into the log, from the queue or from a replayed spill."""
    spilled: int
    """Entries appended to the spill file (queue full, database write failed, or submitted after close)."""
    replayed: int
    """Spilled entries read back and written (or found already stored)."""
    dropped: int
    """Entries lost because even the spill file could not be written (disk full): each one is logged as an error."""


class BackgroundWriter:
    """A bounded queue and a thread that batches its entries into the prediction log.

    Example:
        >>> import tempfile
        >>> from autoinspect.store.database import create_schema, make_engine
        >>> home = Path(tempfile.mkdtemp())
        >>> engine = make_engine(f"sqlite:///{home / 'log.db'}")
        >>> create_schema(engine)
        >>> with BackgroundWriter(PredictionLog(engine), queue_size=10, batch_size=5,
        ...                       spill_path=home / "spill.jsonl") as writer:
        ...     writer.submit(PredictionEntry(request_id="r1", model_version="1", route="champion",
        ...                                   verdict="None", needs_review=False, max_score=0.0, latency_ms=9.0))
        >>> writer.stats.written
        1
    """

    def __init__(
        self, log: PredictionLog, *, queue_size: int, batch_size: int, spill_path: Path, journal: bool = True
    ) -> None:
        self._log = log
        self._queue: queue.Queue[tuple[int, PredictionEntry]] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._spill_path = spill_path
        self._replay_path = spill_path.with_name(spill_path.name + ".replaying")
        """The spill file is renamed to this while it is replayed, so new spills go to a fresh file meanwhile."""
        self._rejected_path = spill_path.with_name(spill_path.name + ".rejected")
        """Spill lines that no longer parse (a write torn by a crash) are kept here for a human, never deleted."""
        self._spill_lock = threading.Lock()
        self._accepting = threading.Lock()
        """Makes "not closed, so enqueue" atomic against ``close``: nothing can land in a queue no thread drains."""
        self._closing = threading.Event()
        self._close_deadline = float("inf")
        self._in_flight: list[PredictionEntry] = []
        self._spill_file: BinaryIO | None = None
        self._spill_dirty = False
        """Lines were appended to the spill file since its last fsync."""
        self._written = self._spilled = self._replayed = self._dropped = 0
        spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._end_torn_line(self._spill_path)
        self._journal = _Journal(spill_path.with_name(spill_path.name + ".journal")) if journal else None
        if self._journal is not None:
            self._adopt(self._journal.leftovers())
        self._spill_pending = self._spill_path.exists() or self._replay_path.exists()
        self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> WriterStats:
        return WriterStats(self._written, self._spilled, self._replayed, self._dropped)

    def submit(self, entry: PredictionEntry) -> None:
        """Journal ``entry`` and hand it to the writer without waiting on the database; spills it to disk when
        the queue is full or closed."""
        with self._accepting:
            if not self._closing.is_set():
                sequence = self._journal.append(entry) if self._journal is not None else 0
                try:
                    self._queue.put_nowait((sequence, entry))
                    return
                except queue.Full:
                    pass
            closed = self._closing.is_set()
        self._spill([entry], durable=closed)

    def close(self, timeout: float = 30.0) -> WriterStats:
        """Write what is queued, replay the spill file, and stop the thread.

        Whatever is still in memory after ``timeout`` seconds (a database that hangs) is spilled, so after this
        returns every submitted entry is in the database or in the spill file that the next writer replays.
        """
        with self._accepting:
            self._close_deadline = time.monotonic() + timeout
            self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            leftovers = [*self._in_flight, *(entry for _, entry in self._drain())]
            logger.warning("prediction writer still busy after %.1fs; spilling %d entries", timeout, len(leftovers))
            self._spill(leftovers, durable=True)
        with self._spill_lock:
            self._close_spill_file()
        if self._journal is not None:  # everything is written or spilled by now (leftovers above)
            self._journal.settle(self._journal.last)
            self._journal.close()
        if self._spill_path.exists() or self._replay_path.exists():
            logger.warning("predictions remain in %s; the next writer replays them", self._spill_path)
        return self.stats

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        if self._spill_pending:
            self._try_replay()
        while True:
            self._sync_spill()
            if self._journal is not None:
                self._journal.sync()
            batch = self._take_batch()
            if batch:
                self._write([entry for _, entry in batch])
                if self._journal is not None:  # written or durably spilled: the journal no longer needs them
                    self._journal.settle(batch[-1][0])
            elif self._closing.is_set():
                break
        self._replay_until_deadline()

    def _replay_until_deadline(self) -> None:
        """On close, retry the spill with backoff until it is written or the close timeout runs out."""
        pause = POLL_SECONDS
        while not self._try_replay() and time.monotonic() + pause < self._close_deadline:
            time.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_PAUSE_SECONDS)

    def _take_batch(self) -> list[tuple[int, PredictionEntry]]:
        try:
            batch = [self._queue.get(timeout=POLL_SECONDS)]
        except queue.Empty:
            return []
        batch.extend(self._drain(self._batch_size - 1))
        return batch

    def _drain(self, limit: int | None = None) -> list[tuple[int, PredictionEntry]]:
        taken: list[tuple[int, PredictionEntry]] = []
        while limit is None or len(taken) < limit:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return taken

    def _write(self, batch: list[PredictionEntry]) -> None:
        self._in_flight = batch
        try:
            self._written += self._log.write(batch)
        except Exception:
            logger.warning("prediction log write failed; spilling %d entries", len(batch), exc_info=True)
            self._spill(batch, durable=True)
            return
        finally:
            self._in_flight = []
        if self._spill_pending:
            self._try_replay()

    def _spill(self, entries: list[PredictionEntry], *, durable: bool) -> None:
        """Append ``entries`` to the spill file: fsync'd now when ``durable``, else by the writer thread's next loop.

        A request thread must not wait for an fsync (about a millisecond, serialised between threads): its lines
        reach the kernel at once, which survives a crash of this process, and reach the disk within one batch.
        """
        if not entries:
            return
        payload = "".join(entry.model_dump_json() + "\n" for entry in entries).encode()
        with self._spill_lock:
            try:
                if self._spill_file is None:
                    self._spill_file = self._spill_path.open("ab")
                self._spill_file.write(payload)
                self._spill_file.flush()
                self._spill_dirty = True
                if durable:
                    self._close_spill_file()
            except OSError:
                self._dropped += len(entries)
                logger.exception(
                    "could not spill %d predictions to %s; lost: %s",
                    len(entries),
                    self._spill_path,
                    [entry.request_id for entry in entries],
                )
                return
            self._spilled += len(entries)
            self._spill_pending = True

    def _sync_spill(self) -> None:
        """fsync what requests spilled since the last call, outside the lock so their submits never wait on it."""
        with self._spill_lock:
            if not self._spill_dirty or self._spill_file is None:
                return
            descriptor = os.dup(self._spill_file.fileno())
            self._spill_dirty = False
        _fsync_and_close(descriptor, self._spill_path)

    def _close_spill_file(self) -> None:
        """Sync and close the spill file; the caller holds the spill lock."""
        if self._spill_file is not None:
            os.fsync(self._spill_file.fileno())
            self._spill_file.close()
            self._spill_file = None
            self._spill_dirty = False

    def _try_replay(self) -> bool:
        try:
            self._replay()
            return True
        except Exception:
            logger.warning(
                "replaying %s failed; retrying after the next successful write", self._spill_path, exc_info=True
            )
            return False

    def _replay(self) -> None:
        while True:
            if not self._replay_path.exists():
                with self._spill_lock:
                    self._close_spill_file()
                    if not self._spill_path.exists():
                        self._spill_pending = False
                        return
                    self._spill_path.replace(self._replay_path)
            entries = self._read_spill()
            for start in range(0, len(entries), self._batch_size):
                self._written += self._log.write(entries[start : start + self._batch_size])
            self._replay_path.unlink()
            self._replayed += len(entries)
            logger.info("replayed %d spilled predictions", len(entries))

    def _read_spill(self) -> list[PredictionEntry]:
        entries: list[PredictionEntry] = []
        torn: list[str] = []
        for line in self._replay_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entries.append(PredictionEntry.model_validate_json(line))
            except ValidationError:
                torn.append(line)
        if torn:
            logger.error("%d unreadable spill lines kept in %s", len(torn), self._rejected_path)
            with self._rejected_path.open("a", encoding="utf-8") as rejected:
                rejected.writelines(line + "\n" for line in torn)
            # Rewritten without them, so a replay that fails and is retried does not set them aside twice.
            clean = self._replay_path.with_name(self._replay_path.name + ".tmp")
            clean.write_text("".join(entry.model_dump_json() + "\n" for entry in entries), encoding="utf-8")
            clean.replace(self._replay_path)
        return entries

    @staticmethod
    def _end_torn_line(path: Path) -> None:
        """A crash mid-append leaves a line without its newline; end it so the next entry is not glued onto it."""
        if path.exists() and path.stat().st_size:
            with path.open("rb+") as file:
                file.seek(-1, os.SEEK_END)
                if file.read(1) != b"\n":
                    file.write(b"\n")

    def _adopt(self, journals: list[Path]) -> None:
        """Move what a dead writer's journal holds into the spill (fsync'd), whose replay then stores it."""
        for path in journals:
            self._end_torn_line(path)
            payload = path.read_bytes()
            if payload:
                with self._spill_path.open("ab") as spill:
                    spill.write(payload)
                    spill.flush()
                    os.fsync(spill.fileno())
                logger.warning(
                    "a previous writer stopped with %d journaled predictions; replaying them", payload.count(b"\n")
                )
            path.unlink()


def _fsync_and_close(descriptor: int, path: Path) -> None:
    """fsync a duplicate of a file's descriptor, taken under the file's lock so the fsync itself runs outside it
    (appends never wait on the disk), then close the duplicate."""
    try:
        os.fsync(descriptor)
    except OSError:
        logger.exception("could not fsync %s", path)
    finally:
        os.close(descriptor)


class _Journal:
    """The write-ahead journal: the live file takes appends; sealed segments wait until what they hold is written.

    Sequence numbers order the entries: the queue is first in, first out, so once the entry numbered ``n`` is
    written (or spilled), every entry up to ``n`` is, and segments ending at or before ``n`` can go.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._dirty = False
        self.last = 0
        """Sequence number of the last entry appended."""
        self._sealed: list[tuple[int, Path]] = []
        """``(last sequence number, file)`` of each sealed segment, oldest first."""

    def leftovers(self) -> list[Path]:
        """Journal files left by a writer that did not close (its process died), oldest first."""
        segments = sorted(self._path.parent.glob(self._path.name + ".*"), key=lambda p: int(p.suffix[1:] or 0))
        return [*segments, self._path] if self._path.exists() else segments

    def append(self, entry: PredictionEntry) -> int:
        line = (entry.model_dump_json() + "\n").encode()
        with self._lock:
            if self._file is None:
                self._file = self._path.open("ab")
            self._file.write(line)
            self._file.flush()  # in the kernel now: a killed process loses nothing; fsync follows in sync()
            self._dirty = True
            self.last += 1
            if self._file.tell() >= JOURNAL_SEGMENT_BYTES:
                self._seal()
            return self.last

    def sync(self) -> None:
        """fsync what was appended since the last call (the writer thread, never a request)."""
        with self._lock:
            if not self._dirty or self._file is None:
                return
            descriptor = os.dup(self._file.fileno())
            self._dirty = False
        _fsync_and_close(descriptor, self._path)

    def settle(self, sequence: int) -> None:
        """Everything up to ``sequence`` is in the database or the spill: drop the journal lines that hold it."""
        with self._lock:
            while self._sealed and self._sealed[0][0] <= sequence:
                self._sealed.pop(0)[1].unlink(missing_ok=True)
            if sequence >= self.last and self._file is not None:
                self._file.truncate(0)
                self._file.seek(0)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                empty = self._file.tell() == 0
                self._file.close()
                self._file = None
                if empty and not self._sealed:
                    self._path.unlink(missing_ok=True)

    def _seal(self) -> None:
        """Make the live file a segment (the caller holds the lock); appends go to a new live file."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        segment = self._path.with_name(f"{self._path.name}.{self.last}")
        self._path.replace(segment)
        self._sealed.append((self.last, segment))
