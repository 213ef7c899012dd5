"""The store's schema comes from Alembic revisions: they build exactly the tables the code declares, a store made
before migrations is stamped and upgraded with its rows kept, and stores that start together migrate once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import postgres_schema
from sqlalchemy import Engine, inspect, text

from autoinspect.store import ApiKeys, InspectionRecord, Scope, create_schema, make_engine
from autoinspect.store.migrate import BASELINE, VERSION_TABLE, current_revision, head_revision, migration_config
from autoinspect.store.tables import Base


@contextmanager
def _bare_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty store (no schema created)."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_schema() as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_the_revisions_build_exactly_the_tables_the_code_declares(engine: Engine) -> None:
    """A table or column added to the code without a revision fails here (``engine`` was migrated to head)."""
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in differences if VERSION_TABLE not in str(d)] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_made_before_migrations_is_stamped_then_upgraded_and_keeps_its_rows(
    backend: str, tmp_path: Path
) -> None:
    with _bare_engine(backend, tmp_path) as engine:
        with engine.begin() as connection:  # what create_schema made before it migrated: the baseline's tables
            command.upgrade(migration_config(connection), BASELINE)
            connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        token = ApiKeys(engine).create("old-key", (Scope.INSPECT,)).token
        create_schema(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        assert InspectionRecord.__tablename__ in inspect(engine).get_table_names()
        assert "sampled_for" in {column["name"] for column in inspect(engine).get_columns("predictions")}
        found = ApiKeys(engine).verify(token)
        assert found is not None and found.name == "old-key"
        create_schema(engine)  # again: nothing to do


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_and_threads_starting_together_on_a_new_store_all_start(backend: str, tmp_path: Path) -> None:
    """An API replica, the UI and a job opening one new store at once: each process (and each thread in one) gets
    a migrated store, none fails on the tables another created first."""
    with _bare_engine(backend, tmp_path) as engine:
        url = engine.url.render_as_string(hide_password=False)
        probe = f"from autoinspect.store import create_schema, make_engine; create_schema(make_engine({url!r}))"
        processes = [subprocess.Popen([sys.executable, "-c", probe], stderr=subprocess.PIPE) for _ in range(3)]
        errors: list[BaseException] = []

        def start() -> None:
            try:
                create_schema(make_engine(url))
            except Exception as error:  # reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=start) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes = [
            (process.wait(60), process.stderr.read().decode()[-500:]) for process in processes if process.stderr
        ]
        assert errors == [] and all(code == 0 for code, _ in outcomes), (errors, outcomes)
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
