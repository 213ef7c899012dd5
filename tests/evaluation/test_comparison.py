"""Two models compared photo by photo: kinds, box matching and ranking, checked by hand."""

from __future__ import annotations

from autoinspect.domain import Box, Detection, Verdict
from autoinspect.evaluation.comparison import Answer, DifferenceKind, compare_models, compare_photo

DENT = Detection(label="dent", box=Box(x1=0.1, y1=0.1, x2=0.3, y2=0.3), confidence=0.8)
DENT_MOVED = Detection(label="dent", box=Box(x1=0.12, y1=0.1, x2=0.32, y2=0.3), confidence=0.7)  # IoU 0.82
DENT_ELSEWHERE = Detection(label="dent", box=Box(x1=0.6, y1=0.6, x2=0.8, y2=0.8), confidence=0.6)
SCRATCH_SAME_PLACE = Detection(label="scratch", box=DENT.box, confidence=0.9)
NONE = Verdict()
DENTED = Verdict.from_labels(["dent"])


def answer(*boxes: Detection) -> Answer:
    return Answer(Verdict.from_labels(box.label for box in boxes), list(boxes))


def test_a_box_moved_a_little_is_the_same_box_and_a_class_change_is_not() -> None:
    assert compare_photo("p", DENTED, answer(DENT), answer(DENT_MOVED)) is None
    changed = compare_photo("p", DENTED, answer(DENT), answer(DENT_MOVED, DENT_ELSEWHERE))
    assert changed is not None and changed.kind is DifferenceKind.BOXES_CHANGED
    assert changed.gained == [DENT_ELSEWHERE] and changed.lost == []
    relabelled = compare_photo("p", DENTED, answer(DENT), answer(SCRATCH_SAME_PLACE))
    assert relabelled is not None and relabelled.kind is DifferenceKind.REGRESSED
    assert relabelled.gained == [SCRATCH_SAME_PLACE] and relabelled.lost == [DENT]
    assert relabelled.truth == ["dent"] and relabelled.baseline == ["dent"] and relabelled.candidate == ["scratch"]


def test_kinds_follow_the_truth() -> None:
    assert compare_photo("p", NONE, answer(DENT), answer()).kind is DifferenceKind.FIXED  # type: ignore[union-attr]
    assert compare_photo("p", NONE, answer(), answer(DENT)).kind is DifferenceKind.REGRESSED  # type: ignore[union-attr]
    both_wrong = compare_photo("p", Verdict.from_labels(["scratch"]), answer(), answer(DENT))
    assert both_wrong is not None and both_wrong.kind is DifferenceKind.VERDICT_CHANGED
    unlabelled = compare_photo("p", None, answer(), answer(DENT))
    assert unlabelled is not None and unlabelled.kind is DifferenceKind.VERDICT_CHANGED and unlabelled.truth is None


def test_differences_are_ranked_costliest_first_and_counted() -> None:
    photos = [
        ("same", DENTED, answer(DENT), answer(DENT)),
        ("boxes", DENTED, answer(DENT), answer(DENT, DENT_ELSEWHERE)),
        ("fixed", NONE, answer(DENT), answer()),
        ("regressed-1", NONE, answer(), answer(DENT)),
        ("regressed-2", NONE, answer(), answer(DENT, DENT_ELSEWHERE)),  # more boxes changed: ranked first
    ]
    comparison = compare_models("1", "2", photos)
    assert [d.image_id for d in comparison.differences] == ["regressed-2", "regressed-1", "fixed", "boxes"]
    assert comparison.photos == 5 and comparison.identical == 1
    assert comparison.counts == {
        DifferenceKind.REGRESSED: 2,
        DifferenceKind.FIXED: 1,
        DifferenceKind.VERDICT_CHANGED: 0,
        DifferenceKind.BOXES_CHANGED: 1,
    }
