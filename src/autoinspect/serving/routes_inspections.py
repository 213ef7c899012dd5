"""``/v1/inspections``: a vehicle's photos answered together, stored, and listed by vehicle and time.

Each photo gets the answer ``/v1/inspect`` gives (and goes to the prediction log, the review queue and
monitoring like any answer); the inspection adds the vehicle summary (:mod:`~autoinspect.serving.vehicle`) and is
kept as answered. Idempotent like ``/v1/inspect``: the inspection id is the ``X-Request-ID`` when one is sent, and
a resent request returns the stored inspection instead of answering again; the same id for another vehicle is a
409.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BeforeValidator
from starlette.concurrency import run_in_threadpool

from autoinspect.domain import VehicleView
from autoinspect.serving.auth import InspectKey
from autoinspect.serving.inspection import Photo, RequestRejectedError
from autoinspect.serving.inspection_report import render_report
from autoinspect.serving.report_pdf import PDF_MEDIA_TYPE, render_pdf
from autoinspect.serving.routes_inspect import INSPECT_ERRORS, PHOTOS, VEHICLE_ID, request_body
from autoinspect.serving.schemas import (
    ErrorBody,
    InspectionJson,
    InspectionListItem,
    InspectionPage,
    InspectionPhoto,
    InspectionResult,
)
from autoinspect.serving.service import Service, current_service
from autoinspect.serving.uploads import (
    JSON,
    MULTIPART,
    base64_photos,
    media_type,
    multipart_photos,
    parse_json,
    request_id,
    text_field,
    unsupported_media,
)
from autoinspect.serving.vehicle import summarise
from autoinspect.store import StoredInspection

router = APIRouter(tags=["inspections"])


def _iso_only(value: object) -> object:
    """Pydantic reads a bare number as a Unix time; a query documented as ISO 8601 should refuse one."""
    if isinstance(value, str) and not ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 time such as 2026-12-07T10:00:00Z")
    return value


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")
IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
State = Annotated[Service, Depends(current_service)]
_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: INSPECT_ERRORS[401],
    403: INSPECT_ERRORS[403],
    404: {"model": ErrorBody, "description": "No inspection has this id"},
    422: {"model": ErrorBody, "description": "The query does not match the schema"},
}
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": spec["description"],
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, spec in _READ_ERRORS.items()
}
"""The read errors for a route whose success is not JSON: FastAPI would document a ``model`` in the route's own
media type (HTML), while errors are always JSON."""
_BODY = request_body(
    {
        "images": PHOTOS,
        "vehicle_id": {**VEHICLE_ID, "minLength": 1},
        "client_reference": {"type": "string", "maxLength": 128},
        "views": {
            "type": "array",
            "items": {"type": "string", "enum": ["", *VehicleView]},
            "description": "One per photo, in order ('' when unknown); or none at all.",
        },
    },
    ["images", "vehicle_id"],
    InspectionJson,
)


@router.post(
    "/v1/inspections",
    response_model=InspectionResult,
    responses={**INSPECT_ERRORS, 409: {"model": ErrorBody, "description": "This id is another vehicle's inspection"}},
    openapi_extra=_BODY,
    summary="Inspect a vehicle from several photos",
)
async def create_inspection(request: Request, key: InspectKey, state: State) -> InspectionResult:
    """Answer every photo of one vehicle and the vehicle as a whole: ``summary.outcome`` is ``damaged``,
    ``clean`` (no damage, and the photos cover the required views) or ``incomplete``."""
    inspection_id = request_id(request, uuid.uuid4().hex)
    limit = state.settings.inspections.max_photos
    photos, vehicle_id, reference, views = await _read_request(request, max_files=limit)
    stored = state.inspections.get(inspection_id)
    if stored is None:
        stored = await run_in_threadpool(_inspect, state, photos, inspection_id, vehicle_id, reference, views, key.name)
    if stored.vehicle_id != vehicle_id:
        raise HTTPException(status.HTTP_409_CONFLICT, f"inspection {inspection_id} is of another vehicle")
    return InspectionResult.model_validate(stored.answer)


@router.get(
    "/v1/inspections/{inspection_id}",
    response_model=InspectionResult,
    responses=_READ_ERRORS,
    summary="One inspection, as it was answered",
)
def get_inspection(
    inspection_id: Annotated[str, Path(max_length=100)], _key: InspectKey, state: State
) -> InspectionResult:
    return _stored(state, inspection_id)


@router.get(
    "/v1/inspections/{inspection_id}/report",
    response_class=HTMLResponse,
    responses={
        **_JSON_ERRORS,
        200: {
            "content": {"text/html": {}, PDF_MEDIA_TYPE: {}},
            "description": "The report: one HTML file, or a PDF with `format=pdf`",
        },
    },
    summary="A printable report of one inspection",
)
def inspection_report(
    inspection_id: Annotated[str, Path(max_length=100)],
    _key: InspectKey,
    state: State,
    report_format: Annotated[
        Literal["html", "pdf"], Query(alias="format", description="`html` (the default) or `pdf` (A4 pages).")
    ] = "html",
) -> Response:
    """One self-contained HTML file: the vehicle's findings, each photo with its damage outlined, the model
    version and time, and who reviewed what; with ``format=pdf`` the same report laid out as a PDF."""
    html = render_report(
        _stored(state, inspection_id),
        images=state.images,
        reviews=state.reviews,
        classes=state.settings.classes,
    )
    if report_format == "pdf":
        headers = {"Content-Disposition": f'attachment; filename="inspection-{inspection_id}.pdf"'}
        return Response(render_pdf(html), media_type=PDF_MEDIA_TYPE, headers=headers)
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="inspection-{inspection_id}.html"'})


@router.get("/v1/inspections", response_model=InspectionPage, responses=_READ_ERRORS, summary="List inspections")
def list_inspections(
    _key: InspectKey,
    state: State,
    vehicle_id: Annotated[str | None, Query(max_length=128, description="Only this vehicle's inspections.")] = None,
    since: Annotated[IsoTime | None, Query(description="Created at or after (ISO 8601 with zone).")] = None,
    until: Annotated[IsoTime | None, Query(description="Created before (ISO 8601 with zone).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> InspectionPage:
    """Newest first; page with ``offset`` (``next_offset`` says where the next page starts)."""
    found, total = state.inspections.find(vehicle_id=vehicle_id, since=since, until=until, limit=limit, offset=offset)
    end = offset + len(found)
    return InspectionPage(
        items=[_item(stored) for stored in found],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=end if end < total else None,
    )


def _stored(state: Service, inspection_id: str) -> InspectionResult:
    """The inspection as it was answered; 404 when there is none."""
    stored = state.inspections.get(inspection_id)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no inspection {inspection_id}")
    return InspectionResult.model_validate(stored.answer)


def _inspect(
    state: Service,
    photos: list[Photo],
    inspection_id: str,
    vehicle_id: str,
    reference: str | None,
    views: list[VehicleView | None],
    actor: str,
) -> StoredInspection:
    """Answer the photos (each logged under ``<inspection id>.<index>``), summarise, and store the whole."""
    results = state.inspector.answer(
        photos, request_id=inspection_id, vehicle_id=vehicle_id, views=views, numbered=True, caller=actor
    )
    answered = [
        InspectionPhoto(
            **result.answer.model_dump(),
            index=index,
            name=photo.name,
            view=views[index],
            image_sha256=result.image_sha256,
        )
        for index, (photo, result) in enumerate(zip(photos, results, strict=True))
    ]
    summary = summarise(answered, state.settings.inspections)
    created = datetime.now(UTC)
    answer = InspectionResult(
        inspection_id=inspection_id,
        vehicle_id=vehicle_id,
        client_reference=reference,
        created_at=created,
        created_by=actor,
        model_version=results[0].answer.model_version,
        photos=answered,
        summary=summary,
    )
    return state.inspections.add(
        StoredInspection(
            inspection_id=inspection_id,
            vehicle_id=vehicle_id,
            client_reference=reference,
            created_at=created,
            created_by=actor,
            outcome=summary.outcome,
            answer=answer.model_dump(mode="json"),
        )
    )


def _item(stored: StoredInspection) -> InspectionListItem:
    summary = stored.answer["summary"]
    return InspectionListItem(
        inspection_id=stored.inspection_id,
        vehicle_id=stored.vehicle_id,
        client_reference=stored.client_reference,
        created_at=stored.created_at,
        outcome=summary["outcome"],
        verdict=summary["verdict"],
        photos=len(stored.answer["photos"]),
        needs_review=summary["needs_review"],
    )


async def _read_request(
    request: Request, *, max_files: int
) -> tuple[list[Photo], str, str | None, list[VehicleView | None]]:
    """Photos, vehicle id, client reference and one view (or ``None``) per photo, from either encoding."""
    kind = media_type(request)
    if kind == MULTIPART:
        photos, form = await multipart_photos(request, field="images", max_files=max_files, max_fields=max_files + 8)
        vehicle_id = text_field(form, "vehicle_id")
        if vehicle_id is None:
            raise RequestRejectedError(400, "vehicle_id is required: which vehicle do the photos show?")
        given = form.getlist("views")
        if any(not isinstance(value, str) for value in given):
            raise RequestRejectedError(400, "views must be text fields, not files")
        return photos, vehicle_id, text_field(form, "client_reference"), _views([str(v) for v in given], len(photos))
    if kind == JSON:
        parsed = parse_json(await request.body(), InspectionJson, "vehicle_id and photos")
        photos = base64_photos([photo.image_base64 for photo in parsed.photos], max_files=max_files)
        return photos, parsed.vehicle_id, parsed.client_reference, [photo.view for photo in parsed.photos]
    raise unsupported_media(kind, "images")


def _views(given: list[str], count: int) -> list[VehicleView | None]:
    """The multipart ``views`` fields: none at all, or exactly one per photo ('' for unknown)."""
    if not given:
        return [None] * count
    if len(given) != count:
        raise RequestRejectedError(422, f"{len(given)} views for {count} photos: send one per photo, or none")
    try:
        return [VehicleView(value) if value else None for value in given]
    except ValueError:
        known = ", ".join(VehicleView)
        raise RequestRejectedError(422, f"unknown view in {given}; known views: {known}") from None
