"""Deterministic split assignment for images that arrive without one, keeping copies together.

A photo's split depends only on its content (the sha256 of the group's first member), so re-importing the same
photos gives the same splits, and adding photos never moves old ones. Images that are copies of an image that
already has a split join it, so a new near-copy of a test photo cannot land in train.
"""

from __future__ import annotations

from collections.abc import Sequence

from autoinspect.config import SplitSettings
from autoinspect.data.duplicates import duplicate_components, split_protection
from autoinspect.data.scan import ScannedImage
from autoinspect.domain import Split


def split_for_digest(sha256: str, fractions: SplitSettings, *, allow_test: bool = True) -> Split:
    """Map a content hash to a split by its position in [0, 1): test first, then val, then train.

    Example:
        >>> split_for_digest("0" * 64, SplitSettings(val_fraction=0.2, test_fraction=0.2)).value
        'test'
    """
    position = int(sha256[:12], 16) / float(1 << 48)
    test = fractions.test_fraction if allow_test else 0.0
    if position < test:
        return Split.TEST
    if position < test + fractions.val_fraction:
        return Split.VAL
    return Split.TRAIN


def assign_splits(
    scans: Sequence[ScannedImage], fractions: SplitSettings, max_bits: int, *, allow_test: bool = True
) -> dict[int, Split]:
    """Split for every unsplit image (by index into ``scans``); images with a split keep it."""
    group_of = {index: members for members in duplicate_components(scans, max_bits) for index in members}
    assignment: dict[int, Split] = {}
    for index, scan in enumerate(scans):
        if scan.item.split is not None:
            continue
        members = group_of.get(index, [index])
        placed = sorted((s for m in members if (s := scans[m].item.split) is not None), key=split_protection)
        if placed:
            assignment[index] = placed[0]
        else:
            anchor = min(scans[m].sha256 for m in members)
            assignment[index] = split_for_digest(anchor, fractions, allow_test=allow_test)
    return assignment
