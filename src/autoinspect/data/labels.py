"""YOLO label files: parsing with line-level problems reported, and writing.

A row is either a box (``class cx cy w h``) or a polygon (``class x1 y1 x2 y2 ...``) as annotation tools export
them; both become a :class:`~autoinspect.domain.Box` (a polygon by its bounding box, which is what a detector
learns). A bad row is reported with its line number and skipped, never silently "fixed".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from autoinspect.domain import Box


class LabelProblem(StrEnum):
    """What can be wrong with one label row; the names appear in validation reports."""

    SYNTAX = "label_syntax"
    CLASS_ID = "class_id"
    COORDINATES = "coordinates"
    DEGENERATE = "degenerate_box"


@dataclass(frozen=True)
class LabelRowIssue:
    line: int
    problem: LabelProblem
    message: str


@dataclass(frozen=True)
class LabelRow:
    class_id: int
    box: Box
    polygon: bool
    """True when the row was a polygon, reduced to its bounding box."""


@dataclass
class ParsedLabels:
    rows: list[LabelRow] = field(default_factory=list)
    issues: list[LabelRowIssue] = field(default_factory=list)


def _clip(value: float, tolerance: float) -> float | None:
    """Clip a coordinate within the tolerance of [0, 1]; ``None`` when it is further out."""
    if -tolerance <= value <= 1 + tolerance:
        return min(1.0, max(0.0, value))
    return None


def parse_row(tokens: list[str], line: int, n_classes: int, tolerance: float) -> LabelRow | LabelRowIssue:
    """Parse one whitespace-split label row."""
    if len(tokens) < 5 or (len(tokens) > 5 and len(tokens) % 2 == 0):
        return LabelRowIssue(
            line,
            LabelProblem.SYNTAX,
            f"expected 5 values (box) or an odd count >= 7 (polygon), got {len(tokens)}",
        )
    try:
        class_value = float(tokens[0])
        coords = [float(t) for t in tokens[1:]]
    except ValueError:
        return LabelRowIssue(line, LabelProblem.SYNTAX, f"non-numeric value in {' '.join(tokens)[:60]!r}")
    if not class_value.is_integer() or not 0 <= class_value < n_classes:
        return LabelRowIssue(line, LabelProblem.CLASS_ID, f"class id {tokens[0]} is not in 0..{n_classes - 1}")
    polygon = len(coords) > 4
    if polygon:
        points = coords
    else:
        cx, cy, w, h = coords
        if w <= 0 or h <= 0:
            return LabelRowIssue(line, LabelProblem.DEGENERATE, f"box has non-positive size w={w} h={h}")
        points = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    clipped = [_clip(v, tolerance) for v in points]
    if any(v is None for v in clipped):
        bad = next(v for v, c in zip(points, clipped, strict=True) if c is None)
        row = "polygon point" if polygon else f"box {' '.join(tokens[1:])} reaches"
        return LabelRowIssue(line, LabelProblem.COORDINATES, f"{row} {bad:.4g}, outside [0, 1]")
    values = [v for v in clipped if v is not None]
    box = Box.from_points(values[0::2], values[1::2])
    if box.width <= 0 or box.height <= 0:
        return LabelRowIssue(line, LabelProblem.DEGENERATE, "region has zero width or height")
    return LabelRow(class_id=int(class_value), box=box, polygon=polygon)


def parse_yolo_labels(text: str, n_classes: int, tolerance: float = 1e-3) -> ParsedLabels:
    """Parse a whole label file; blank lines are allowed, an empty file means "no damage".

    Example:
        >>> parsed = parse_yolo_labels("0 0.5 0.5 0.2 0.2\\n7 0.5 0.5 0.1 0.1\\n", n_classes=2)
        >>> len(parsed.rows), parsed.issues[0].problem.value
        (1, 'class_id')
    """
    parsed = ParsedLabels()
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        result = parse_row(tokens, number, n_classes, tolerance)
        if isinstance(result, LabelRow):
            parsed.rows.append(result)
        else:
            parsed.issues.append(result)
    return parsed


def format_yolo_labels(rows: Iterable[tuple[int, Box]]) -> str:
    """Write box rows (``class cx cy w h``), six decimals: well below a pixel at any practical size."""
    lines = []
    for class_id, box in rows:
        cx, cy, w, h = box.to_yolo()
        lines.append(f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")
