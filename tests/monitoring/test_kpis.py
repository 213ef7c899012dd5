"""KPIs of a window: every figure checked against a hand count on a small log, and ``None`` where undefined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoinspect.domain import Annotation, Box, Detection
from autoinspect.monitoring.kpis import VersionCounts, compute_kpis
from autoinspect.store import PredictionEntry, Review, ReviewDecision, Route

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BOX = Box(x1=0.1, y1=0.1, x2=0.4, y2=0.3)


def entry(
    request_id: str,
    verdict: str | list[str],
    *,
    version: str = "1",
    route: Route = Route.CHAMPION,
    needs_review: bool = False,
    latency_ms: float = 10.0,
) -> PredictionEntry:
    labels = [] if verdict == "None" else list(verdict)
    return PredictionEntry(
        request_id=request_id,
        created_at=T0,
        model_version=version,
        route=route,
        verdict=verdict,
        detections=[Detection(label=label, box=BOX, confidence=0.9) for label in labels],
        needs_review=needs_review,
        max_score=0.9 if labels else 0.1,
        latency_ms=latency_ms,
    )


def review(request_id: str, truth: list[str], decision: ReviewDecision, version: str = "1") -> Review:
    return Review(
        request_id=request_id,
        reviewed_at=T0,
        reviewer="ines",
        decision=decision,
        labels=[Annotation(label=label, box=BOX) for label in truth],
        model_version=version,
        image_sha256=None,
    )


ENTRIES = [
    entry("r1", "None", latency_ms=10.0),
    entry("r2", ["dent"], needs_review=True, latency_ms=20.0),
    entry("r3", ["scratch"], latency_ms=30.0),
    entry("r4", "None", version="2", route=Route.CHALLENGER, needs_review=True, latency_ms=40.0),
    entry("s1", ["dent"], version="2", route=Route.SHADOW, needs_review=True, latency_ms=1000.0),
]
REVIEWS = [
    review("r1", [], ReviewDecision.ACCEPTED),  # clean, answered None: no false alarm
    review("r2", ["dent"], ReviewDecision.ACCEPTED),  # damaged, caught
    review("r3", [], ReviewDecision.CORRECTED),  # clean, answered scratch: a false alarm
    review("r4", ["scratch"], ReviewDecision.CORRECTED, version="2"),  # damaged, answered None: missed
    review("old", ["dent"], ReviewDecision.CORRECTED),  # its answer is outside the window
]


def test_kpis_match_a_hand_count() -> None:
    kpis = compute_kpis(ENTRIES, REVIEWS, window=timedelta(hours=2))

    assert (kpis.answered, kpis.shadow, kpis.window_hours) == (4, 1, 2.0)
    assert kpis.automation_rate == pytest.approx(2 / 4)  # r1, r3 decided without a human
    assert kpis.review_rate == pytest.approx(2 / 4)
    assert kpis.none_rate == pytest.approx(2 / 4)  # r1, r4; the shadow's answer does not count
    assert kpis.reviewed == 5
    assert kpis.override_rate == pytest.approx(3 / 5)  # r3, r4, old
    assert kpis.damaged_caught == pytest.approx(1 / 2)  # r2 caught, r4 missed; "old" has no answer here
    assert kpis.false_alarm_rate == pytest.approx(1 / 2)  # r3 of r1, r3
    assert kpis.latency_p50_ms == pytest.approx(25.0)  # 10, 20, 30, 40 (the shadow's 1000 ms left out)
    assert kpis.latency_p95_ms == pytest.approx(30.0 + 0.85 * 10.0)  # linear: position 0.95 * 3 = 2.85
    assert kpis.throughput_per_hour == pytest.approx(2.0)
    assert kpis.per_version == {
        "1": VersionCounts(answered=3, needs_review=1, none_answers=1, reviewed=4, overridden=2),
        "2": VersionCounts(answered=1, shadow=1, needs_review=1, none_answers=1, reviewed=1, overridden=1),
    }


def test_empty_window_has_no_rates() -> None:
    kpis = compute_kpis([], [], window=timedelta(hours=24))

    assert (kpis.answered, kpis.shadow, kpis.reviewed, kpis.throughput_per_hour) == (0, 0, 0, 0.0)
    undefined = (
        kpis.automation_rate,
        kpis.review_rate,
        kpis.override_rate,
        kpis.damaged_caught,
        kpis.false_alarm_rate,
        kpis.none_rate,
        kpis.latency_p50_ms,
        kpis.latency_p95_ms,
    )
    assert undefined == (None,) * len(undefined)
    assert kpis.per_version == {}


def test_rates_without_reviews_or_without_clean_cars_are_none() -> None:
    no_reviews = compute_kpis(ENTRIES, [], window=timedelta(hours=1))
    assert (no_reviews.reviewed, no_reviews.override_rate) == (0, None)
    assert (no_reviews.damaged_caught, no_reviews.false_alarm_rate) == (None, None)
    assert no_reviews.automation_rate == pytest.approx(0.5)

    only_damaged = compute_kpis(ENTRIES, [REVIEWS[1]], window=timedelta(hours=1))
    assert (only_damaged.damaged_caught, only_damaged.false_alarm_rate, only_damaged.override_rate) == (1.0, None, 0.0)


def test_only_shadows_answer_nothing() -> None:
    kpis = compute_kpis([ENTRIES[-1]], [], window=timedelta(hours=1))

    assert (kpis.answered, kpis.shadow, kpis.automation_rate, kpis.latency_p95_ms) == (0, 1, None, None)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        compute_kpis(ENTRIES, REVIEWS, window=timedelta(0))


def test_sampled_answers_are_counted_per_rule_with_what_their_reviews_found() -> None:
    entries = [
        entry("a", "None").model_copy(update={"sampled_for": "random"}),
        entry("b", ["scratch"]).model_copy(update={"sampled_for": "random"}),
        entry("c", ["dent"]).model_copy(update={"sampled_for": "dents"}),
        entry("d", ["dent"], needs_review=True),  # the review band's, not a sample
    ]
    reviews = [
        review("a", [], ReviewDecision.ACCEPTED),
        review("b", [], ReviewDecision.CORRECTED),  # a confident scratch that was not there
        review("d", [], ReviewDecision.CORRECTED),
    ]
    kpis = compute_kpis(entries, reviews, window=timedelta(hours=1))
    assert set(kpis.samples) == {"random", "dents"}
    random_rule, dents = kpis.samples["random"], kpis.samples["dents"]
    assert (random_rule.sampled, random_rule.reviewed, random_rule.overridden) == (2, 2, 1)
    assert random_rule.override_rate == 0.5
    assert (dents.sampled, dents.reviewed, dents.override_rate) == (1, 0, None)
    assert kpis.review_rate == 0.25  # sampled answers were decided by the model: only the band counts
