"""One inspection request, from uploaded bytes to answers: decode, route, predict, log, shadow.

Transport-free (no FastAPI here), so the HTTP layer stays thin and the logic is testable on its own. Every photo
of a request is decoded before any model runs: a batch with one corrupt photo is refused as a whole, naming
each bad file, rather than half answered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from autoinspect.config import QualityGateSettings, ServingSettings
from autoinspect.data.features import FeatureValue
from autoinspect.domain import RETAKE_VERDICT, VehicleView
from autoinspect.errors import AutoInspectError, ImageDecodeError, ImageTooLargeError
from autoinspect.images import DecodedImage, decode_image
from autoinspect.inference import Prediction
from autoinspect.monitoring.features import live_features
from autoinspect.serving.metrics import ServiceMetrics, verdict_label
from autoinspect.serving.photo_quality import measure, retake_reasons
from autoinspect.serving.replica import Replica
from autoinspect.serving.review_sampler import ReviewSampler
from autoinspect.serving.router import LoadedModel, assign
from autoinspect.serving.schemas import InspectResult
from autoinspect.serving.vehicle import sized
from autoinspect.store import BackgroundWriter, ImageStore, PredictionEntry, Route

logger = logging.getLogger(__name__)

SHADOW_SUFFIX = ":shadow"
"""Appended to a request id for the shadow model's log entry, so both entries of one request are stored."""
NOT_READY = "no champion model is loaded yet: promote a registered version (autoinspect models promote)"
SHADOW_BACKLOG = 4
"""Shadow requests queued at most; beyond this a shadow copy is skipped (and counted), never the answer delayed."""


@dataclass(frozen=True)
class Photo:
    """An uploaded photo as received, with a name for error messages (file name or field position)."""

    data: bytes
    name: str


class RequestRejectedError(AutoInspectError):
    """The request cannot be answered as sent (a 4xx), or an admin change cannot be served (a 502); ``status``
    is returned with the message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class NotReadyError(AutoInspectError):
    """No champion model is loaded yet (nothing promoted, or the registry unreachable since start-up)."""


@dataclass(frozen=True)
class Answered:
    """One photo's answer and where the photo was stored (its content hash; ``None`` when photos are not kept)."""

    answer: InspectResult
    image_sha256: str | None


@dataclass(frozen=True)
class _Decoded:
    photo: Photo
    image: DecodedImage


class Inspector:
    """Answers inspections with the replica's models and hands every answer to the prediction log."""

    def __init__(
        self,
        replica: Replica,
        *,
        writer: BackgroundWriter,
        images: ImageStore | None,
        metrics: ServiceMetrics,
        settings: ServingSettings,
        size_cutoffs: Mapping[VehicleView, tuple[float, float]] | None = None,
        quality_gate: QualityGateSettings | None = None,
        sampler: ReviewSampler | None = None,
    ) -> None:
        self._replica = replica
        self._sampler = sampler or ReviewSampler([])
        self._gate = quality_gate or QualityGateSettings()
        self._size_cutoffs = size_cutoffs or {}
        self._writer = writer
        self._images = images
        self._metrics = metrics
        self._settings = settings
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._shadow_slots = threading.BoundedSemaphore(SHADOW_BACKLOG)
        self._run_slots = threading.BoundedSemaphore(settings.max_concurrent_runs)
        self._decode_slots = threading.BoundedSemaphore(settings.max_concurrent_decodes)

    def inspect(
        self, photos: Sequence[Photo], *, request_id: str, vehicle_id: str | None, caller: str | None = None
    ) -> list[InspectResult]:
        """Answer each photo; one photo keeps ``request_id``, a batch numbers them ``<request_id>.<index>``;
        ``caller`` (the API key's name) is what per-caller review-sampling rules match.

        Raises:
            RequestRejectedError: a photo is not a decodable image (422) or too large (413).
            NotReadyError: no champion model is loaded.
        """
        answers = self.answer(photos, request_id=request_id, vehicle_id=vehicle_id, caller=caller)
        return [answered.answer for answered in answers]

    def answer(
        self,
        photos: Sequence[Photo],
        *,
        request_id: str,
        vehicle_id: str | None,
        views: Sequence[VehicleView | None] | None = None,
        numbered: bool = False,
        caller: str | None = None,
    ) -> list[Answered]:
        """:meth:`inspect`, with where each photo was stored; ``numbered`` numbers even a single photo, and
        ``views`` (one per photo, when known) size the damage found (``inspections.size_cutoffs``).

        Raises:
            RequestRejectedError: a photo is not a decodable image (422) or too large (413).
            NotReadyError: no champion model is loaded.
        """
        started = time.perf_counter()
        decoded = self._decode(photos)
        active = self._replica.active
        if active is None:
            raise NotReadyError(NOT_READY)
        single = len(photos) == 1 and not numbered
        ids = [request_id] if single else [f"{request_id}.{index}" for index in range(len(photos))]
        assignment = assign(active, vehicle_id or request_id)
        refusals = [retake_reasons(measure(item.image), self._gate) for item in decoded]
        usable = [index for index, reasons in enumerate(refusals) if not reasons]
        predictions: dict[int, Prediction] = {}
        if usable:
            with self._run_slots:
                answered = assignment.answer.detector.predict_decoded([decoded[index].image for index in usable])
            predictions = dict(zip(usable, answered, strict=True))
        features = [live_features(item.image) if self._settings.compute_features else None for item in decoded]
        shas = [self._images.put(item.photo.data) if self._images else None for item in decoded]
        latency_ms = (time.perf_counter() - started) * 1000
        results = []
        for index, item in enumerate(decoded):
            entry = _entry(
                predictions.get(index),
                assignment.answer,
                assignment.route,
                request_id=ids[index],
                latency_ms=latency_ms / len(decoded),
                features=features[index],
                image_sha256=shas[index],
                vehicle_id=vehicle_id,
                sampled_for=self._sample(predictions.get(index), caller),
            )
            self._log(entry)
            view = views[index] if views else None
            result = self._result(predictions.get(index), entry, item.image, view, latency_ms, refusals[index])
            results.append(Answered(result, shas[index]))
        if assignment.shadow is not None and usable:
            self._shadow(
                assignment.shadow,
                [decoded[index] for index in usable],
                [ids[index] for index in usable],
                [features[index] for index in usable],
                [shas[index] for index in usable],
                vehicle_id,
            )
        return results

    def _result(
        self,
        prediction: Prediction | None,
        entry: PredictionEntry,
        image: DecodedImage,
        view: VehicleView | None,
        latency_ms: float,
        refusals: list[str],
    ) -> InspectResult:
        """The answer for one photo: the model's, or a retake with the gate's reasons (``prediction`` None)."""
        common = {
            "model_version": entry.model_version,
            "route": entry.route,
            "request_id": entry.request_id,
            "latency_ms": latency_ms,
        }
        if prediction is None:
            for reason in refusals:
                self._metrics.retakes.labels(reason.split(":")[0]).inc()
            return InspectResult(
                verdict=[],
                damaged=False,
                confidence=0.0,
                detections=[],
                needs_review=False,
                width=image.source_width,
                height=image.source_height,
                retake=True,
                retake_reasons=refusals,
                **common,
            )
        return InspectResult(
            verdict=prediction.verdict.names,
            damaged=not prediction.verdict.is_none,
            confidence=prediction.max_score,
            detections=sized(prediction.detections, view, self._size_cutoffs),
            needs_review=prediction.needs_review,
            presence=prediction.presence,
            width=prediction.width,
            height=prediction.height,
            **common,
        )

    def close(self) -> None:
        """Finish the shadow work already queued (it is logged like any answer)."""
        self._shadow_pool.shutdown(wait=True)

    def _decode(self, photos: Sequence[Photo]) -> list[_Decoded]:
        """Decode each photo, capped at ``max_side``, while holding a decode slot: the slots bound the frames in
        memory at once across requests, as the run slots bound the model runs."""
        decoded, problems, too_large = [], [], False
        for photo in photos:
            try:
                with self._decode_slots:
                    image = decode_image(
                        photo.data, max_pixels=self._settings.max_pixels, max_side=self._settings.max_side
                    )
                decoded.append(_Decoded(photo, image))
            except ImageDecodeError as error:
                too_large = too_large or isinstance(error, ImageTooLargeError)
                problems.append(f"{photo.name}: {error}")
        if problems:
            raise RequestRejectedError(413 if too_large else 422, "cannot read the photo(s): " + "; ".join(problems))
        return decoded

    def _sample(self, prediction: Prediction | None, caller: str | None) -> str | None:
        """The sampling rule that sends this confident answer for review, if any (retakes and answers the
        review band already flagged are not drawn: they are in the queue or have nothing to review)."""
        if prediction is None or prediction.needs_review:
            return None
        rule = self._sampler.pick(prediction.verdict.names, prediction.max_score, caller=caller)
        if rule is not None:
            self._metrics.review_samples.labels(rule).inc()
        return rule

    def _log(self, entry: PredictionEntry) -> None:
        self._writer.submit(entry)
        self._metrics.inspections.labels(verdict_label(entry.verdict), entry.model_version, entry.route.value).inc()
        if entry.needs_review and entry.route is not Route.SHADOW:
            self._metrics.needs_review.labels(entry.model_version).inc()

    def _shadow(
        self,
        model: LoadedModel,
        decoded: list[_Decoded],
        ids: list[str],
        features: list[dict[str, FeatureValue] | None],
        shas: list[str | None],
        vehicle_id: str | None,
    ) -> None:
        """Queue the shadow copy; when the backlog is full it is skipped so shadows can never slow answers."""
        if not self._shadow_slots.acquire(blocking=False):
            self._metrics.shadow_skipped.inc(len(decoded))
            return

        def run() -> None:
            try:
                started = time.perf_counter()
                with self._run_slots:
                    predictions = model.detector.predict_decoded([item.image for item in decoded])
                latency_ms = (time.perf_counter() - started) * 1000 / len(predictions)
                for index, prediction in enumerate(predictions):
                    self._log(
                        _entry(
                            prediction,
                            model,
                            Route.SHADOW,
                            request_id=ids[index] + SHADOW_SUFFIX,
                            latency_ms=latency_ms,
                            features=features[index],
                            image_sha256=shas[index],
                            vehicle_id=vehicle_id,
                        )
                    )
            except Exception:
                logger.exception("shadow prediction by version %d failed; the answers were not affected", model.version)
            finally:
                self._shadow_slots.release()

        self._shadow_pool.submit(run)


def _entry(
    prediction: Prediction | None,
    model: LoadedModel,
    route: Route,
    *,
    request_id: str,
    latency_ms: float,
    features: dict[str, FeatureValue] | None,
    image_sha256: str | None,
    vehicle_id: str | None,
    sampled_for: str | None = None,
) -> PredictionEntry:
    """The log entry of one photo; ``prediction`` None is a photo the quality gate refused (a retake)."""
    return PredictionEntry(
        request_id=request_id,
        model_version=str(model.version),
        route=route,
        verdict=RETAKE_VERDICT if prediction is None else prediction.verdict.value,
        detections=[] if prediction is None else prediction.detections,
        needs_review=False if prediction is None else prediction.needs_review,
        max_score=0.0 if prediction is None else prediction.max_score,
        latency_ms=latency_ms,
        features=features,
        image_sha256=image_sha256,
        vehicle_id=vehicle_id,
        sampled_for=sampled_for,
    )
