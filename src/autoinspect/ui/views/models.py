"""Models: the registered versions with their aliases and key metrics, the deployment the API serves now, and
the admin controls (mode and canary share, challenger, promote, roll back), shown to people signed in with the
``admin`` scope only (the API refuses the calls to anyone else anyway), and what a challenger changes photo by
photo (the comparison continuous training writes before its canary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from autoinspect.config import Settings
from autoinspect.ui import signin
from autoinspect.ui.client import MODES, ApiClient, ApiError, DeploymentInfo, ModelInfo
from autoinspect.ui.common import api_client, show_api_error
from autoinspect.ui.reports import mirror_reports

FLASH_KEY = "models_flash"
COMPARISON_HEIGHT = 800
KEY_METRICS = ("map50", "map50_95", "precision", "recall", "f1", "none_accuracy", "latency_p95_ms")
"""Shown first when a version has them; every other metric follows, sorted."""


def model_rows(models: list[ModelInfo]) -> list[dict[str, Any]]:
    """One row per version, newest first: aliases, backend and precision, dataset, then the metrics."""
    rows = []
    for model in sorted(models, key=lambda m: m.version, reverse=True):
        ordered = [key for key in KEY_METRICS if key in model.metrics]
        ordered += sorted(key for key in model.metrics if key not in KEY_METRICS)
        rows.append(
            {
                "version": model.version,
                "aliases": ", ".join(model.aliases),
                "backend": model.backend,
                "precision": model.precision,
                "dataset": f"{model.dataset.name}@{model.dataset.digest[:12]}" if model.dataset else None,
                **{key: round(model.metrics[key], 4) for key in ordered},
            }
        )
    return rows


def render(settings: Settings) -> None:
    st.header("Models")
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    try:
        with api_client(settings) as client:
            models = client.models()
            state = client.deployment()
    except ApiError as error:
        show_api_error(error, settings)
        return
    st.subheader("Deployment")
    columns = st.columns(4)
    columns[0].metric("Mode", state.mode)
    columns[1].metric("Champion", f"v{state.champion}")
    columns[2].metric("Challenger", f"v{state.challenger}" if state.challenger else "none")
    columns[3].metric("Canary share", f"{state.canary_percent:g}%")
    if state.last_refresh_error:
        st.warning(f"The API's last registry read failed: {state.last_refresh_error}")
    st.subheader("Registered versions")
    st.dataframe(pd.DataFrame(model_rows(models)), hide_index=True, width="stretch")  # wide: scrolls, never cut
    _comparison(settings, state.challenger)
    session = signin.current(settings)
    if session is not None and session.identity.may("admin"):
        _controls(settings, [m.version for m in models], state)
    else:
        st.caption("Changing the deployment needs a key with the admin scope.")


def compared_versions(settings: Settings) -> list[int]:
    """Versions with a photo-by-photo comparison against the champion of their day, newest first (continuous
    training writes one for each challenger under ``comparisons_dir/v<version>``)."""
    folder = settings.comparisons_dir
    mirror_reports(settings, folder)
    found = [p.parent.name for p in folder.glob("v*/comparison.json")] if folder.is_dir() else []
    return sorted((int(name[1:]) for name in found if name[1:].isdigit()), reverse=True)


def _comparison(settings: Settings, challenger: int | None) -> None:
    versions = compared_versions(settings)
    if not versions:
        return
    st.subheader("What a challenger changes, photo by photo")
    default = versions.index(challenger) if challenger in versions else 0
    version = st.selectbox("Version", versions, index=default, key="compared", format_func=lambda v: f"v{v}")
    folder = settings.comparisons_dir / f"v{version}"
    comparison = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    st.caption(
        f"v{version} against the champion ({comparison['baseline']}) on {comparison['photos']} test photos: "
        f"{comparison['identical']} answered alike."
    )
    columns = st.columns(len(comparison["counts"]))
    for column, (kind, count) in zip(columns, comparison["counts"].items(), strict=True):
        column.metric(kind.replace("_", " "), count)
    rows = [
        {
            "photo": d["image_id"],
            "difference": d["kind"],
            "truth": " ".join(d["truth"] or []),
            "champion": " ".join(d["baseline"]),
            f"v{version}": " ".join(d["candidate"]),
            "boxes gained": len(d["gained"]),
            "boxes lost": len(d["lost"]),
        }
        for d in comparison["differences"]
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    report = folder / "comparison.html"
    if report.is_file() and st.toggle("Show both answers drawn side by side", key="show-comparison"):
        components.html(report.read_text(encoding="utf-8"), height=COMPARISON_HEIGHT, scrolling=True)


def _controls(settings: Settings, versions: list[int], state: DeploymentInfo) -> None:
    st.subheader("Change")
    reason = st.text_input("Reason (recorded in the registry history, with your name)", key="reason")
    mode_column, percent_column = st.columns(2)
    mode = mode_column.selectbox("Mode", MODES, index=MODES.index(state.mode), key="mode")
    percent = percent_column.slider("Canary %", 0.0, 100.0, float(state.canary_percent), 1.0, key="canary")
    if st.button("Apply mode", key="apply-mode"):
        _act(settings, lambda c: c.set_deployment(mode, percent, reason), f"mode set to {mode}")
    choices = sorted(versions, reverse=True)
    version = st.selectbox("Version", choices, key="version")
    promote, challenger, rollback = st.columns(3)
    is_champion = version == state.champion
    if version is not None and promote.button(
        "Promote to champion",
        key="promote",
        type="primary",
        disabled=is_champion,
        help="already the champion" if is_champion else None,
    ):
        _act(settings, lambda c: c.promote(version, reason), f"v{version} promoted to champion")
    if version is not None and challenger.button("Make challenger", key="challenger"):
        _act(settings, lambda c: c.set_challenger(version, reason), f"v{version} is the challenger")
    if rollback.button("Roll back champion", key="rollback"):
        _act(settings, lambda c: c.rollback(reason or "rollback from the UI"), "champion rolled back")


def _act(settings: Settings, call: Callable[[ApiClient], DeploymentInfo], done: str) -> None:
    try:
        with api_client(settings) as client:
            result = call(client)
    except ApiError as error:
        show_api_error(error, settings)
        return
    st.session_state[FLASH_KEY] = f"{done}: champion v{result.champion}, mode {result.mode}."
    st.rerun()
