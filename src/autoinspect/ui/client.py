"""A small typed HTTP client of the AutoInspect API, for the operator UI.

The UI never imports the service's internals: it sees the API exactly as an intake app does, so what works in the
UI works over the wire. Every non-2xx answer, and an API that cannot be reached, becomes one :class:`ApiError`
carrying the status and the API's own sentence, which the pages show as they are (a 403 names the missing scope).

Example:
    >>> client = ApiClient("http://127.0.0.1:8000", api_key="ak_...")  # doctest: +SKIP
    >>> client.inspect(b"...jpeg bytes...", filename="car.jpg").verdict  # doctest: +SKIP
    ['dent']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, TypeAdapter

from autoinspect.domain import Box, Detection
from autoinspect.store import PredictionEntry

logger = logging.getLogger(__name__)

DeploymentModeName = Literal["single", "shadow", "canary", "bluegreen"]
MODES: tuple[DeploymentModeName, ...] = ("single", "shadow", "canary", "bluegreen")
UNREACHABLE = 0
"""The ``status`` of an :class:`ApiError` raised when no HTTP answer came back (refused, timed out)."""


class ApiError(Exception):
    """The API refused a call (``status`` is its HTTP status) or could not be reached (``status`` 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class InspectAnswer(BaseModel):
    """The answer for one photo (``POST /v1/inspect``)."""

    verdict: list[str]
    """``["None"]`` or the damage classes found."""
    damaged: bool
    confidence: float
    detections: list[Detection]
    needs_review: bool
    model_version: str
    route: str
    request_id: str
    latency_ms: float
    width: int
    height: int
    retake: bool = False
    """The quality gate refused the photo (too dark, blurred...): no verdict; ``retake_reasons`` say why."""
    retake_reasons: list[str] = []


class InspectionPhotoAnswer(InspectAnswer):
    """One photo of a vehicle inspection: its answer, place in the request, file name and view."""

    index: int
    name: str
    view: str | None


class VehicleSummaryInfo(BaseModel):
    """The vehicle's answer (what the UI shows of ``summary``)."""

    outcome: Literal["damaged", "clean", "incomplete"]
    verdict: list[str]
    damages: dict[str, int]
    needs_review: bool
    views_missing: list[str]
    detail: str


class VehicleInspection(BaseModel):
    """One inspection of a vehicle (``POST /v1/inspections``, ``GET /v1/inspections/{id}``)."""

    inspection_id: str
    vehicle_id: str
    client_reference: str | None
    created_at: datetime
    created_by: str
    photos: list[InspectionPhotoAnswer]
    summary: VehicleSummaryInfo


class DeploymentInfo(BaseModel):
    """The plan the answering replica serves now (``GET /v1/deployment``)."""

    mode: DeploymentModeName
    canary_percent: float
    champion: int
    challenger: int | None
    last_refresh_error: str | None


class Identity(BaseModel):
    """Whose key the client holds (``GET /v1/whoami``)."""

    name: str
    key_id: str
    scopes: list[str]

    def may(self, scope: str) -> bool:
        """The API's rule: a scope, or ``admin``, which allows everything."""
        return scope in self.scopes or "admin" in self.scopes


class DatasetInfo(BaseModel):
    name: str
    digest: str


class ModelInfo(BaseModel):
    """One registered version (``GET /v1/models``)."""

    name: str
    version: int
    run_id: str | None
    metrics: dict[str, float]
    dataset: DatasetInfo | None
    backend: str | None
    aliases: list[str]
    demo: bool = False
    """Trained on the synthetic sample: shows the loop working, does not find real damage."""
    precision: str = "float32"
    """``int8`` for a quantized variant of a trained model."""


LabelBox = tuple[str, Box]
"""A corrected region: its class and its normalised box."""

_ANSWERS = TypeAdapter(list[InspectAnswer])
_ENTRIES = TypeAdapter(list[PredictionEntry])
_MODELS = TypeAdapter(list[ModelInfo])


class ApiClient:
    """Calls the API with one key; one connection pool per client (close it, or use it as a context manager)."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def whoami(self) -> Identity:
        return Identity.model_validate(self._call("GET", "/v1/whoami"))

    def inspect(self, photo: bytes, *, filename: str = "photo.jpg", vehicle_id: str | None = None) -> InspectAnswer:
        data = {"vehicle_id": vehicle_id} if vehicle_id else None
        body = self._call("POST", "/v1/inspect", files={"image": (filename, photo)}, data=data)
        return InspectAnswer.model_validate(body)

    def inspect_batch(
        self, photos: Sequence[tuple[str, bytes]], *, vehicle_id: str | None = None
    ) -> list[InspectAnswer]:
        """Several photos in one call (one model version answers all); ``photos`` are ``(filename, bytes)``."""
        files = [("images", (name, content)) for name, content in photos]
        data = {"vehicle_id": vehicle_id} if vehicle_id else None
        body = self._call("POST", "/v1/inspect/batch", files=files, data=data)
        return _ANSWERS.validate_python(body["results"])

    def inspect_vehicle(
        self,
        vehicle_id: str,
        photos: Sequence[tuple[str, bytes]],
        *,
        views: Sequence[str | None] | None = None,
        client_reference: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """One inspection of a vehicle (``POST /v1/inspections``): every photo's answer and the vehicle summary.
        ``views`` has one entry per photo (``None`` when unknown); ``request_id`` makes a retry safe."""
        files = [("images", (name, content)) for name, content in photos]
        data: dict[str, Any] = {"vehicle_id": vehicle_id}
        if client_reference:
            data["client_reference"] = client_reference
        if views is not None and any(views):
            data["views"] = [view or "" for view in views]
        headers = {"X-Request-ID": request_id} if request_id else None
        body: dict[str, Any] = self._call("POST", "/v1/inspections", files=files, data=data, headers=headers)
        return body

    def inspection(self, inspection_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call("GET", f"/v1/inspections/{inspection_id}")
        return body

    def inspection_report(self, inspection_id: str) -> str:
        """The printable HTML report of an inspection."""
        return self._call("GET", f"/v1/inspections/{inspection_id}/report", body="text")  # type: ignore[no-any-return]

    def inspection_report_pdf(self, inspection_id: str) -> bytes:
        """The same report as a PDF."""
        path = f"/v1/inspections/{inspection_id}/report"
        return self._call("GET", path, body="bytes", params={"format": "pdf"})  # type: ignore[no-any-return]

    def inspections(self, *, vehicle_id: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A page of inspections, newest first (``items``, ``total``, ``next_offset``)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if vehicle_id:
            params["vehicle_id"] = vehicle_id
        body: dict[str, Any] = self._call("GET", "/v1/inspections", params=params)
        return body

    def review_queue(self, limit: int = 50) -> list[PredictionEntry]:
        return _ENTRIES.validate_python(self._call("GET", "/v1/review/queue", params={"limit": limit}))

    def submit_review(self, request_id: str, labels: Sequence[LabelBox] | None) -> dict[str, Any]:
        """Accept the model's detections (``labels=None``) or store the true regions (``[]``: no damage)."""
        if labels is None:
            payload: dict[str, Any] = {"decision": "accept"}
        else:
            regions = [{"label": label, "box": box.model_dump()} for label, box in labels]
            payload = {"decision": "correct", "labels": regions}
        body: dict[str, Any] = self._call("POST", f"/v1/review/{request_id}", json=payload)
        return body

    def deployment(self) -> DeploymentInfo:
        return DeploymentInfo.model_validate(self._call("GET", "/v1/deployment"))

    def set_deployment(self, mode: DeploymentModeName, canary_percent: float = 0.0, reason: str = "") -> DeploymentInfo:
        payload = {"mode": mode, "canary_percent": canary_percent, "reason": reason}
        return DeploymentInfo.model_validate(self._call("PUT", "/v1/admin/deployment", json=payload))

    def promote(self, version: int, reason: str = "") -> DeploymentInfo:
        body = self._call("POST", "/v1/admin/promote", json={"version": version, "reason": reason})
        return DeploymentInfo.model_validate(body)

    def rollback(self, reason: str = "rollback from the UI") -> DeploymentInfo:
        return DeploymentInfo.model_validate(self._call("POST", "/v1/admin/rollback", json={"reason": reason}))

    def set_challenger(self, version: int, reason: str = "") -> DeploymentInfo:
        body = self._call("POST", "/v1/admin/challenger", json={"version": version, "reason": reason})
        return DeploymentInfo.model_validate(body)

    def models(self) -> list[ModelInfo]:
        return _MODELS.validate_python(self._call("GET", "/v1/models"))

    def _call(self, method: str, path: str, *, body: Literal["json", "text", "bytes"] = "json", **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            logger.warning("%s %s failed: %s", method, path, error)
            raise ApiError(UNREACHABLE, f"the API at {self.base_url} cannot be reached ({error})") from None
        if not response.is_success:
            raise ApiError(response.status_code, _detail(response))
        if body == "bytes":
            return response.content
        return response.text if body == "text" else response.json()


def _detail(response: httpx.Response) -> str:
    """The API's ``detail`` sentence; FastAPI's validation errors (a list) are joined into one line."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:500] or response.reason_phrase
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail) if detail is not None else response.reason_phrase
