"""Monitoring: live figures of the last hour from the prediction log, then the KPIs and drift of the last
monitoring runs over time, the alerts they sent, and the latest Evidently reports (read from the runs'
``summary.json`` files). The page needs no API call."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from autoinspect.config import Settings
from autoinspect.ui.common import share
from autoinspect.ui.reports import DRIFT_REPORTS, KPI_RATES, alert_rows, kpi_rows, live_figures, monitoring_runs

EMBED_HEIGHT = 700


def render(settings: Settings) -> None:
    st.header("Monitoring")
    _live(settings)
    last = st.slider("Monitoring runs shown", 2, 200, 30)
    runs = monitoring_runs(settings, last)
    if not runs:
        st.info(
            f"No monitoring run yet under {settings.monitoring_dir}: `autoinspect up` runs the first one a minute "
            "after it starts, or run `autoinspect monitor`."
        )
        return
    latest = runs[-1]
    st.caption(f"{len(runs)} run(s); latest window ends {latest.window_end:%Y-%m-%d %H:%M} UTC.")
    columns = st.columns(6)
    figures = [
        ("Automation", share(latest.kpis.automation_rate)),
        ("Review rate", share(latest.kpis.review_rate)),
        ("Override rate", share(latest.kpis.override_rate)),
        ("None rate", share(latest.kpis.none_rate)),
        ("Retake rate", share(latest.kpis.retake_rate)),
        ("p95 latency", "n/a" if latest.kpis.latency_p95_ms is None else f"{latest.kpis.latency_p95_ms:.0f} ms"),
    ]
    for column, (label, value) in zip(columns, figures, strict=True):
        column.metric(label, value)
    if latest.kpis.samples:
        st.subheader("Review sampling (latest window)")
        st.caption("Confident answers each sampling rule sent to the review queue, and what their reviews found.")
        rows = [
            {"rule": rule, **counts.model_dump(exclude={"override_rate"}), "corrected": share(counts.override_rate)}
            for rule, counts in latest.kpis.samples.items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    table = pd.DataFrame(kpi_rows(runs))
    st.subheader("KPIs over time")
    st.line_chart(table, x="window_end", y=list(KPI_RATES))
    st.subheader("p95 latency (ms)")
    st.line_chart(table, x="window_end", y="latency_p95_ms")
    st.subheader("Input drift share")
    st.line_chart(table, x="window_end", y="drift_share")
    st.subheader("Alerts sent")
    alerts = alert_rows(runs)
    if alerts:
        st.dataframe(pd.DataFrame(alerts), hide_index=True, width="stretch")
    else:
        st.caption("No alert sent in these runs.")
    _reports(latest.folder)


def _live(settings: Settings) -> None:
    live = live_figures(settings)
    st.subheader(f"Live: the last {live.hours:g} hour(s)")
    if not live.answered:
        st.caption("No answer logged in the last hour.")
        return
    columns = st.columns(3)
    columns[0].metric("Answers", live.answered)
    columns[1].metric("Review share", share(live.review_share))
    latency = live.latency_p95_ms
    columns[2].metric("p95 latency", "n/a" if latency is None else f"{latency:.0f} ms")
    st.dataframe(
        pd.DataFrame([{"verdict": verdict, "answers": count} for verdict, count in live.verdicts.items()]),
        hide_index=True,
    )


def _reports(folder: Path) -> None:
    st.subheader("Latest drift reports (Evidently)")
    found = [folder / name for name in DRIFT_REPORTS if (folder / name).is_file()]
    if not found:
        st.caption("The latest run wrote no drift report (too few photos in its window, or no reference).")
        return
    for path in found:
        html = path.read_text(encoding="utf-8")
        st.download_button(f"Download {path.name}", html, file_name=path.name, mime="text/html", key=f"dl-{path}")
        if st.toggle(f"Show {path.stem.replace('_', ' ')}", key=f"show-{path}"):
            components.html(html, height=EMBED_HEIGHT, scrolling=True)
