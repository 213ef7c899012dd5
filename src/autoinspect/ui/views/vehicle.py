"""Inspect a vehicle: its photos with their views become one inspection, answered for the vehicle and kept in its
history, next to the inspections before it (what is new since the last one).

The Inspect page hands over here when a vehicle id is given; nothing is sent before "Inspect vehicle" is clicked,
since an inspection is a record (a second click with the same photos and views returns the stored one: the
request id is derived from them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import streamlit as st

from autoinspect.config import Settings
from autoinspect.ui.client import ApiError, InspectAnswer, VehicleInspection
from autoinspect.ui.common import api_client, show_api_error
from autoinspect.ui.vehicle_history import new_damage, side_by_side

VIEWS = ["", "front", "rear", "left", "right", "roof", "detail"]
RESULT_KEY = "vehicle_inspection"
HISTORY_SHOWN = 5
OUTCOME_TEXT = {"damaged": "Damaged", "clean": "None (no damage)", "incomplete": "Incomplete"}

ShowPhoto = Callable[[str, bytes, InspectAnswer], None]


def render_vehicle(settings: Settings, vehicle: str, photos: Sequence[tuple[str, bytes]], show: ShowPhoto) -> None:
    """Views per photo, a reference, the button; then the vehicle's answer, each photo, and the history."""
    st.caption('Give each photo its view, so the vehicle is answered "None" only when every side was seen.')
    columns = st.columns(min(4, len(photos)))
    views = [
        columns[index % len(columns)].selectbox(name, VIEWS, key=f"view-{index}-{name}", format_func=_view_label)
        for index, (name, _) in enumerate(photos)
    ]
    reference = st.text_input("Your reference (optional)", help="Claim, contract or work order number.")
    request = _request_id(vehicle, photos, views)
    if st.button("Inspect vehicle", type="primary"):
        try:
            with api_client(settings) as client, st.spinner("Inspecting the vehicle..."):
                answer = client.inspect_vehicle(
                    vehicle, photos, views=[v or None for v in views], client_reference=reference, request_id=request
                )
        except ApiError as error:
            show_api_error(error, settings)
            return
        st.session_state[RESULT_KEY] = VehicleInspection.model_validate(answer)
    result: VehicleInspection | None = st.session_state.get(RESULT_KEY)
    if result is None or result.inspection_id != request:
        st.info("Set the views, then click Inspect vehicle.")
        return
    _show_summary(result)
    _offer_report(settings, result)
    contents = dict(photos)
    for photo in result.photos:
        show(f"{photo.name} ({photo.view or 'view not given'})", contents[photo.name], photo)
    _show_history(settings, result)


def _view_label(view: str) -> str:
    return view or "view: not given"


def _request_id(vehicle: str, photos: Sequence[tuple[str, bytes]], views: Sequence[str]) -> str:
    """The same vehicle, photos and views give the same id: a repeated click fetches the stored inspection."""
    digest = hashlib.sha256(vehicle.encode())
    for (_, content), view in zip(photos, views, strict=True):
        digest.update(hashlib.sha256(content).digest() + view.encode())
    return f"ui-{digest.hexdigest()[:32]}"


def _show_summary(result: VehicleInspection) -> None:
    summary = result.summary
    st.subheader(f"Vehicle {result.vehicle_id}")
    verdict = ", ".join(summary.verdict) if summary.outcome == "damaged" else OUTCOME_TEXT[summary.outcome]
    st.metric("Vehicle verdict", verdict)
    if summary.outcome == "incomplete":
        st.warning(summary.detail)
    elif summary.outcome == "damaged":
        st.error(summary.detail)
    else:
        st.success(summary.detail)
    if summary.needs_review:
        st.warning("Needs review: the model was unsure on at least one photo; it is in the review queue.")
    st.caption(f"inspection {result.inspection_id}, {result.created_at:%Y-%m-%d %H:%M} UTC, by {result.created_by}")


def _offer_report(settings: Settings, result: VehicleInspection) -> None:
    try:
        with api_client(settings) as client:
            report = client.inspection_report(result.inspection_id)
    except ApiError as error:
        show_api_error(error, settings)
        return
    name = f"inspection-{result.vehicle_id}-{result.created_at:%Y%m%d-%H%M}"
    html, pdf = st.columns(2)
    html.download_button(
        "Download the report (HTML, printable)",
        report,
        file_name=f"{name}.html",
        mime="text/html",
        key="vehicle-report",
    )
    pdf.download_button(
        "Download the report (PDF)",
        lambda: _report_pdf(settings, result.inspection_id),  # made when clicked: about a second of layout
        file_name=f"{name}.pdf",
        mime="application/pdf",
        key="vehicle-report-pdf",
    )


def _report_pdf(settings: Settings, inspection_id: str) -> bytes:
    with api_client(settings) as client:
        return client.inspection_report_pdf(inspection_id)


def _show_history(settings: Settings, result: VehicleInspection) -> None:
    try:
        with api_client(settings) as client:
            page = client.inspections(vehicle_id=result.vehicle_id, limit=HISTORY_SHOWN + 1)
            earlier = [item for item in page["items"] if item["inspection_id"] != result.inspection_id]
            previous = (
                VehicleInspection.model_validate(client.inspection(earlier[0]["inspection_id"])) if earlier else None
            )
    except ApiError as error:
        show_api_error(error, settings)
        return
    st.subheader("History of this vehicle")
    if previous is None:
        st.caption("No earlier inspection of this vehicle.")
        return
    changes = new_damage(previous, result)
    since = f"since the inspection of {previous.created_at:%Y-%m-%d %H:%M}"
    if changes:
        st.error(f"New damage {since}: " + "; ".join(changes))
    else:
        st.success(f"No new damage {since}.")
    st.dataframe(side_by_side([previous, result]), hide_index=True)
    rows = [
        {
            "inspection": item["inspection_id"],
            "time": item["created_at"],
            "outcome": item["outcome"],
            "verdict": ", ".join(item["verdict"]),
            "photos": item["photos"],
        }
        for item in earlier[:HISTORY_SHOWN]
    ]
    st.caption(f"{page['total']} inspection(s) of {result.vehicle_id}; the latest earlier ones:")
    st.dataframe(rows, hide_index=True)
