"""The review queue over HTTP: what an inspector should look at next, and their verdict on it.

A review is the truth for one served photo and feeds both monitoring (performance on reviewed labels) and the
next training set, so the endpoint refuses anything that could not become an annotation (a class the model does
not know, a box off the photo) with a 422 the reviewer can act on, and never stores two truths for one request:
an identical resubmission (a double click, a retried call) returns the stored review, a different one is a 409.
The reviewer recorded is the name of the API key that submitted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from autoinspect.domain import Annotation
from autoinspect.serving.auth import require_scope
from autoinspect.serving.schemas import ErrorBody
from autoinspect.serving.service import Service, current_service
from autoinspect.store import ApiKey, PredictionEntry, Review, ReviewConflictError, Scope
from autoinspect.store.reviews import InvalidLabelsError, LabelSpec, UnknownRequestError, checked_labels

router = APIRouter(tags=["review"])

MAX_LABELS = 200
"""Regions in one correction; far above any real photo, low enough that a body cannot be made huge with boxes."""

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorBody, "description": "The key lacks the 'review' scope"},
}
QUEUE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH_ERRORS,
    422: {"model": ErrorBody, "description": "The query does not match the schema"},
}
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH_ERRORS,
    400: {"model": ErrorBody, "description": "The body cannot be parsed (not UTF-8 JSON)"},
    404: {"model": ErrorBody, "description": "No served answer is logged under this request id (yet)"},
    409: {"model": ErrorBody, "description": "The request was already reviewed with a different answer"},
    422: {
        "model": ErrorBody,
        "description": "The body does not match the schema, names a class the model does not know, "
        "or has a box outside [0, 1] or without area",
    },
}
Reviewer = Annotated[ApiKey, Depends(require_scope(Scope.REVIEW))]
State = Annotated[Service, Depends(current_service)]


class ReviewBox(BaseModel):
    """A region's corners, normalised to the photo's width and height (as detections are returned)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    x1: float = Field(ge=0.0, le=1.0)
    y1: float = Field(ge=0.0, le=1.0)
    x2: float = Field(ge=0.0, le=1.0)
    y2: float = Field(ge=0.0, le=1.0)


class ReviewLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=64, description="A damage class of the model, e.g. dent.")
    box: ReviewBox


class AcceptReview(BaseModel):
    """The model's detections were right, as returned."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept"]


class CorrectReview(BaseModel):
    """The damage really in the photo; an empty list means the photo shows none."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["correct"]
    labels: list[ReviewLabel] = Field(max_length=MAX_LABELS)


ReviewSubmission = Annotated[AcceptReview | CorrectReview, Field(discriminator="decision")]


@router.get(
    "/v1/review/queue",
    response_model=list[PredictionEntry],
    responses=QUEUE_ERRORS,
    dependencies=[Depends(require_scope(Scope.REVIEW))],
)
def review_queue(state: State, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[PredictionEntry]:
    """The newest answers flagged ``needs_review`` that nobody has reviewed yet: what to look at next."""
    return state.reviews.pending(limit)


@router.post("/v1/review/{request_id}", response_model=Review, responses=SUBMIT_ERRORS)
def submit_review(
    request_id: Annotated[str, Path(min_length=1, max_length=128)],
    submission: ReviewSubmission,
    state: State,
    key: Reviewer,
) -> Review:
    """Accept the model's detections for a served photo, or correct them; the key's name is the reviewer."""
    try:
        prediction = state.reviews.target(request_id)
        labels = None if isinstance(submission, AcceptReview) else _truth(submission, state, prediction)
        return state.reviews.submit(request_id, reviewer=key.name, labels=labels, prediction=prediction)
    except UnknownRequestError as error:
        detail = f"{error} (answers are logged moments after they are returned: retry one just sent)"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail) from None
    except InvalidLabelsError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"invalid labels: {error}") from None
    except ReviewConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None


def _truth(submission: CorrectReview, state: Service, prediction: PredictionEntry) -> list[Annotation]:
    specs: list[LabelSpec] = [
        (item.label, item.box.x1, item.box.y1, item.box.x2, item.box.y2) for item in submission.labels
    ]
    return checked_labels(specs, _known_classes(state, prediction.model_version))


def _known_classes(state: Service, model_version: str) -> list[str]:
    """The classes of the version that answered when this replica holds it, else the configured ones."""
    active = state.replica.active
    loaded = [active.champion, active.challenger] if active is not None else []
    for model in loaded:
        if model is not None and str(model.version) == model_version:
            return model.detector.metadata.classes
    return state.settings.classes
