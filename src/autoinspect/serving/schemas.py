"""The API's request and response bodies: what the OpenAPI spec publishes and clients code against."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from autoinspect.domain import Detection, SizeClass, VehicleView
from autoinspect.registry.deployment import DeploymentMode
from autoinspect.store import Route


class InspectJson(BaseModel):
    """``POST /v1/inspect`` as JSON, for intake apps that cannot send multipart."""

    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(min_length=1, description="The photo file (JPEG, PNG, WebP, BMP), base64-encoded.")
    vehicle_id: str | None = Field(
        None, max_length=128, description="Keeps all photos of one vehicle on the same side of a canary."
    )


class InspectBatchJson(BaseModel):
    """``POST /v1/inspect/batch`` as JSON."""

    model_config = ConfigDict(extra="forbid")

    images_base64: list[str] = Field(min_length=1, description="Photo files, base64-encoded.")
    vehicle_id: str | None = Field(None, max_length=128)


class SizedDetection(Detection):
    """A detection with how much of the photo it covers."""

    area: float = Field(ge=0.0, le=1.0)
    """The box's share of the photo's area."""
    size: SizeClass | None = None
    """``small``, ``medium`` or ``large`` when the photo's view is known and is an overview (cut-offs in
    ``inspections.size_cutoffs``); ``None`` otherwise, since a close-up's share says nothing of the real size."""


class InspectResult(BaseModel):
    """The answer for one photo."""

    verdict: list[str] = Field(examples=[["None"], ["dent", "scratch"]])
    """Always a list: ``["None"]`` when no damage was found, else the damage classes found, sorted."""
    damaged: bool
    """Whether the verdict names any damage (``verdict != ["None"]``)."""
    confidence: float = Field(ge=0.0, le=1.0)
    """How sure the model is that the photo shows damage: the best presence probability of a presence model,
    else the best box score (0 when there is no candidate)."""
    detections: list[SizedDetection]
    """Damage found, best first; boxes are ``x1, y1, x2, y2`` normalised to the photo's width and height."""
    needs_review: bool
    """The model was unsure about a region (a score in its review band): a human should look."""
    presence: dict[str, float] | None = None
    """Per class, the model's probability that the photo shows it; for models with a presence output, whose
    verdict comes from these at thresholds calibrated on val (boxes then locate the classes named)."""
    model_version: str
    route: Route
    """``champion``, or ``challenger`` when a canary answered."""
    request_id: str
    latency_ms: float
    """Time spent in the service for this request, from the decoded upload to the answer."""
    width: int
    height: int
    retake: bool = False
    """The photo cannot support an answer (too dark, blurred, glare...): no verdict (``verdict`` is ``[]``), the
    model did not run on it; send another photo."""
    retake_reasons: list[str] = Field(default_factory=list)
    """Why, one sentence per failed check, each starting with its short name (``too dark: ...``)."""


class InspectBatchResult(BaseModel):
    request_id: str
    results: list[InspectResult]
    """In the order the photos were sent; each has its own ``request_id`` (``<batch id>.<index>``)."""
    latency_ms: float


class InspectionPhotoJson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(min_length=1, description="The photo file, base64-encoded.")
    view: VehicleView | None = Field(None, description="Which side of the vehicle the photo shows.")


class InspectionJson(BaseModel):
    """``POST /v1/inspections`` as JSON."""

    model_config = ConfigDict(extra="forbid")

    vehicle_id: str = Field(min_length=1, max_length=128, description="The vehicle inspected (VIN, plate, fleet id).")
    client_reference: str | None = Field(None, max_length=128, description="Your own reference: claim, contract...")
    photos: list[InspectionPhotoJson] = Field(min_length=1)


class InspectionPhoto(InspectResult):
    """One photo of an inspection: the answer ``/v1/inspect`` gives, with its place in the inspection."""

    index: int = Field(ge=0)
    """Position in the request (0-based)."""
    name: str
    """The file name sent (or ``photo <index>`` for JSON)."""
    view: VehicleView | None
    image_sha256: str | None = None
    """Where the photo is kept (its content hash in the image store); ``None`` when ``store.keep_images`` is off."""


class LargestDamage(BaseModel):
    photo: int
    """Index of the photo it is on."""
    label: str
    confidence: float
    area: float
    size: SizeClass | None


Outcome = Literal["damaged", "clean", "incomplete"]


class VehicleSummary(BaseModel):
    """The answer for the vehicle, from all its photos."""

    outcome: Outcome
    """``damaged`` when any photo shows damage; ``clean`` when none does and the photos cover the vehicle (every
    required view, or enough photos when no view is given); ``incomplete`` when none does but they do not."""
    verdict: list[str] = Field(examples=[["None"], ["dent", "scratch"], []])
    """The damage classes found, sorted; ``["None"]`` only for a ``clean`` outcome; ``[]`` when ``incomplete``."""
    damaged: bool
    damages: dict[str, int]
    """Detections per class over all photos."""
    largest: LargestDamage | None
    needs_review: bool
    """Any photo's answer needs a human look."""
    views_covered: list[VehicleView]
    views_missing: list[VehicleView]
    """Required views no usable photo showed."""
    retakes: list[int] = Field(default_factory=list)
    """Photos (indices) the quality gate refused: they count for nothing until sent again."""
    detail: str
    """One sentence for the person handing the answer over."""


class InspectionResult(BaseModel):
    """``POST /v1/inspections`` and ``GET /v1/inspections/{id}``: one vehicle's inspection, kept as answered."""

    inspection_id: str
    vehicle_id: str
    client_reference: str | None
    created_at: datetime
    created_by: str
    """The name of the API key that sent it."""
    model_version: str
    photos: list[InspectionPhoto]
    summary: VehicleSummary


class InspectionListItem(BaseModel):
    inspection_id: str
    vehicle_id: str
    client_reference: str | None
    created_at: datetime
    outcome: Outcome
    verdict: list[str]
    photos: int
    needs_review: bool


class InspectionPage(BaseModel):
    """A page of inspections, newest first."""

    items: list[InspectionListItem]
    total: int
    """How many inspections match the filters."""
    limit: int
    offset: int
    next_offset: int | None
    """Offset of the next page; ``None`` on the last one."""


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one sentence saying what was wrong and what to do."""

    detail: str


class Health(BaseModel):
    status: Literal["ok"]


class KeyIdentity(BaseModel):
    """The caller's key without its secret (``GET /v1/whoami``)."""

    name: str
    """Who holds it: the actor recorded for every change made with it."""
    key_id: str
    scopes: list[str]


class Readiness(BaseModel):
    ready: bool
    champion: int | None
    challenger: int | None
    mode: DeploymentMode | None
    detail: str


class DeploymentState(BaseModel):
    """The plan a replica serves now, with its last registry read."""

    mode: DeploymentMode
    canary_percent: float
    champion: int
    challenger: int | None
    last_refresh_error: str | None


class DeploymentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: DeploymentMode
    canary_percent: float = Field(0.0, ge=0.0, le=100.0, strict=True)
    """Strict: ``true`` is not a share of traffic (lax parsing read it as 1 %)."""
    reason: str = Field("", max_length=500)


MAX_VERSION = 2**31 - 1
"""Registry versions are database integers: a larger number is refused with 422 before it reaches the registry
(2**63 overflowed SQLite and answered 500)."""


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


class VersionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, BeforeValidator(_not_a_boolean)] = Field(ge=1, le=MAX_VERSION)
    """``true`` is not a version number (lax parsing read it as version 1); ``2.0`` is, as JSON Schema says."""
    reason: str = Field("", max_length=500)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("rollback through the API", max_length=500)
