"""Engine factory: SQLite tuned for concurrent writers, PostgreSQL only through psycopg2, clear config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from autoinspect.config import Settings
from autoinspect.errors import ConfigError
from autoinspect.store import create_schema, make_engine


def test_sqlite_engine_uses_wal_normal_sync_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'store.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
        assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    engine.dispose()


def test_create_schema_is_idempotent_and_indexes_the_query_columns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    create_schema(engine)
    indexed = {column for index in inspect(engine).get_indexes("predictions") for column in index["column_names"]}
    assert {"request_id", "created_at", "needs_review", "image_sha256"} <= indexed
    engine.dispose()


@pytest.mark.parametrize("url", ["postgresql://postgres@localhost/test", "postgres://u@h/db"])
def test_bare_postgresql_url_is_a_config_error_naming_psycopg2(url: str) -> None:
    with pytest.raises(ConfigError, match=r"postgresql\+psycopg2://"):
        make_engine(url)


@pytest.mark.parametrize("url", ["mysql+pymysql://u@h/db", "not a url"])
def test_unsupported_or_malformed_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        make_engine(url)


def test_default_store_url_lives_in_home_and_an_explicit_one_wins(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).store_url == f"sqlite:///{(tmp_path / 'autoinspect.db').resolve()}"
    explicit = "postgresql+psycopg2://u@db:5432/autoinspect"
    assert Settings(home=tmp_path, store={"url": explicit}).store_url == explicit
