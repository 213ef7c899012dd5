"""Drift of the photos (input) and of the answers (output), tested per column with Evidently.

Input drift compares the per-image features logged with each prediction against the reference table registered
with the model (the same :mod:`autoinspect.data.features` numbers, computed on its training photos): a darker
garage or a new camera shows up here before it shows up in the reviews. Output drift compares the answers of a
window with those of the window before it: a jump in "None" answers or in scores is the cheapest health signal,
and needs no reference table at all.

Every column gets a p-value test at the configured significance (Kolmogorov-Smirnov for numbers, chi-square for
the verdict, a two-proportion z-test for the 0/1 "None" flag), so "drifted" means the same thing on every column
and the share of drifted columns is comparable between runs. Evidently computes the tests and renders the HTML
report; what callers get back is a small :class:`DriftResult` (what alerts and the UI need), never Evidently's
raw snapshot. Evidently takes seconds to import, so it is imported inside :func:`_run_report` only: the service,
which imports :mod:`autoinspect.monitoring.features`, never loads it.

Example::

    result = input_drift(reference, current, columns=["brightness", "contrast"], pvalue=0.05, out_dir=folder)
    result.drift_share, [f.column for f in result.features if f.drifted]
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from autoinspect.data.features import ImageFeatures
from autoinspect.domain import NONE_VERDICT
from autoinspect.store.tables import PredictionEntry, Route

logger = logging.getLogger(__name__)

IMAGE_FEATURE_COLUMNS = tuple(field.name for field in dataclasses.fields(ImageFeatures))
"""The per-image columns that live photos and the reference table share (no box columns: live photos have none)."""

NUMERIC_TEST = "ks"
"""Kolmogorov-Smirnov p-value: any change of shape, not only of the mean; fine on a reference of thousands."""
CATEGORY_TEST = "chisquare"
"""Chi-square p-value on the category counts (a category the reference never had gives p = 0)."""
BINARY_TEST = "z"
"""Two-proportion z-test p-value: the right test for a 0/1 share such as the "None" rate."""

VERDICT_COLUMN = "verdict"
IS_NONE_COLUMN = "is_none"
MAX_SCORE_COLUMN = "max_score"
N_DETECTIONS_COLUMN = "n_detections"
OUTPUT_TESTS: Mapping[str, str] = {
    VERDICT_COLUMN: CATEGORY_TEST,
    IS_NONE_COLUMN: BINARY_TEST,
    MAX_SCORE_COLUMN: NUMERIC_TEST,
    N_DETECTIONS_COLUMN: NUMERIC_TEST,
}
"""The columns of the answers frame and the test each gets."""
DEFAULT_DATASET_DRIFT_SHARE = 0.5
"""Evidently's default: the dataset counts as drifted when half its columns did."""


class FeatureDrift(BaseModel):
    """The test of one column."""

    model_config = ConfigDict(frozen=True)

    column: str
    method: str
    """Evidently's name of the test: ``ks``, ``chisquare`` or ``z``."""
    p_value: float | None
    """``None`` when the test is undefined (a single category on both sides): such a column never drifts."""
    threshold: float
    """Significance level: the column drifted when ``p_value`` is below it."""
    drifted: bool
    reference_mean: float | None = None
    """Mean of a numeric column (the "None" rate for ``is_none``), so a person sees which way it moved."""
    current_mean: float | None = None


class DriftResult(BaseModel):
    """Per-column drift of one window against its reference, and where the report files are."""

    model_config = ConfigDict(frozen=True)

    reference_size: int
    current_size: int
    features: list[FeatureDrift]
    drift_share: float = Field(ge=0.0, le=1.0)
    """Share of the tested columns that drifted: what the input-drift alert compares with its threshold."""
    dataset_drift: bool
    """Whether ``drift_share`` reached ``dataset_drift_share`` (Evidently's dataset-level verdict)."""
    dataset_drift_share: float
    html: Path | None = None
    """The Evidently report, when an output folder was given."""
    summary_json: Path | None = None
    """This result as JSON, beside the report."""

    @property
    def drifted_columns(self) -> list[str]:
        return [feature.column for feature in self.features if feature.drifted]


def features_frame(entries: Iterable[PredictionEntry], columns: Sequence[str] = IMAGE_FEATURE_COLUMNS) -> pd.DataFrame:
    """The logged per-image features of ``entries`` as a table; entries logged without features are left out."""
    rows = [{column: entry.features.get(column) for column in columns} for entry in entries if entry.features]
    return pd.DataFrame.from_records(rows, columns=list(columns))


def answers_frame(entries: Iterable[PredictionEntry]) -> pd.DataFrame:
    """One row per answered entry (shadow copies were never answered and are left out).

    Columns: ``verdict`` (``"None"`` or the classes joined by ``|``), ``is_none`` (0/1), ``max_score`` and
    ``n_detections``.
    """
    rows = [
        {
            VERDICT_COLUMN: verdict_label(entry.verdict),
            IS_NONE_COLUMN: int(entry.verdict == NONE_VERDICT),
            MAX_SCORE_COLUMN: entry.max_score,
            N_DETECTIONS_COLUMN: len(entry.detections),
        }
        for entry in entries
        if entry.route is not Route.SHADOW
    ]
    return pd.DataFrame.from_records(rows, columns=list(OUTPUT_TESTS))


def verdict_label(verdict: str | list[str]) -> str:
    """One category per verdict, spelled as the dataset profile spells it: ``"None"`` or ``"dent|scratch"``."""
    return verdict if isinstance(verdict, str) else "|".join(sorted(verdict)) or NONE_VERDICT


def input_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str],
    pvalue: float,
    drift_share: float = DEFAULT_DATASET_DRIFT_SHARE,
    out_dir: Path | None = None,
    name: str = "input_drift",
) -> DriftResult:
    """Test each of ``columns`` (numeric features) of ``current`` against ``reference`` with KS at ``pvalue``.

    With ``out_dir``, writes ``<name>.html`` (Evidently) and ``<name>.json`` (this result) into it.

    Raises:
        ValueError: no columns, an empty frame, or a column missing from either frame.
    """
    _check_frames(reference, current, columns)
    # A column holding one and the same value on both sides (every photo 640 x 480) can show no drift; counted,
    # it would only dilute the share of drifted columns that the alert compares with its threshold.
    informative = [c for c in columns if not _same_constant(reference[c], current[c])] or list(columns)
    return _run_report(
        reference[informative],
        current[informative],
        tests=dict.fromkeys(informative, NUMERIC_TEST),
        pvalue=pvalue,
        drift_share=drift_share,
        out_dir=out_dir,
        name=name,
    )


def _same_constant(reference: pd.Series, current: pd.Series) -> bool:
    values = pd.concat([reference, current]).dropna().unique()
    return len(values) <= 1


def output_drift(
    reference_entries: Sequence[PredictionEntry],
    current_entries: Sequence[PredictionEntry],
    *,
    pvalue: float = 0.05,
    drift_share: float = DEFAULT_DATASET_DRIFT_SHARE,
    out_dir: Path | None = None,
    name: str = "output_drift",
) -> DriftResult:
    """Test the answers of ``current_entries`` against those of ``reference_entries`` (see :func:`answers_frame`).

    With ``out_dir``, writes ``<name>.html`` and ``<name>.json`` into it.

    Raises:
        ValueError: either side has no answered entry.
    """
    reference, current = answers_frame(reference_entries), answers_frame(current_entries)
    _check_frames(reference, current, list(OUTPUT_TESTS))
    return _run_report(
        reference, current, tests=OUTPUT_TESTS, pvalue=pvalue, drift_share=drift_share, out_dir=out_dir, name=name
    )


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> None:
    if not columns:
        raise ValueError("no columns to test for drift")
    for side, frame in (("reference", reference), ("current", current)):
        if frame.empty:
            raise ValueError(f"the {side} data has no rows: drift needs both sides")
        if missing := [column for column in columns if column not in frame.columns]:
            raise ValueError(f"the {side} data lacks the columns {missing}")


def _run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    tests: Mapping[str, str],
    pvalue: float,
    drift_share: float,
    out_dir: Path | None,
    name: str,
) -> DriftResult:
    """Run Evidently's drift preset with one named test per column and read each column's verdict back."""
    with warnings.catch_warnings():
        # Its import warns about its own use of numpy.core and its web server's (litestar) deprecated API:
        # nothing a monitoring run can act on, so users need not see it.
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report  # type: ignore[import-untyped]
        from evidently.presets import DataDriftPreset  # type: ignore[import-untyped]

    columns = list(tests)
    categorical = [column for column, test in tests.items() if test != NUMERIC_TEST]
    definition = DataDefinition(
        numerical_columns=[column for column in columns if column not in categorical],
        categorical_columns=categorical,
    )
    preset = DataDriftPreset(columns=columns, per_column_method=dict(tests), threshold=pvalue, drift_share=drift_share)
    # Evidently's HTML plots correlate every column pair and warn (0/0) on constant ones such as a fixed width.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
    features = [
        feature.model_copy(
            update={"reference_mean": _mean(reference[feature.column]), "current_mean": _mean(current[feature.column])}
        )
        for feature in _column_results(snapshot.dict(), columns)
    ]
    drifted = sum(feature.drifted for feature in features)
    share = drifted / len(features)
    result = DriftResult(
        reference_size=len(reference),
        current_size=len(current),
        features=features,
        drift_share=share,
        dataset_drift=share >= drift_share,
        dataset_drift_share=drift_share,
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        html, summary = out_dir / f"{name}.html", out_dir / f"{name}.json"
        result = result.model_copy(update={"html": html, "summary_json": summary})
        snapshot.save_html(str(html))
        summary.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    logger.info(
        "%s: %d of %d columns drifted (%s) on %d rows against %d",
        name,
        drifted,
        len(features),
        ", ".join(result.drifted_columns) or "none",
        len(current),
        len(reference),
    )
    return result


def _column_results(snapshot: Mapping[str, Any], columns: Sequence[str]) -> list[FeatureDrift]:
    """One :class:`FeatureDrift` per column from the snapshot's ``ValueDrift`` metrics and their tests.

    Evidently records each column's decision as a test (``FAIL`` = drifted) linked to its metric by id; the
    metric holds the p-value and the test and threshold it ran with.
    """
    failed = {
        test["metric_config"]["metric_id"]: test["status"] == "FAIL"
        for test in snapshot.get("tests", [])
        if "metric_config" in test
    }
    found: dict[str, FeatureDrift] = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        score = float(metric["value"])
        p_value = None if math.isnan(score) else score
        threshold = float(config["threshold"])
        found[config["column"]] = FeatureDrift(
            column=config["column"],
            method=config["method"],
            p_value=p_value,
            threshold=threshold,
            # Every test used here is a p-value test; the comparison is the fallback should Evidently omit a test.
            drifted=failed.get(metric["id"], p_value is not None and p_value < threshold),
        )
    if missing := [column for column in columns if column not in found]:
        raise RuntimeError(f"Evidently returned no drift result for {missing}")
    return [found[column] for column in columns]


def _mean(series: pd.Series) -> float | None:
    if not pd.api.types.is_numeric_dtype(series) or series.isna().all():
        return None
    return float(series.mean())
