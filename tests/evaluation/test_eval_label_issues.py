"""Label-error ranking with cleanlab on out-of-sample predictions: each planted error is found, as its kind,
and the photos whose labels agree with a good model are not flagged."""

from __future__ import annotations

import os

import numpy as np
import pytest

from autoinspect.domain import Annotation, Box, Detection
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.label_issues import IssueKind, find_label_issues

CLASSES = ["scratch", "dent"]


def _box(x: float, y: float, side: float = 0.2) -> Box:
    return Box(x1=x, y1=y, x2=x + side, y2=y + side)


def _photo(name: str, truth: list[Annotation], found: list[Detection], presence: dict[str, float]) -> EvalImage:
    return EvalImage(image_id=name, width=800, height=600, truth=truth, predictions=found, presence=presence)


def _agreeing(rng: np.random.Generator, n: int) -> list[EvalImage]:
    """Photos whose labels a good model confirms: a confident box on each label box, presence to match."""
    photos = []
    for i in range(n):
        label = CLASSES[i % 2] if i % 3 else None
        x, y = rng.uniform(0.05, 0.7, size=2)
        truth = [Annotation(label=label, box=_box(x, y))] if label else []
        found = (
            [Detection(label=label, box=_box(x + 0.005, y), confidence=float(rng.uniform(0.8, 0.95)))] if label else []
        )
        found.append(Detection(label="scratch", box=_box(0.8, 0.8, 0.1), confidence=float(rng.uniform(0.01, 0.05))))
        presence = {c: float(0.9 if c == label else rng.uniform(0.02, 0.1)) for c in CLASSES}
        photos.append(_photo(f"ok{i}", truth, found, presence))
    return photos


def test_each_planted_error_is_found_as_its_kind_and_agreeing_photos_are_not_flagged() -> None:
    photos = _agreeing(np.random.default_rng(0), 60)
    dent = _box(0.3, 0.3)
    planted = [
        # labelled clean, the model is sure of a dent
        _photo(
            "clean-but-dent", [], [Detection(label="dent", box=dent, confidence=0.93)], {"scratch": 0.05, "dent": 0.95}
        ),
        # a dent labelled, and a second dent the labeller missed
        _photo(
            "missed-dent",
            [Annotation(label="dent", box=dent)],
            [
                Detection(label="dent", box=dent, confidence=0.92),
                Detection(label="dent", box=_box(0.7, 0.7), confidence=0.94),
            ],
            {"scratch": 0.05, "dent": 0.95},
        ),
        # a dent labelled as a scratch
        _photo(
            "dent-called-scratch",
            [Annotation(label="scratch", box=dent)],
            [Detection(label="dent", box=dent, confidence=0.95)],
            {"scratch": 0.05, "dent": 0.95},
        ),
    ]
    report = find_label_issues(photos + planted, CLASSES)
    kinds = {(issue.image_id, issue.kind) for issue in report.issues}
    assert ("clean-but-dent", IssueKind.DAMAGE_LABELLED_CLEAN) in kinds
    assert ("missed-dent", IssueKind.MISSING_BOX) in kinds
    assert ("dent-called-scratch", IssueKind.WRONG_CLASS) in kinds
    assert {"clean-but-dent", "missed-dent", "dent-called-scratch"} <= set(report.flagged)
    assert not {p.image_id for p in photos} & set(report.flagged)
    missed = next(i for i in report.issues if i.image_id == "missed-dent" and i.kind is IssueKind.MISSING_BOX)
    assert missed.box is not None and abs(missed.box.x1 - 0.7) < 1e-6 and missed.label == "dent"
    # the worst photos by cleanlab's label quality come first, and every photo has a quality in [0, 1]
    assert report.quality[report.flagged[0]] == min(report.quality[key] for key in report.flagged)
    assert all(0.0 <= q <= 1.0 for q in report.quality.values()) and len(report.quality) == 63
    assert report.counts()[IssueKind.WRONG_CLASS.value] >= 1


def test_a_model_that_is_never_right_flags_no_box() -> None:
    """Box evidence is trusted only from the score where, out of fold, most boxes match a label: a model whose
    boxes never do cannot accuse a label."""
    rng = np.random.default_rng(1)
    photos = []
    for i in range(30):
        truth = [Annotation(label="dent", box=_box(0.1, 0.1))]
        found = [Detection(label="dent", box=_box(0.7, 0.7), confidence=float(rng.uniform(0.5, 0.99)))]
        photos.append(_photo(f"p{i}", truth, found, {"scratch": 0.1, "dent": 0.9}))
    report = find_label_issues(photos, CLASSES)
    assert report.confident_scores["dent"] == 1.0
    assert not [issue for issue in report.issues if issue.box is not None and issue.kind is IssueKind.MISSING_BOX]


def test_ranking_forks_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """cleanlab's filter would fork a one-process pool; forking a process that runs threads can hang the child
    forever (a CI run hung so), so the ranking runs that pool on threads and never forks."""

    def no_fork() -> int:
        raise AssertionError("the ranking forked a process")

    monkeypatch.setattr(os, "fork", no_fork)
    photos = _agreeing(np.random.default_rng(2), 12)
    report = find_label_issues(photos, CLASSES)
    assert report.photos == len(photos)
