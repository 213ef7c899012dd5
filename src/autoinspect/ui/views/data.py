"""Data: the dataset versions with their split and box counts, the latest validation report, and the profiles.

Read straight from the home folder (the dataset store and the reports), so the page works without the API."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import streamlit as st

from autoinspect.config import Settings
from autoinspect.ui.reports import (
    LABEL_ISSUES_HTML,
    LABEL_ISSUES_SHEET,
    VALIDATION_HTML,
    dataset_rows,
    latest_label_issues,
    latest_validation,
)

SHOWN_ISSUES = 20


def render(settings: Settings) -> None:
    st.header("Data")
    st.subheader("Dataset versions")
    rows = dataset_rows(settings)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        for row in rows:
            if row["profile"]:
                st.download_button(
                    f"Profile of {row['version']} (HTML)",
                    Path(row["profile"]).read_text(encoding="utf-8"),
                    file_name=f"profile-{row['version'].replace('@', '-')}.html",
                    mime="text/html",
                    key=f"profile-{row['version']}",
                )
    else:
        st.info("No dataset version yet: `autoinspect data version create` or `autoinspect up`.")
    _validation(settings)
    _label_issues(settings)


def _label_issues(settings: Settings) -> None:
    """The suspected label errors of the newest ``autoinspect data issues`` run, worst first, with its sheet."""
    st.subheader("Suspected label errors")
    found = latest_label_issues(settings)
    if found is None:
        st.caption("Not looked for yet (`autoinspect data issues DATASET`).")
        return
    folder, run = found
    report = run.get("report", {})
    issues = report.get("issues", [])
    dataset = run.get("dataset", {})
    counts = Counter(str(issue["kind"]) for issue in issues)
    st.write(
        f"{dataset.get('name')}@{str(dataset.get('digest', ''))[:12]}: {len(report.get('flagged', []))} of "
        f"{report.get('photos', 0)} photos flagged by cleanlab from {run.get('folds')} fold models' out-of-sample "
        f"predictions; " + (", ".join(f"{kind} {count}" for kind, count in counts.items()) or "no issue")
    )
    if issues:
        splits = run.get("splits", {})
        rows = [
            {
                "photo": issue["image_id"],
                "split": splits.get(issue["image_id"], ""),
                "kind": issue["kind"],
                "class": issue["label"],
                "score": round(float(issue["score"]), 4),
                "model says": issue.get("suggestion", ""),
            }
            for issue in issues[:SHOWN_ISSUES]
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    sheet = folder / LABEL_ISSUES_SHEET
    if sheet.is_file():
        st.image(str(sheet), caption="Flagged photos, worst label quality first")
    html = folder / LABEL_ISSUES_HTML
    if html.is_file():
        st.download_button(
            "Label issues with crops (HTML)",
            html.read_text(encoding="utf-8"),
            file_name=f"label-issues-{folder.name}.html",
            mime="text/html",
        )


def _validation(settings: Settings) -> None:
    st.subheader("Latest validation report")
    found = latest_validation(settings)
    if found is None:
        st.caption("Validation has not run yet (`autoinspect data validate`).")
        return
    folder, report = found
    passed = bool(report.get("passed"))
    (st.success if passed else st.error)(
        f"{'Passed' if passed else 'Failed'}: {report.get('images', 0)} images, "
        f"{len(report.get('issues', []))} issue(s), {len(report.get('duplicate_groups', []))} duplicate group(s) "
        f"({folder.name})"
    )
    columns = st.columns(3)
    tables = (
        ("split", "images", report.get("images_per_split", {})),
        ("class", "boxes", report.get("boxes_per_class", {})),
        ("check", "issues", report.get("counts_by_check", {})),
    )
    for column, (key, count, values) in zip(columns, tables, strict=True):
        rows = [{key: name, count: value} for name, value in dict(values).items()]
        column.dataframe(pd.DataFrame(rows, columns=[key, count]), hide_index=True, width="stretch")
    html = folder / VALIDATION_HTML
    if html.is_file():
        st.download_button(
            "Validation report (HTML)", html.read_text(encoding="utf-8"), file_name=f"validation-{folder.name}.html"
        )
