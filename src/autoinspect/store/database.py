"""Engines for the prediction log: SQLite (WAL) on one machine, PostgreSQL through psycopg2 in production.

Only these two backends are accepted because the log's idempotent insert (``ON CONFLICT DO NOTHING``) is written
with their dialect-specific constructs; any other URL fails here, at start-up, rather than on the first request.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import InstrumentedAttribute

from autoinspect.errors import ConfigError
from autoinspect.private_files import private_file
from autoinspect.store.migrate import upgrade

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5_000
"""How long a SQLite writer waits for another process's lock before failing: the API, batch jobs and the UI
may share one file, and a short wait is cheaper than a failed write that has to be spilled and replayed."""
POSTGRES_DRIVER = "postgresql+psycopg2"


def make_engine(url: str) -> Engine:
    """An engine for ``url``, tuned for many small concurrent writes.

    Example:
        >>> make_engine("sqlite://").dialect.name
        'sqlite'

    Raises:
        ConfigError: the URL cannot be parsed, names bare ``postgresql://`` (no driver) or another backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError(f"store URL {url!r} is not a valid SQLAlchemy URL: {error}") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres"):
        if parsed.drivername != POSTGRES_DRIVER:
            raise ConfigError(
                f"store URL uses {parsed.drivername}://; PostgreSQL must be reached through psycopg2: "
                f"write {POSTGRES_DRIVER}://user:password@host:5432/database"
            )
        # Connections die when PostgreSQL restarts or a proxy drops idle ones; a ping costs less than a failed batch.
        return create_engine(parsed, pool_pre_ping=True)
    raise ConfigError(f"store URL backend {backend!r} is not supported: use sqlite:/// or {POSTGRES_DRIVER}://")


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        # SQLite cannot create the folder of its file, and the default file lives under a home that may be new;
        # the log holds vehicle ids, reviews and key hashes, so a new file is owner-only.
        private_file(Path(url.database))
    engine = create_engine(url)
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    """WAL lets readers (UI, monitoring) run while the API writes; NORMAL sync is durable across process crashes
    in WAL mode and saves an fsync per commit; the busy timeout turns lock contention into a short wait."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


@contextmanager
def open_store(url: str) -> Iterator[Engine]:
    """An engine on ``url`` with the schema created, disposed on exit: for jobs that open the store once per run
    (monitoring, continuous training, exports, the CLI), where a long-lived pool would only hold connections."""
    engine = make_engine(url)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()


def create_schema(engine: Engine) -> None:
    """Bring the store's schema to the latest migration (idempotent; existing rows are kept): see
    :mod:`~autoinspect.store.migrate`."""
    upgrade(engine)
    logger.debug("store schema ready on %s", engine.url.render_as_string(hide_password=True))


def insert_ignoring_duplicates(dialect: str, unique: InstrumentedAttribute[Any]) -> Insert:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING`` into ``unique``'s table, spelled by each backend's dialect:
    how the log and the inspections stay idempotent when a request is resent or a spill file replayed."""
    table = unique.class_
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[unique])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique])
    raise ConfigError(f"the store supports SQLite and PostgreSQL, not {dialect}")
