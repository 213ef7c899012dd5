"""Airflow 3 DAGs that run the pipelines in production; the DAG files hold calls, never logic.

Point Airflow at the DAG files (``[core] dags_folder``, or ``AIRFLOW__CORE__DAGS_FOLDER``) with::

    python -c "import autoinspect.orchestration as o; print(o.DAGS_FOLDER)"

Each task reads the AutoInspect settings with :func:`autoinspect.config.get_settings` when it runs (from the
workers' ``AUTOINSPECT_*`` environment or ``autoinspect.yaml``), never when the file is parsed, and imports the
pipeline it calls inside the task, so parsing stays fast and needs neither MLflow nor ONNX Runtime. What belongs to
Airflow itself (schedules, retries) is read from Airflow's configuration, section ``[autoinspect]``: see
:mod:`autoinspect.orchestration.defaults`.

On one machine, without Airflow, the CLI runs the same pipeline functions in-process (``autoinspect batch``,
``autoinspect ct run``). Importing this package does not import Airflow (``pip install autoinspect[orchestrate]``).
"""

from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
"""The folder Airflow's ``dags_folder`` points at."""
