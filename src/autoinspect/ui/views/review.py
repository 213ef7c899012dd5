"""Review queue: the flagged answers nobody reviewed yet, each with its stored photo and the model's boxes.

Accept keeps the model's detections as the truth; a correction is drawn on the photo itself (the model's boxes
pre-filled, to be moved, resized, relabelled or deleted, and new ones drawn: :mod:`~autoinspect.ui.box_editor`),
and "No damage" stores an empty truth. Either way the review becomes an annotation of the next dataset version.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from autoinspect.config import Settings
from autoinspect.domain import Box
from autoinspect.store import ImageStore, PredictionEntry
from autoinspect.ui.box_editor import edit_boxes
from autoinspect.ui.client import ApiError, LabelBox
from autoinspect.ui.common import api_client, show_api_error

FLASH_KEY = "review_flash"
CORNERS = ("x1", "y1", "x2", "y2")


def render(settings: Settings) -> None:
    st.header("Review queue")
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    limit = st.number_input("Show at most", min_value=1, max_value=500, value=20, step=10)
    try:
        with api_client(settings) as client:
            queue = client.review_queue(int(limit))
    except ApiError as error:
        show_api_error(error, settings)
        return
    if not queue:
        st.info("Nothing to review: no flagged answer is waiting.")
        return
    st.caption(f"{len(queue)} answer(s) waiting, newest first.")
    images = ImageStore.for_settings(settings)
    for entry in queue:
        with st.container(border=True):
            _show_entry(entry, images, settings)


def labels_from_rows(rows: list[dict[Any, Any]]) -> list[LabelBox]:
    """The edited regions as labels; rows with no class or an empty corner are ignored (a half-made box).

    Raises:
        ValueError: a corner is outside [0, 1] or a box has no area (said in words the reviewer can act on).
    """
    labels: list[LabelBox] = []
    for number, row in enumerate(rows, start=1):
        corners = [row.get(name) for name in CORNERS]
        if not row.get("label") or any(value is None or value != value for value in corners):
            continue
        x1, y1, x2, y2 = (float(value) for value in corners)  # type: ignore[arg-type]
        if not all(0.0 <= value <= 1.0 for value in (x1, y1, x2, y2)):
            raise ValueError(f"box {number}: corners must lie in [0, 1]")
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box {number}: x2 must exceed x1 and y2 exceed y1")
        labels.append((str(row["label"]), Box(x1=x1, y1=y1, x2=x2, y2=y2)))
    return labels


def _show_entry(entry: PredictionEntry, images: ImageStore, settings: Settings) -> None:
    rid = entry.request_id
    when = f"{entry.created_at:%Y-%m-%d %H:%M}"
    why = "unsure (review band)" if entry.needs_review else f"sampled by rule `{entry.sampled_for}`"
    st.markdown(f"**{rid}** · model v{entry.model_version} · verdict **{entry.verdict_text}** · {when} · {why}")
    photo, actions = st.columns([3, 2])
    with photo:
        content = images.find(entry.image_sha256)
        if content is None:
            st.caption(
                "The photo was not kept (store.keep_images is off, or it was removed): accept the model's boxes "
                "or mark the photo as no damage."
            )
            rows = None
        else:
            rows = edit_boxes(content, entry.detections, settings.classes, key=f"boxes-{rid}")
    with actions:
        if st.button("Accept", key=f"accept-{rid}", type="primary", help="The model's boxes are right."):
            _submit(settings, rid, None, "accepted")
        if st.button("No damage", key=f"clean-{rid}", help="The photo shows no scratch or dent."):
            _submit(settings, rid, [], "corrected: no damage")
        if rows is not None and st.button(
            "Submit correction", key=f"correct-{rid}", help="Store the boxes as drawn on the photo as the truth."
        ):
            try:
                labels = labels_from_rows(rows)
            except ValueError as error:
                st.error(str(error))
            else:
                _submit(settings, rid, labels, f"corrected: {len(labels)} region(s)")


def _submit(settings: Settings, request_id: str, labels: list[LabelBox] | None, outcome: str) -> None:
    try:
        with api_client(settings) as client:
            client.submit_review(request_id, labels)
    except ApiError as error:
        show_api_error(error, settings)
        return
    st.session_state[FLASH_KEY] = f"{request_id} {outcome}."
    st.rerun()
