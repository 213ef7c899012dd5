"""Airflow assets that connect the loop: one DAG's output is the event that schedules another.

``ANNOTATIONS`` stands for the inbox of reviewed corrections exported as annotations
(``Settings.annotations_inbox``). Its URI is a name, not a path: the inbox lives under the AutoInspect home, which
only the tasks know when they run. An event on it wakes ``autoinspect_continuous_training``; it is emitted by

- the ``autoinspect_annotations`` DAG (one task with the asset as outlet; trigger it after an export), or
- anything outside Airflow, through the REST API: ``POST /api/v2/assets/events`` with
  ``{"asset_id": <id of autoinspect-annotations>, "extra": {"files": 12}}``, or from the CLI:
  ``airflow assets materialize --name autoinspect-annotations`` (runs the DAG that produces it).
"""

from __future__ import annotations

from airflow.sdk import Asset

ANNOTATIONS = Asset(name="autoinspect-annotations", uri="x-autoinspect://annotations/inbox", group="autoinspect")
