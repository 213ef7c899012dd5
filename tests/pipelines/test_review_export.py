"""Reviews exported as annotations: a YOLO batch with provenance, exported once, nothing dropped silently, and
a folder that the dataset pipeline validates and versions as it is."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Annotation, Box, Detection
from autoinspect.pipelines.annotations import LEDGER, PROVENANCE, export_reviews
from autoinspect.pipelines.dataset import version_dataset
from autoinspect.store import ImageStore, PredictionEntry, PredictionLog, ReviewLog, Route, create_schema, make_engine

SCRATCH = Detection(label="scratch", box=Box(x1=0.1, y1=0.2, x2=0.3, y2=0.6), confidence=0.4)
DENT = Annotation(label="dent", box=Box(x1=0.5, y1=0.5, x2=0.9, y2=0.7))


def _photo(seed: int, fmt: str = "JPEG") -> bytes:
    """A noisy 160x120 photo: passes every image check of dataset validation."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


class Served:
    """The store of a service that answered some photos, for reviews to be made on."""

    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.store_url)
        create_schema(self.engine)
        self.log, self.reviews = PredictionLog(self.engine), ReviewLog(self.engine)
        self.images = ImageStore(settings.images_dir)

    def answer(self, request_id: str, photo: bytes | None) -> PredictionEntry:
        entry = PredictionEntry(
            request_id=request_id,
            model_version="3",
            route=Route.CHAMPION,
            verdict=["scratch"],
            detections=[SCRATCH],
            needs_review=True,
            max_score=0.4,
            latency_ms=10.0,
            image_sha256=self.images.put(photo) if photo is not None else None,
        )
        self.log.write([entry])
        return entry

    def review(self, request_id: str, photo: bytes | None, labels: list[Annotation] | None) -> None:
        entry = self.answer(request_id, photo)
        self.reviews.submit(request_id, reviewer="ana", labels=labels, prediction=entry)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    store = Served(settings)
    yield store
    store.engine.dispose()


def _rows(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def test_reviews_become_a_yolo_batch_with_provenance_that_versions(settings: Settings, served: Served) -> None:
    jpeg, png, clean = _photo(1), _photo(2, "PNG"), _photo(3)
    served.review("accepted", jpeg, None)
    served.review("corrected", png, [DENT])
    served.review("no-damage", clean, [])
    served.review("not-kept", None, [DENT])
    missing = _photo(4)
    served.review("missing", missing, None)
    photo = served.images.local_file(served.images.put(missing))
    assert photo is not None
    photo.unlink()

    result = export_reviews(settings)

    batch = result.batch
    assert batch is not None and batch.parent == settings.annotations_inbox and batch.name.startswith("reviews-")
    assert yaml.safe_load((batch / "data.yaml").read_text())["names"] == {0: "scratch", 1: "dent"}
    sha = {
        name: served.images.put(photo) for name, photo in (("accepted", jpeg), ("corrected", png), ("no-damage", clean))
    }
    images = batch / "images" / "train"
    assert sorted(p.name for p in images.iterdir()) == sorted(
        [f"{sha['accepted']}.jpg", f"{sha['corrected']}.png", f"{sha['no-damage']}.jpg"]
    )
    assert (images / f"{sha['corrected']}.png").read_bytes() == png  # the served bytes, in their real format
    labels = batch / "labels" / "train"
    np.testing.assert_allclose(_rows(labels / f"{sha['accepted']}.txt"), [[0, 0.2, 0.4, 0.2, 0.4]], atol=1e-6)
    np.testing.assert_allclose(_rows(labels / f"{sha['corrected']}.txt"), [[1, 0.7, 0.6, 0.4, 0.2]], atol=1e-6)
    assert (labels / f"{sha['no-damage']}.txt").read_text() == ""  # present and empty: "None", not "unlabelled"

    provenance = [json.loads(line) for line in (batch / PROVENANCE).read_text().splitlines()]
    assert [p["request_id"] for p in provenance] == ["accepted", "corrected", "no-damage"]
    assert provenance[1] | {"reviewed_at": None} == {
        "request_id": "corrected",
        "image_sha256": sha["corrected"],
        "reviewer": "ana",
        "decision": "corrected",
        "model_version": "3",
        "reviewed_at": None,
    }
    assert datetime.fromisoformat(provenance[0]["reviewed_at"]) <= datetime.now(UTC)
    skipped = {skip.request_id: skip.reason for skip in result.skipped}
    assert skipped.keys() == {"not-kept", "missing"}
    assert "not kept" in skipped["not-kept"] and "missing from the image store" in skipped["missing"]

    manifest, outcome = version_dataset(DatasetLayout(batch), "reviewed", settings)
    assert outcome.passed and manifest.split_counts() == {"train": 3} and not manifest.excluded
    assert manifest.box_counts() == {"train": {"scratch": 1, "dent": 1}}


def test_a_second_export_writes_only_new_reviews_and_reports_skips_again(settings: Settings, served: Served) -> None:
    served.review("first", _photo(1), None)
    served.review("not-kept", None, [])
    first = export_reviews(settings)
    assert [p.request_id for p in first.exported] == ["first"] and first.batch is not None

    again = export_reviews(settings)
    assert again.batch is None and again.exported == [] and again.already_exported == 1
    assert [skip.request_id for skip in again.skipped] == ["not-kept"]  # still reported, never dropped

    served.review("second", _photo(2), [DENT])
    third = export_reviews(settings)
    assert [p.request_id for p in third.exported] == ["second"] and third.batch not in (None, first.batch)
    ledger = [json.loads(line)["request_id"] for line in (settings.annotations_inbox / LEDGER).read_text().splitlines()]
    assert ledger == ["first", "second"]


def test_a_lost_ledger_line_does_not_export_a_batch_still_in_the_inbox_twice(
    settings: Settings, served: Served
) -> None:
    served.review("first", _photo(1), None)
    assert export_reviews(settings).batch is not None
    (settings.annotations_inbox / LEDGER).unlink()  # a crash between renaming the batch and recording it
    assert export_reviews(settings).exported == []


def test_the_same_photo_under_two_requests_is_written_once(settings: Settings, served: Served) -> None:
    photo = _photo(1)
    served.review("sent", photo, [DENT])
    served.review("resent", photo, [DENT])  # the intake app sent it again under a new id: same truth
    served.review("disputed", photo, [])  # a third reviewer saw no damage: not silently overruled
    result = export_reviews(settings)
    assert [p.request_id for p in result.exported] == ["sent"] and result.duplicates == ["resent"]
    assert [(s.request_id, "other labels" in s.reason) for s in result.skipped] == [("disputed", True)]
    assert result.batch is not None and len(list((result.batch / "images" / "train").iterdir())) == 1
    later = export_reviews(settings)
    assert later.duplicates == [] and [s.request_id for s in later.skipped] == ["disputed"]


def test_since_limits_the_reviews_considered(settings: Settings, served: Served) -> None:
    served.review("old", _photo(1), None)
    assert export_reviews(settings, since=datetime.now(UTC) + timedelta(minutes=1)).exported == []
    assert [p.request_id for p in export_reviews(settings).exported] == ["old"]
    with pytest.raises(ValueError, match="naive"):
        export_reviews(settings, since=datetime(2025, 1, 1))
