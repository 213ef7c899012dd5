"""The API's request and response bodies: what the OpenAPI spec publishes and clients code against."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autoinspect.domain import Detection
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


class InspectResult(BaseModel):
    """The answer for one photo."""

    verdict: list[str] = Field(examples=[["None"], ["dent", "scratch"]])
    """Always a list: ``["None"]`` when no damage was found, else the damage classes found, sorted."""
    damaged: bool
    """Whether the verdict names any damage (``verdict != ["None"]``)."""
    confidence: float = Field(ge=0.0, le=1.0)
    """How sure the model is that the photo shows damage: the best presence probability of a presence model,
    else the best box score (0 when there is no candidate)."""
    detections: list[Detection]
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


class InspectBatchResult(BaseModel):
    request_id: str
    results: list[InspectResult]
    """In the order the photos were sent; each has its own ``request_id`` (``<batch id>.<index>``)."""
    latency_ms: float


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
    canary_percent: float = Field(0.0, ge=0.0, le=100.0)
    reason: str = Field("", max_length=500)


MAX_VERSION = 2**31 - 1
"""Registry versions are database integers: a larger number is refused with 422 before it reaches the registry
(2**63 overflowed SQLite and answered 500)."""


class VersionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION)
    reason: str = Field("", max_length=500)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("rollback through the API", max_length=500)
