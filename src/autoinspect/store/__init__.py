"""Prediction log, reviews, API keys, background writer and content-addressed images (SQLite default, PostgreSQL prod).

Imports only the core (config, domain, errors), so serving, monitoring and the UI can all depend on it.
"""

from autoinspect.store.alert_history import AlertHistory, AlertLike, AlertRecord, SentAlert
from autoinspect.store.api_keys import ApiKey, ApiKeyRecord, ApiKeys, IssuedKey, Scope
from autoinspect.store.database import create_schema, make_engine, open_store
from autoinspect.store.image_store import ImageStore
from autoinspect.store.inspections import InspectionLog, InspectionRecord, StoredInspection
from autoinspect.store.pipeline_runs import PipelineRun, PipelineRuns, PipelineStep, RunStatus
from autoinspect.store.prediction_log import PredictionLog
from autoinspect.store.reviews import Review, ReviewConflictError, ReviewDecision, ReviewLog, ReviewRecord
from autoinspect.store.tables import PredictionEntry, PredictionRecord, Route
from autoinspect.store.writer import BackgroundWriter, WriterStats

__all__ = [
    "AlertHistory",
    "AlertLike",
    "AlertRecord",
    "ApiKey",
    "ApiKeyRecord",
    "ApiKeys",
    "BackgroundWriter",
    "ImageStore",
    "InspectionLog",
    "InspectionRecord",
    "IssuedKey",
    "PipelineRun",
    "PipelineRuns",
    "PipelineStep",
    "PredictionEntry",
    "PredictionLog",
    "PredictionRecord",
    "Review",
    "ReviewConflictError",
    "ReviewDecision",
    "ReviewLog",
    "ReviewRecord",
    "Route",
    "RunStatus",
    "Scope",
    "SentAlert",
    "StoredInspection",
    "WriterStats",
    "create_schema",
    "make_engine",
    "open_store",
]
