"""The business KPIs of one window of traffic, from the prediction log and the reviews made in it.

These are the figures the design promises the people who run AutoInspect: how many inspections were decided
without a human (automation rate), how often inspectors had to look (review rate) and disagreed (override
rate), how many damaged cars were caught and how many clean ones were flagged, and how fast and how much the
service answered. A pure function of already-read rows, so every figure is checked by hand in a unit test.

Only answers count: shadow copies (the challenger run on a copy of the traffic) were never returned, so they are
counted apart and enter no rate. A figure whose group is empty (no answers, no reviews, no reviewed clean car)
is ``None``, never 0: a quiet hour must not look like a perfect or a broken model.

Example:
    >>> from datetime import timedelta
    >>> compute_kpis([], [], window=timedelta(hours=1)).automation_rate is None
    True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict

from autoinspect.domain import NONE_VERDICT
from autoinspect.store.reviews import Review
from autoinspect.store.tables import PredictionEntry, Route


class VersionCounts(BaseModel):
    """What one model version did in the window."""

    model_config = ConfigDict(frozen=True)

    answered: int = 0
    """Answers returned (champion or challenger route)."""
    shadow: int = 0
    """Shadow predictions logged and never returned."""
    needs_review: int = 0
    none_answers: int = 0
    retakes: int = 0
    reviewed: int = 0
    """Reviews made in the window of this version's answers."""
    overridden: int = 0


class SampleCounts(BaseModel):
    """What one review-sampling rule sent to the queue in the window, and what its reviews found."""

    model_config = ConfigDict(frozen=True)

    sampled: int
    """Confident answers the rule sent to the review queue."""
    reviewed: int
    """Reviews made in the window of those answers."""
    overridden: int
    override_rate: float | None
    """Share of those reviews that corrected the model: for a random rule, the error rate of confident answers
    on real traffic (1 - precision of what the model was sure of)."""


class Kpis(BaseModel):
    """The KPIs of one window; rates are in [0, 1] and ``None`` when their group is empty."""

    model_config = ConfigDict(frozen=True)

    window_hours: float
    answered: int
    """Answers returned (shadow copies excluded)."""
    shadow: int
    """Shadow predictions in the window, counted apart."""
    automation_rate: float | None
    """Share of answers decided without a human (not flagged for review)."""
    review_rate: float | None
    """Share of answers flagged for review: ``1 - automation_rate``."""
    reviewed: int
    """Reviews made in the window."""
    override_rate: float | None
    """Share of the window's reviews that corrected the model."""
    damaged_caught: float | None
    """Among reviewed photos whose truth shows damage, the share whose served verdict was not "None"."""
    false_alarm_rate: float | None
    """Among reviewed photos whose truth is clean, the share answered with damage."""
    none_rate: float | None
    """Share of answers that were "None"."""
    retakes: int = 0
    """Photos the quality gate refused (too dark, blurred...): answered "retake" instead of a verdict."""
    retake_rate: float | None = None
    """Share of answers that were retakes: a rising rate points at a camera, an app or a site, not the model."""
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    throughput_per_hour: float
    """Answers per hour of the window."""
    per_version: dict[str, VersionCounts]
    samples: dict[str, SampleCounts] = {}
    """Per review-sampling rule (``review_sampling.rules``), the answers it drew and their reviews."""


def compute_kpis(entries: Sequence[PredictionEntry], reviews: Sequence[Review], *, window: timedelta) -> Kpis:
    """The KPIs of ``entries`` (the window's log) and ``reviews`` (the reviews made in the window).

    A review is paired with its answer by request id among ``entries``: ``damaged_caught`` and
    ``false_alarm_rate`` need the served verdict, so reviews of answers outside ``entries`` count towards
    ``reviewed`` and ``override_rate`` only.

    Raises:
        ValueError: ``window`` is not positive.
    """
    hours = window.total_seconds() / 3600
    if hours <= 0:
        raise ValueError(f"the window must be positive, got {window}")
    answers = [entry for entry in entries if entry.route is not Route.SHADOW]
    served = {entry.request_id: entry for entry in answers}
    flagged = sum(entry.needs_review for entry in answers)
    paired = [(review, served[review.request_id]) for review in reviews if review.request_id in served]
    damaged = [entry for review, entry in paired if review.labels]
    clean = [entry for review, entry in paired if not review.labels]
    latencies = np.array([entry.latency_ms for entry in answers], dtype=np.float64)
    retakes = sum(entry.is_retake for entry in answers)
    return Kpis(
        window_hours=hours,
        answered=len(answers),
        shadow=len(entries) - len(answers),
        automation_rate=_rate(len(answers) - flagged, len(answers)),
        review_rate=_rate(flagged, len(answers)),
        reviewed=len(reviews),
        override_rate=_rate(sum(review.overrode for review in reviews), len(reviews)),
        damaged_caught=_rate(sum(entry.damaged for entry in damaged), len(damaged)),
        false_alarm_rate=_rate(sum(entry.damaged for entry in clean), len(clean)),
        none_rate=_rate(sum(entry.verdict == NONE_VERDICT for entry in answers), len(answers)),
        retakes=retakes,
        retake_rate=_rate(retakes, len(answers)),
        latency_p50_ms=float(np.percentile(latencies, 50)) if latencies.size else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else None,
        throughput_per_hour=len(answers) / hours,
        per_version=_per_version(entries, reviews),
        samples=_samples(answers, paired),
    )


def _per_version(entries: Sequence[PredictionEntry], reviews: Sequence[Review]) -> dict[str, VersionCounts]:
    counts: dict[str, Counter[str]] = {}
    for entry in entries:
        version = counts.setdefault(entry.model_version, Counter())
        if entry.route is Route.SHADOW:
            version["shadow"] += 1
            continue
        version["answered"] += 1
        version["needs_review"] += entry.needs_review
        version["none_answers"] += entry.verdict == NONE_VERDICT
        version["retakes"] += entry.is_retake
    for review in reviews:
        version = counts.setdefault(review.model_version, Counter())
        version["reviewed"] += 1
        version["overridden"] += review.overrode
    return {name: VersionCounts(**counter) for name, counter in sorted(counts.items())}


def _samples(
    answers: Sequence[PredictionEntry], paired: Sequence[tuple[Review, PredictionEntry]]
) -> dict[str, SampleCounts]:
    drawn = Counter(entry.sampled_for for entry in answers if entry.sampled_for is not None)
    reviewed = Counter(entry.sampled_for for _, entry in paired if entry.sampled_for is not None)
    overridden = Counter(entry.sampled_for for review, entry in paired if entry.sampled_for and review.overrode)
    return {
        rule: SampleCounts(
            sampled=drawn[rule],
            reviewed=reviewed[rule],
            overridden=overridden[rule],
            override_rate=_rate(overridden[rule], reviewed[rule]),
        )
        for rule in sorted(drawn.keys() | reviewed.keys())
    }


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
