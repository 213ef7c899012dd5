"""``POST /v1/inspect`` and ``POST /v1/inspect/batch``: photos in, verdicts out."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from autoinspect.serving.auth import InspectKey
from autoinspect.serving.schemas import ErrorBody, InspectBatchJson, InspectBatchResult, InspectJson, InspectResult
from autoinspect.serving.service import Service, current_service
from autoinspect.serving.uploads import JSON, MULTIPART, REQUEST_ID_HEADER, read_photos, request_id

router = APIRouter(tags=["inspect"])

INSPECT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request: empty body or file, bad multipart, invalid request id",
        401: "Missing, invalid or revoked API key",
        403: "The key lacks the 'inspect' scope",
        413: "Body, photo count or photo dimensions over the limits",
        415: "Neither multipart/form-data nor application/json",
        422: "A photo cannot be decoded, or the JSON does not match the schema",
        503: "No champion model is loaded yet",
    }.items()
}
REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,100}$"},
    "description": "Idempotency key: a resent request with the same id is logged once.",
}


def standalone_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its nested definitions inlined: a schema placed in ``openapi_extra`` by hand
    cannot point into its own ``$defs`` (``#/$defs/...`` means nothing inside the OpenAPI document, and ReDoc and
    schemathesis refuse it)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return inline(definitions[reference.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


BINARY = {"type": "string", "format": "binary"}
PHOTOS = {"type": "array", "items": BINARY, "minItems": 1}
VEHICLE_ID = {"type": "string", "maxLength": 128}


def request_body(properties: dict[str, Any], required: list[str], json_model: type[BaseModel]) -> dict[str, Any]:
    """The request body as the OpenAPI spec should show it, multipart (``properties``) or JSON (``json_model``):
    the handlers read the raw request, so FastAPI cannot infer the two accepted encodings itself."""
    multipart = {"type": "object", "properties": properties, "required": required}
    return {
        "parameters": [REQUEST_ID_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {MULTIPART: {"schema": multipart}, JSON: {"schema": standalone_schema(json_model)}},
        },
    }


@router.post(
    "/v1/inspect",
    response_model=InspectResult,
    responses=INSPECT_ERRORS,
    openapi_extra=request_body({"image": BINARY, "vehicle_id": VEHICLE_ID}, ["image"], InspectJson),
    summary="Inspect one photo",
)
async def inspect(
    request: Request,
    state: Annotated[Service, Depends(current_service)],
    key: InspectKey,
) -> InspectResult:
    """Find scratches and dents in one photo: ``verdict`` is ``["None"]`` or the damage classes found, with
    ``damaged`` and ``confidence``."""
    rid = request_id(request, uuid.uuid4().hex)
    photos, vehicle = await read_photos(request, field="image", max_files=1)
    results = await run_in_threadpool(
        state.inspector.inspect, photos, request_id=rid, vehicle_id=vehicle, caller=key.name
    )
    return results[0]


@router.post(
    "/v1/inspect/batch",
    response_model=InspectBatchResult,
    responses=INSPECT_ERRORS,
    openapi_extra=request_body({"images": PHOTOS, "vehicle_id": VEHICLE_ID}, ["images"], InspectBatchJson),
    summary="Inspect several photos of one vehicle",
)
async def inspect_batch(
    request: Request,
    state: Annotated[Service, Depends(current_service)],
    key: InspectKey,
) -> InspectBatchResult:
    """Several photos in one model run; all of them answered by the same model version."""
    rid = request_id(request, uuid.uuid4().hex)
    limit = state.settings.serving.max_batch_files
    photos, vehicle = await read_photos(request, field="images", max_files=limit)
    results = await run_in_threadpool(
        state.inspector.inspect, photos, request_id=rid, vehicle_id=vehicle, caller=key.name
    )
    return InspectBatchResult(request_id=rid, results=results, latency_ms=results[0].latency_ms)
