"""``autoinspect_annotations``: announces that reviewed annotations wait in the inbox (the asset event).

Trigger it after exporting reviews (UI, ``airflow dags trigger autoinspect_annotations``, the REST API, or
``airflow assets materialize --name autoinspect-annotations``): when the inbox holds photos, its one task emits an
event on the ``autoinspect-annotations`` asset, with the photo count as extra, and that event schedules
``autoinspect_continuous_training``. An empty inbox skips the task and emits nothing.
"""

from __future__ import annotations

import logging

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from autoinspect.orchestration.assets import ANNOTATIONS
from autoinspect.orchestration.defaults import DAG_ARGS

logger = logging.getLogger(__name__)


@dag(dag_id="autoinspect_annotations", schedule=None, doc_md=__doc__, **DAG_ARGS)
def autoinspect_annotations() -> None:
    @task(outlets=[ANNOTATIONS])
    def publish_annotations() -> int:
        """The number of photos in the inbox, attached to the asset event; skipped when there are none."""
        from autoinspect.config import get_settings
        from autoinspect.images import is_image_file

        inbox = get_settings().annotations_inbox
        photos = sum(1 for path in inbox.rglob("*") if is_image_file(path)) if inbox.is_dir() else 0
        if not photos:
            raise AirflowSkipException(f"no annotated photos in {inbox}")
        get_current_context()["outlet_events"][ANNOTATIONS].extra = {"photos": photos, "inbox": str(inbox)}
        logger.info("%d annotated photos wait in %s", photos, inbox)
        return photos

    publish_annotations()


autoinspect_annotations()
