"""Data: the dataset versions with their split and box counts, the latest validation report, and the profiles.

Read straight from the home folder (the dataset store and the reports), so the page works without the API."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from autoinspect.config import Settings
from autoinspect.ui.reports import VALIDATION_HTML, dataset_rows, latest_validation


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
