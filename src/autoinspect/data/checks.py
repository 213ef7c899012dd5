"""The catalogue of dataset checks: name, severity and what each one means, apart from the code that runs them.

Errors fail validation and send the file to quarantine; warnings are reported and kept. The report shows the
description beside each finding so that a data team can act on it without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autoinspect.data.labels import LabelProblem


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Check(StrEnum):
    DECODE = "decode"
    FORMAT = "format"
    EXTENSION = "extension"
    EXIF_ORIENTATION = "exif_orientation"
    MIN_SIZE = "min_size"
    NEAR_CONSTANT = "near_constant"
    LABEL_SYNTAX = LabelProblem.SYNTAX.value
    CLASS_ID = LabelProblem.CLASS_ID.value
    COORDINATES = LabelProblem.COORDINATES.value
    DEGENERATE_BOX = LabelProblem.DEGENERATE.value
    DUPLICATE_BOX = "duplicate_box"
    MISSING_LABEL = "missing_label"
    ORPHAN_LABEL = "orphan_label"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    SPLIT_LEAK = "split_leak"
    NO_SPLIT = "no_split"


@dataclass(frozen=True)
class CheckSpec:
    severity: Severity
    description: str


CHECKS: dict[Check, CheckSpec] = {
    Check.DECODE: CheckSpec(Severity.ERROR, "The file does not decode as an image (corrupt, truncated, too large)."),
    Check.FORMAT: CheckSpec(Severity.ERROR, "The encoding is not one of the allowed formats."),
    Check.EXTENSION: CheckSpec(Severity.WARNING, "The file extension does not match the encoding inside."),
    Check.EXIF_ORIENTATION: CheckSpec(
        Severity.WARNING,
        "The photo carries an EXIF rotation; it is applied on load, so labels must refer to the upright view.",
    ),
    Check.MIN_SIZE: CheckSpec(Severity.ERROR, "The shorter side is too small to show a scratch."),
    Check.NEAR_CONSTANT: CheckSpec(Severity.ERROR, "Almost no pixel variation: blank, black or covered frame."),
    Check.LABEL_SYNTAX: CheckSpec(Severity.ERROR, "A label row is not a YOLO box or polygon."),
    Check.CLASS_ID: CheckSpec(Severity.ERROR, "A label row names a class id the dataset does not have."),
    Check.COORDINATES: CheckSpec(Severity.ERROR, "A label coordinate lies outside [0, 1]."),
    Check.DEGENERATE_BOX: CheckSpec(Severity.ERROR, "A box has no area or is thinner than the minimum in pixels."),
    Check.DUPLICATE_BOX: CheckSpec(Severity.WARNING, "The same box of the same class appears twice in a file."),
    Check.MISSING_LABEL: CheckSpec(Severity.WARNING, "No label file: the image is read as an undamaged car."),
    Check.ORPHAN_LABEL: CheckSpec(Severity.WARNING, "A label file has no image."),
    Check.DUPLICATE: CheckSpec(Severity.WARNING, "Byte-identical copy of another image in the same split."),
    Check.NEAR_DUPLICATE: CheckSpec(
        Severity.WARNING,
        "Perceptual near-copy (flips and 90° rotations included) of an image in the same split.",
    ),
    Check.SPLIT_LEAK: CheckSpec(
        Severity.ERROR,
        "Copy or near-copy of an image in another split: test figures would be inflated. The copy in the most "
        "protected split (test, then val) is kept; the others are quarantined.",
    ),
    Check.NO_SPLIT: CheckSpec(Severity.WARNING, "The image has no split yet; one is assigned when versioning."),
}
