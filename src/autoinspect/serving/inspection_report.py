"""The printable report of one inspection: what a claims handler or an intake clerk hands over.

One self-contained HTML file (photos embedded as data URLs, styles inline, nothing fetched from elsewhere), so it
can be mailed, archived or printed as it is. It shows the answer as it was given (the stored inspection), the
photos with the damage outlined, and what a person decided on each photo since (reviews are read at report time).
Every text from a client (vehicle id, reference, file names) is escaped by the template engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from autoinspect.drawing import draw_regions, jpeg_data_url
from autoinspect.html_templates import package_template
from autoinspect.serving.schemas import InspectionPhoto, InspectionResult
from autoinspect.store import ImageStore, Review, ReviewLog

REPORT_SIDE = 1280
"""Longest side of a photo in the report: sharp on paper, a few hundred kB each."""
OUTCOME_TEXT = {
    "damaged": "Damage found",
    "clean": "No damage found (None)",
    "incomplete": "Incomplete: no damage on these photos, but they do not cover the vehicle",
}
_TEMPLATE = package_template("autoinspect.serving", "inspection_report.html")


@dataclass(frozen=True)
class _ReportPhoto:
    answer: InspectionPhoto
    image: str | None
    """The photo with its boxes, as a data URL; ``None`` when it was not kept."""
    review: Review | None


def render_report(
    inspection: InspectionResult, *, images: ImageStore | None, reviews: ReviewLog, classes: list[str]
) -> str:
    """The report as one HTML document."""
    photos = [
        _ReportPhoto(photo, _drawn(photo, images, classes), reviews.get(photo.request_id))
        for photo in inspection.photos
    ]
    return _TEMPLATE.render(
        inspection=inspection,
        summary=inspection.summary,
        outcome_text=OUTCOME_TEXT[inspection.summary.outcome],
        photos=photos,
        generated=datetime.now(UTC),
    )


def _drawn(photo: InspectionPhoto, images: ImageStore | None, classes: list[str]) -> str | None:
    content = images.find(photo.image_sha256) if images is not None else None
    if content is None:
        return None
    return jpeg_data_url(draw_regions(content, photo.detections, classes), REPORT_SIDE, quality=85)
