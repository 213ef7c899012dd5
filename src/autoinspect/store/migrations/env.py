"""Alembic's entry point for the store's migrations.

:func:`autoinspect.store.database.create_schema` runs it with an open connection (``config.attributes
["connection"]``); the ``alembic`` command line (``alembic.ini`` at the repository root, e.g. ``alembic revision
--autogenerate -m "..."`` for a new table or column) runs it on the configured store (``AUTOINSPECT_STORE__URL``
or the default SQLite file).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import autoinspect.store  # noqa: F401  (every table module, so the metadata is complete)
from autoinspect.config import get_settings
from autoinspect.store.database import make_engine
from autoinspect.store.migrate import VERSION_TABLE
from autoinspect.store.tables import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = make_engine(get_settings().store_url)
    with engine.begin() as connection:
        run(connection)
    engine.dispose()
