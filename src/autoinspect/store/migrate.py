"""The store's schema, migrated with Alembic: every process that opens the store brings it to the latest revision.

Why migrations and not ``create_all``: ``create_all`` only creates missing tables, so a column added to an existing
table would never reach a database that is already in use (a PostgreSQL store in production, or a laptop's
SQLite). Revisions live in ``migrations/versions`` and are written with Alembic (``alembic revision
--autogenerate``, see CONTRIBUTING in the README); a test checks that the tables the code declares match what the
revisions build, so a model change without a revision fails CI.

A database made before the store had migrations (its tables exist, its version table does not) is stamped at the
baseline revision, which created exactly those tables, and then upgraded. The version table has its own name,
since a production PostgreSQL database may also hold MLflow's tables and MLflow's own ``alembic_version``.
"""

from __future__ import annotations

import functools
import logging
import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

VERSION_TABLE = "autoinspect_schema_version"
BASELINE = "0001"
"""The revision that created the tables the store had before it was migrated with Alembic."""
PRE_MIGRATION_TABLE = "predictions"
"""A table every store made by ``create_all`` has: its presence without a version table marks such a store."""
_MIGRATING = threading.Lock()
"""Alembic's ``context`` and ``op`` are module-level proxies: one migration at a time per process."""
_LOCK_ID = 0x417574_6F496E
"""PostgreSQL advisory lock key held while migrating, so replicas starting together migrate one at a time."""


SCRIPT_LOCATION = "autoinspect.store:migrations"


def migration_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the store, on ``connection`` (no ini file: the revisions ship in the package)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The latest revision shipped with the package (read once: the store is opened by every job and UI page)."""
    head = ScriptDirectory.from_config(migration_config()).get_current_head()
    assert head is not None, "the store has no migration revision"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the store on ``engine`` to the latest revision (a no-op when it is there already).

    Two processes may start on one new store at once: on PostgreSQL an advisory lock makes the second wait; on
    SQLite the second one's DDL fails once the first has created the tables, and it then checks that the store
    is at the latest revision instead of failing. A store already at the latest revision costs one query.
    """
    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:  # None when the version table does not exist yet
            return
    with _MIGRATING:
        _upgrade(engine, head)


def _upgrade(engine: Engine, head: str) -> None:
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_ID})
            config = migration_config(connection)
            tables = set(inspect(connection).get_table_names())
            if VERSION_TABLE not in tables and PRE_MIGRATION_TABLE in tables:
                logger.info("store made before migrations: stamping it at revision %s", BASELINE)
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
    except DBAPIError:
        with engine.connect() as connection:
            if current_revision(connection) != head:
                raise
        logger.debug("another process migrated the store first")
