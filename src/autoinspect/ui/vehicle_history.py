"""A vehicle's inspections compared: what damage the latest one found that the one before did not.

A rental return or a fleet check asks "is there anything new since the car left?": the answer compares damage by
view (a dent on the left door now, none on the left before), since photos of two inspections never match pixel
for pixel. Photos without a view are compared as one "unknown view" group.
"""

from __future__ import annotations

from collections.abc import Iterable

from autoinspect.ui.client import InspectionPhotoAnswer, VehicleInspection

UNKNOWN_VIEW = "unknown view"


def damage_by_view(photos: Iterable[InspectionPhotoAnswer]) -> dict[str, set[str]]:
    """Per view, the damage classes its photos show (views with clean photos map to an empty set)."""
    found: dict[str, set[str]] = {}
    for photo in photos:
        classes = found.setdefault(photo.view or UNKNOWN_VIEW, set())
        if photo.damaged:
            classes.update(photo.verdict)
    return found


def new_damage(previous: VehicleInspection, current: VehicleInspection) -> list[str]:
    """``"dent on left"`` for each class the current inspection shows on a view where the previous one showed
    none of it; a view the previous inspection did not photograph cannot be compared and is said so."""
    before, now = damage_by_view(previous.photos), damage_by_view(current.photos)
    changes = []
    for view, classes in sorted(now.items()):
        if view not in before:
            if classes:
                changes.append(f"{', '.join(sorted(classes))} on {view} (not photographed before)")
            continue
        changes += [f"{name} on {view}" for name in sorted(classes - before[view])]
    return changes


def side_by_side(inspections: list[VehicleInspection]) -> list[dict[str, str]]:
    """One row per view, one column per inspection (oldest first): the damage it showed there, "-" for clean,
    blank where that inspection had no photo of the view."""
    columns = [(f"{i.created_at:%Y-%m-%d %H:%M}", damage_by_view(i.photos)) for i in inspections]
    views = sorted({view for _, found in columns for view in found})
    return [
        {
            "view": view,
            **{name: ", ".join(sorted(found[view])) or "-" if view in found else "" for name, found in columns},
        }
        for view in views
    ]
