"""``autoinspect_monitoring``: drift, performance on reviewed labels, KPIs and alerts, every hour.

The schedule is ``[autoinspect] monitoring_schedule`` of Airflow's configuration (default ``@hourly``); the window
each run reads, the alert thresholds and the sinks are AutoInspect settings (``monitoring``). Runs never overlap:
a slow run delays the next instead of racing it on the alert history.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from autoinspect.orchestration.defaults import DAG_ARGS, MONITORING_SCHEDULE


@dag(
    dag_id="autoinspect_monitoring",
    schedule=MONITORING_SCHEDULE,
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
)
def autoinspect_monitoring() -> None:
    @task
    def run_monitoring() -> dict[str, Any]:
        """One run over the latest window of the prediction log; where its summary is and which alerts went out."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.monitoring import run_monitoring

        report = run_monitoring(get_settings())
        return {
            "summary_json": str(report.summary_json),
            "model_version": report.model_version,
            "alerts_raised": [alert.rule for alert in report.alerts_raised],
            "alerts_sent": [alert.rule for alert in report.alerts_sent],
        }

    run_monitoring()


autoinspect_monitoring()
