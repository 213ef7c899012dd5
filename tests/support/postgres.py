"""A throw-away schema on the local PostgreSQL (trust auth), for tests of what production runs on it.

Each test gets its own schema (reached through ``search_path``), so parallel runs never collide. When the server
is unreachable the test fails under CI (which provides it) and is skipped elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from unavailable import unavailable

from autoinspect.store import make_engine

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Yield a store URL whose connections see only a new, empty schema; drop the schema afterwards."""
    admin = make_engine(f"{POSTGRES_URL}?connect_timeout=3")
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}")
    try:
        yield f"{POSTGRES_URL}?connect_timeout=3&options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
