"""Inspect: upload photos, get the verdict with boxes drawn; the confidence slider filters without a new call.

Answers are kept in the session by photo content, so redrawing (slider, other widgets) never sends a photo twice
and never logs a second prediction for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import streamlit as st

from autoinspect.config import Settings
from autoinspect.domain import Detection
from autoinspect.drawing import draw_regions
from autoinspect.ui.client import ApiClient, ApiError, InspectAnswer
from autoinspect.ui.common import api_client, show_api_error
from autoinspect.ui.views.vehicle import render_vehicle

ANSWERS_KEY = "inspect_answers"
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp"]


BAD_PHOTO = (413, 422)
"""What the API answers when a photo itself cannot be read (too large, corrupt, not an image)."""


def inspect_photos(
    client: ApiClient, photos: Sequence[tuple[str, bytes]], *, vehicle_id: str | None, batch_size: int
) -> list[InspectAnswer | ApiError]:
    """One answer (or the API's refusal) per photo, in order: batches of ``batch_size`` (the API's limit); a batch
    the API refuses for a bad photo is sent again photo by photo, so the good photos are answered and each bad
    one gets its own reason. Other errors (API down, key refused) are raised."""
    answers: list[InspectAnswer | ApiError] = []
    for start in range(0, len(photos), batch_size):
        batch = photos[start : start + batch_size]
        if len(batch) > 1:
            try:
                answers += client.inspect_batch(batch, vehicle_id=vehicle_id)
                continue
            except ApiError as error:
                if error.status not in BAD_PHOTO:
                    raise
        answers += [_one(client, name, content, vehicle_id) for name, content in batch]
    return answers


def _one(client: ApiClient, name: str, content: bytes, vehicle_id: str | None) -> InspectAnswer | ApiError:
    try:
        return client.inspect(content, filename=name, vehicle_id=vehicle_id)
    except ApiError as error:
        if error.status not in BAD_PHOTO:
            raise
        return error


def visible(detections: Sequence[Detection], min_confidence: float) -> list[Detection]:
    """The detections at or above ``min_confidence``, best first: the slider filters here, client-side, so moving
    it never calls the API again."""
    kept = [d for d in detections if d.confidence >= min_confidence]
    return sorted(kept, key=lambda d: d.confidence, reverse=True)


def verdict_text(answer: InspectAnswer) -> str:
    if answer.retake:
        return "Retake the photo"
    return ", ".join(answer.verdict) if answer.damaged else "None (no damage)"


def render(settings: Settings) -> None:
    st.header("Inspect")
    uploads = st.file_uploader("Photos of a vehicle", type=IMAGE_TYPES, accept_multiple_files=True)
    vehicle = st.text_input(
        "Vehicle id (optional)",
        help="With a vehicle id the photos are one inspection of that vehicle: one answer for the vehicle, kept in "
        "its history and compared with the inspection before.",
    )
    min_confidence = st.slider("Hide detections below confidence", 0.0, 1.0, 0.0, 0.05)
    if not uploads:
        st.info("Upload one or more photos (JPEG, PNG, WebP, BMP) to inspect them.")
        return
    photos = [(upload.name, upload.getvalue()) for upload in uploads]
    if vehicle:
        render_vehicle(
            settings,
            vehicle,
            photos,
            lambda name, content, answer: _show_answer(name, content, answer, min_confidence, settings),
        )
        return
    cache: dict[str, InspectAnswer] = st.session_state.setdefault(ANSWERS_KEY, {})
    keys = [hashlib.sha256(content).hexdigest() for _, content in photos]
    missing = [(key, photo) for key, photo in zip(keys, photos, strict=True) if key not in cache]
    if missing:
        try:
            with api_client(settings) as client, st.spinner("Inspecting..."):
                answers = inspect_photos(
                    client,
                    [photo for _, photo in missing],
                    vehicle_id=None,
                    batch_size=settings.serving.max_batch_files,
                )
        except ApiError as error:
            show_api_error(error, settings)
            return
        for (key, (name, _)), answer in zip(missing, answers, strict=True):
            if isinstance(answer, ApiError):
                st.error(f"{name} was not inspected: {answer.detail}")
            else:
                cache[key] = answer
    for key, (name, content) in zip(keys, photos, strict=True):
        if key in cache:
            _show_answer(name, content, cache[key], min_confidence, settings)


def _show_answer(name: str, content: bytes, answer: InspectAnswer, min_confidence: float, settings: Settings) -> None:
    st.subheader(name)
    shown = visible(answer.detections, min_confidence)
    left, right = st.columns([3, 2])
    with left:
        st.image(draw_regions(content, shown, settings.classes), width="stretch")
    with right:
        st.metric("Verdict", verdict_text(answer))
        if answer.retake:
            st.warning("This photo cannot be answered: " + "; ".join(answer.retake_reasons) + ".")
        elif answer.needs_review:
            st.warning("Needs review: the model was unsure about a region; it is in the review queue.")
        else:
            st.success("Decided automatically")
        hidden = len(answer.detections) - len(shown)
        rows = [{"label": d.label, "confidence": round(d.confidence, 3)} for d in shown]
        if rows:
            st.dataframe(rows, hide_index=True)
        if hidden:
            st.caption(f"{hidden} detection(s) below {min_confidence:.2f} hidden.")
        st.caption(
            f"model v{answer.model_version} ({answer.route}), {answer.latency_ms:.0f} ms, "
            f"{answer.width}x{answer.height}, request {answer.request_id}"
        )
