"""From photos to a vehicle: damage sizes, and the one answer for all photos of an inspection.

The costly wrong answer is a vehicle called clean that is not (the next customer is charged for the dent), so a
vehicle is only answered "None" when every usable photo is clean *and* the usable photos cover it; clean photos of
one side leave the inspection ``incomplete``, naming the views still missing. A photo the quality gate refused (a
retake) is not usable: it covers no view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from autoinspect.config import InspectionSettings
from autoinspect.domain import NONE_VERDICT, Detection, SizeClass, VehicleView
from autoinspect.serving.schemas import InspectionPhoto, LargestDamage, SizedDetection, VehicleSummary

Cutoffs = Mapping[VehicleView, tuple[float, float]]


def size_class(area: float, view: VehicleView | None, cutoffs: Cutoffs) -> SizeClass | None:
    """``area`` (share of the photo) as a size on a photo of ``view``; ``None`` for views without cut-offs.

    Example:
        >>> cuts = {VehicleView.LEFT: (0.005, 0.03)}
        >>> [size_class(a, VehicleView.LEFT, cuts) for a in (0.001, 0.01, 0.2)] == ["small", "medium", "large"]
        True
        >>> size_class(0.2, None, cuts) is None
        True
    """
    if view is None or view not in cutoffs:
        return None
    small, medium = cutoffs[view]
    if area < small:
        return SizeClass.SMALL
    return SizeClass.MEDIUM if area < medium else SizeClass.LARGE


def sized(detections: Sequence[Detection], view: VehicleView | None, cutoffs: Cutoffs) -> list[SizedDetection]:
    """Each detection with its area and, where the view allows, its size class."""
    return [
        SizedDetection(
            **detection.model_dump(), area=detection.box.area, size=size_class(detection.box.area, view, cutoffs)
        )
        for detection in detections
    ]


def summarise(photos: Sequence[InspectionPhoto], settings: InspectionSettings) -> VehicleSummary:
    """The vehicle's answer from its photos' answers (see the module's docstring for the "None" rule)."""
    usable = [photo for photo in photos if not photo.retake]
    retakes = [photo for photo in photos if photo.retake]
    damages = Counter(detection.label for photo in usable for detection in photo.detections)
    found = sorted({name for photo in usable if photo.damaged for name in photo.verdict})
    shown = {photo.view for photo in usable if photo.view is not None}
    covered = [view for view in VehicleView if view in shown]
    if shown:
        missing = [view for view in settings.required_views if view not in shown]
    else:
        enough = len(usable) >= settings.min_photos_without_views
        missing = [] if enough else list(settings.required_views)
    largest = _largest(photos)
    if found:
        outcome, verdict = "damaged", found
        where = sum(photo.damaged for photo in usable)
        counts = ", ".join(f"{count} {label}" for label, count in sorted(damages.items()))
        detail = f"Damage on {where} of {len(usable)} usable photo(s): {counts or ', '.join(found)}."
        if largest is not None:
            size = f" ({largest.size})" if largest.size else ""
            detail += f" Largest: {largest.label}{size} on {photos[largest.photo].name}."
    elif missing:
        outcome, verdict = "incomplete", []
        detail = (
            f"No damage on {len(usable)} usable photo(s), but they do not cover the vehicle: missing "
            f"{', '.join(missing)}. Add photos of those views before answering None."
        )
    else:
        outcome, verdict = "clean", [NONE_VERDICT]
        views = f" covering {', '.join(covered)}" if covered else ""
        detail = f"No damage found on {len(usable)} usable photo(s){views}."
    if retakes:
        named = [f"{photo.name} ({', '.join(r.split(':')[0] for r in photo.retake_reasons)})" for photo in retakes]
        detail += f" Retake {'; '.join(named)}."
    return VehicleSummary(
        outcome=outcome,
        verdict=verdict,
        damaged=bool(found),
        damages=dict(sorted(damages.items())),
        largest=largest,
        needs_review=any(photo.needs_review for photo in photos),
        views_covered=covered,
        views_missing=missing,
        retakes=[photo.index for photo in retakes],
        detail=detail,
    )


def _largest(photos: Sequence[InspectionPhoto]) -> LargestDamage | None:
    candidates = [(detection, photo.index) for photo in photos for detection in photo.detections]
    if not candidates:
        return None
    detection, index = max(candidates, key=lambda pair: pair[0].area)
    return LargestDamage(
        photo=index, label=detection.label, confidence=detection.confidence, area=detection.area, size=detection.size
    )
