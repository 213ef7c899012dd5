"""Prediction log, background writer and content-addressed images (SQLAlchemy: SQLite default, PostgreSQL prod).

Imports only the core (config, domain, errors), so serving, monitoring and the UI can all depend on it.
"""

from autoinspect.store.database import create_schema, make_engine
from autoinspect.store.image_store import ImageStore
from autoinspect.store.prediction_log import PredictionLog
from autoinspect.store.tables import PredictionEntry, PredictionRecord, Route
from autoinspect.store.writer import BackgroundWriter, WriterStats

__all__ = [
    "BackgroundWriter",
    "ImageStore",
    "PredictionEntry",
    "PredictionLog",
    "PredictionRecord",
    "Route",
    "WriterStats",
    "create_schema",
    "make_engine",
]
