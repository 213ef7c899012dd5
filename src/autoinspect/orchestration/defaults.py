"""What every AutoInspect DAG shares: owner, retries, start date, and the schedules an operator may change.

Schedules and retries belong to Airflow, so they are read from Airflow's configuration, section ``[autoinspect]``
of ``airflow.cfg`` or ``AIRFLOW__AUTOINSPECT__<KEY>`` variables, with the defaults below; the rest of the behaviour
(thresholds, triggers, canary share) stays in the AutoInspect settings that the tasks read when they run.

| key | default | used by |
|---|---|---|
| ``retries`` | 2 | every task; an ``AutoInspectError`` (bad input) fails at once instead |
| ``monitoring_schedule`` | ``@hourly`` | ``autoinspect_monitoring`` |
| ``continuous_training_schedule`` | ``@daily`` | ``autoinspect_continuous_training`` (besides the annotations asset) |
| ``canary_poke_minutes`` | 30 | how often the canary decision is re-checked |
| ``canary_timeout_hours`` | 72 | how long a canary may wait for reviews before the decision task fails |

Example: ``AIRFLOW__AUTOINSPECT__MONITORING_SCHEDULE="*/15 * * * *"`` checks the service every 15 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule, conf

from autoinspect.errors import AutoInspectError

SECTION = "autoinspect"
OWNER = "autoinspect"
TIMEZONE = "UTC"
START_DATE = datetime(2025, 1, 1, tzinfo=UTC)
"""Fixed and in the past, with ``catchup=False``: a new deployment runs from now on, never a backlog."""


def option(key: str, fallback: str) -> str:
    """One ``[autoinspect]`` option of Airflow's configuration."""
    return str(conf.get(SECTION, key, fallback=fallback))


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": int(option("retries", "2")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "retry_policy": ExceptionRetryPolicy(
        rules=[RetryRule(exception=AutoInspectError, action=RetryAction.FAIL, reason="the input is wrong")]
    ),
}
"""Task defaults: transient failures (a registry or database restart) are retried with a growing delay; an
:class:`~autoinspect.errors.AutoInspectError` (bad folder, invalid data, unknown model) fails at once, since a
retry would meet the same input."""

DAG_ARGS: dict[str, Any] = {
    "default_args": DEFAULT_ARGS,
    "start_date": START_DATE,
    "catchup": False,
    "tags": ["autoinspect"],
}
"""Keyword arguments every AutoInspect ``@dag`` takes, besides its own schedule and params."""

MONITORING_SCHEDULE = option("monitoring_schedule", "@hourly")
CONTINUOUS_TRAINING_SCHEDULE = option("continuous_training_schedule", "@daily")
CANARY_POKE_SECONDS = float(option("canary_poke_minutes", "30")) * 60
CANARY_TIMEOUT_SECONDS = float(option("canary_timeout_hours", "72")) * 3600
