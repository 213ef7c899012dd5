"""Reviews, on SQLite and on PostgreSQL: accept and correct, one truth per request, the queue, time windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from autoinspect.domain import Annotation, Box
from autoinspect.store import PredictionEntry, PredictionLog, ReviewConflictError, ReviewDecision, ReviewLog, Route
from autoinspect.store.reviews import InvalidLabelsError, UnknownRequestError, checked_labels

EntryFactory = Callable[..., PredictionEntry]

DENT = Annotation(label="dent", box=Box(x1=0.5, y1=0.5, x2=0.7, y2=0.6))


@pytest.fixture
def reviews(engine: Engine) -> ReviewLog:
    return ReviewLog(engine)


def test_accept_copies_the_detections_as_the_truth(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(1, needs_review=True)
    review = reviews.submit(entry.request_id, reviewer="ana", labels=None, prediction=entry)
    assert review.decision is ReviewDecision.ACCEPTED and not review.overrode
    assert review.labels == [Annotation(label="scratch", box=Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4))]
    assert (review.model_version, review.image_sha256, review.reviewer) == ("7", "ab" * 32, "ana")
    assert reviews.get(entry.request_id) == review


def test_correct_stores_the_given_boxes(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(1, needs_review=True)
    review = reviews.submit(entry.request_id, reviewer="ana", labels=[DENT], prediction=entry)
    assert review.decision is ReviewDecision.CORRECTED and review.overrode
    stored = reviews.get(entry.request_id)
    assert stored is not None and stored.labels == [DENT] and stored.decision is ReviewDecision.CORRECTED
    assert stored.reviewed_at == review.reviewed_at and stored.reviewed_at.utcoffset() == timedelta(0)


def test_an_empty_correction_means_no_damage(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(1, needs_review=True)  # the model found a scratch; the reviewer says there is none
    reviews.submit(entry.request_id, reviewer="ana", labels=[], prediction=entry)
    stored = reviews.get(entry.request_id)
    assert stored is not None and stored.labels == [] and stored.decision is ReviewDecision.CORRECTED


def test_accepting_a_none_answer_stores_no_damage(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(2, needs_review=True)  # even indexes answered "None"
    review = reviews.submit(entry.request_id, reviewer="ana", labels=None, prediction=entry)
    assert review.labels == [] and review.decision is ReviewDecision.ACCEPTED


def test_an_identical_resubmit_returns_the_stored_review(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(1, needs_review=True)
    first = reviews.submit(entry.request_id, reviewer="ana", labels=[DENT], prediction=entry)
    again = reviews.submit(entry.request_id, reviewer="bob", labels=[DENT], prediction=entry)
    assert again == first and again.reviewer == "ana"  # the first truth and who gave it stay
    accepted = make_entry(3, needs_review=True)
    assert reviews.submit(accepted.request_id, reviewer="ana", labels=None, prediction=accepted) == reviews.submit(
        accepted.request_id, reviewer="ana", labels=None, prediction=accepted
    )
    assert reviews.count() == 2


def test_a_different_resubmit_is_a_conflict_and_changes_nothing(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    entry = make_entry(1, needs_review=True)
    first = reviews.submit(entry.request_id, reviewer="ana", labels=None, prediction=entry)
    for labels in ([DENT], [], [DENT, DENT]):
        with pytest.raises(ReviewConflictError, match=entry.request_id):
            reviews.submit(entry.request_id, reviewer="bob", labels=labels, prediction=entry)
    assert reviews.get(entry.request_id) == first and reviews.count() == 1


def test_get_of_an_unreviewed_request_is_none(reviews: ReviewLog) -> None:
    assert reviews.get("nobody-looked") is None


def test_pending_is_flagged_unreviewed_served_answers_newest_first(
    engine: Engine, reviews: ReviewLog, log: PredictionLog, make_entry: EntryFactory
) -> None:
    entries = [make_entry(i, needs_review=i != 4) for i in range(6)]  # 4 is not flagged
    shadow = make_entry(6, needs_review=True).model_copy(update={"request_id": "req-6:shadow", "route": Route.SHADOW})
    log.write([*entries, shadow])
    reviews.submit(entries[3].request_id, reviewer="ana", labels=None, prediction=entries[3])
    reviews.submit(entries[5].request_id, reviewer="ana", labels=[], prediction=entries[5])
    assert [e.request_id for e in reviews.pending(limit=10)] == ["req-000002", "req-000001", "req-000000"]
    assert [e.request_id for e in reviews.pending(limit=2)] == ["req-000002", "req-000001"]
    assert reviews.pending(limit=2)[0] == entries[2]


def test_between_is_half_open_and_oldest_first(reviews: ReviewLog, make_entry: EntryFactory) -> None:
    before = datetime.now(UTC)
    made = [reviews.submit(f"r{i}", reviewer="ana", labels=None, prediction=make_entry(i)) for i in range(3)]
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert [r.request_id for r in reviews.between(before, after)] == ["r0", "r1", "r2"]
    assert [r.request_id for r in reviews.between(made[1].reviewed_at, made[2].reviewed_at)] == ["r1"]
    assert reviews.between(after, after + timedelta(hours=1)) == []
    assert reviews.between(before, after)[0] == made[0]


def test_a_naive_window_is_refused(reviews: ReviewLog) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        reviews.between(datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_target_is_the_served_answer_never_a_shadow(
    reviews: ReviewLog, log: PredictionLog, make_entry: EntryFactory
) -> None:
    served = make_entry(1, needs_review=True)
    shadow = make_entry(2, needs_review=True).model_copy(update={"request_id": "req-2:shadow", "route": Route.SHADOW})
    log.write([served, shadow])
    assert reviews.target(served.request_id) == served
    for unknown in ("req-2:shadow", "never-answered"):
        with pytest.raises(UnknownRequestError, match=unknown):
            reviews.target(unknown)


def test_checked_labels_names_every_problem_by_position() -> None:
    classes = ["scratch", "dent"]
    assert checked_labels([("dent", 0.5, 0.5, 0.7, 0.6)], classes) == [DENT]
    assert checked_labels([], classes) == []
    with pytest.raises(InvalidLabelsError) as error:
        checked_labels(
            [
                ("dent", 0.1, 0.1, 0.2, 0.2),
                ("rust", 0.1, 0.1, 0.2, 0.2),
                ("dent", -0.1, 0.1, 0.2, 0.2),
                ("dent", 0.3, 0.1, 0.2, 0.2),
                ("dent", 0.1, 0.1, float("nan"), 0.2),
            ],
            classes,
        )
    message = str(error.value)
    assert "labels[0]" not in message and "labels[1]: class 'rust'" in message
    assert "labels[2]: box (-0.1" in message and "labels[3]: box (0.3, 0.1, 0.2, 0.2) has no area" in message
    assert "labels[4]: box (0.1, 0.1, nan, 0.2) is not inside [0, 1]" in message
