"""Dataset profiling: a per-image feature table, an EDA report (ydata-profiling) and a contact sheet.

The feature table is the reference that monitoring later compares live traffic with, so it is built from
:mod:`autoinspect.data.features` and nothing else; the HTML report and the contact sheet are for people.
ydata-profiling is imported only inside :func:`profile_dataset`: it takes seconds to import and belongs to
the optional ``[data]`` extra.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict
from tqdm import tqdm

from autoinspect.data.contact_sheet import contact_sheet
from autoinspect.data.features import FeatureValue, box_features, feature_row, image_features
from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.domain import NONE_VERDICT, Split, Verdict
from autoinspect.errors import DataFormatError, ImageDecodeError
from autoinspect.images import decode_image

logger = logging.getLogger(__name__)

UNSPLIT = "unsplit"
"""The ``split`` cell of images that have no split yet."""


class ProfileResult(BaseModel):
    """What :func:`profile_dataset` wrote."""

    model_config = ConfigDict(frozen=True)

    html: Path
    features_csv: Path
    contact_sheet: Path
    rows: int
    """Images profiled (unreadable ones are skipped and logged; validation is what reports them)."""


def _item_row(item: LayoutItem, names: list[str]) -> dict[str, FeatureValue] | None:
    """One table row, or ``None`` (logged) when the image cannot be decoded."""
    try:
        decoded = decode_image(item.image)
    except ImageDecodeError as exc:
        logger.warning("profile: skipping %s: %s", item.key, exc)
        return None
    labels = item.read_labels(len(names))
    regions = [(names[row.class_id], row.box) for row in labels.rows]
    verdict = Verdict.from_labels(name for name, _ in regions)
    boxes = box_features(regions, decoded.width, decoded.height, names)
    return {
        "split": item.split.value if item.split else UNSPLIT,
        "file": item.image.name,
        "verdict": "|".join(verdict.labels) or NONE_VERDICT,
        "label_issues": len(labels.issues),
        **feature_row(image_features(decoded.rgb), boxes),
    }


def features_table(layout: DatasetLayout, workers: int, split: Split | None = None) -> pd.DataFrame:
    """One row per readable image of ``layout`` (of one split when given): split, file, verdict, label issues and
    the feature columns.

    Decoding runs on ``workers`` threads (PIL and numpy release the GIL); rows keep the layout order.
    """
    names = layout.names
    items = [item for item in layout.items() if split is None or item.split is split]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(partial(_item_row, names=names), items)
        rows = [row for row in tqdm(results, total=len(items), desc="features", unit="img", disable=None) if row]
    return pd.DataFrame.from_records(rows)


def _write_report(table: pd.DataFrame, html: Path, title: str) -> None:
    """Render the EDA report: explorative (correlations, missing values) without the pairwise scatter plots.

    On the 328-image sample those 250-odd plots took 9 of the 12 seconds and 8 of the 10 MB of HTML while
    the correlation matrix already shows which feature pairs move together.
    """
    # ydata-profiling sends usage analytics over HTTP on every report unless this is set; the report of a
    # private dataset must stay on this machine, whoever calls the library.
    os.environ.setdefault("YDATA_PROFILING_NO_ANALYTICS", "1")
    with warnings.catch_warnings():
        # Its import warns about the package's rename; the API we use is unchanged, so users need not see it.
        warnings.filterwarnings(
            "ignore", message=r"\s*`import ydata_profiling` is deprecated", category=DeprecationWarning
        )
        from ydata_profiling import ProfileReport

    report = ProfileReport(
        table,
        title=title,
        explorative=True,
        interactions={"continuous": False},
        progress_bar=sys.stderr.isatty(),
    )
    report.to_file(html, silent=True)


def profile_dataset(
    layout: DatasetLayout, out_dir: Path, *, workers: int, title: str = "AutoInspect dataset profile"
) -> ProfileResult:
    """Write ``profile.html``, ``features.csv`` and ``contact_sheet.png`` of ``layout`` into ``out_dir``.

    Raises:
        DataFormatError: ``layout`` has no readable image.
    """
    table = features_table(layout, workers)
    if table.empty:
        raise DataFormatError(f"{layout.root} has no readable images to profile")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ProfileResult(
        html=out_dir / "profile.html",
        features_csv=out_dir / "features.csv",
        contact_sheet=out_dir / "contact_sheet.png",
        rows=len(table),
    )
    table.to_csv(result.features_csv, index=False)
    _write_report(table, result.html, title)
    contact_sheet(layout, result.contact_sheet)
    logger.info("profiled %d images of %s into %s", result.rows, layout.root, out_dir)
    return result
