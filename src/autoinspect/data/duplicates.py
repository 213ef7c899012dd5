"""Groups of copies within a scanned dataset: byte-identical files and perceptual near-copies.

Validation reports the groups (and leaks across splits); split assignment keeps each group in one split.
"""

from __future__ import annotations

from collections.abc import Sequence

from autoinspect.data.phash import group_pairs, near_duplicate_pairs
from autoinspect.data.scan import ScannedImage
from autoinspect.domain import Split

_PROTECTION = {Split.TEST: 0, Split.VAL: 1, Split.TRAIN: 2}


def split_protection(split: Split | None) -> int:
    """Rank of a split when copies disagree: the gold test split is kept first, then val, train, unsplit."""
    return _PROTECTION.get(split, 3) if split else 3


def duplicate_components(scans: Sequence[ScannedImage], max_bits: int) -> list[list[int]]:
    """Indices into ``scans`` of each group of two or more copies (flips and 90° rotations included)."""
    pairs: list[tuple[int, int]] = []
    by_sha: dict[str, list[int]] = {}
    for index, scan in enumerate(scans):
        by_sha.setdefault(scan.sha256, []).append(index)
    for members in by_sha.values():
        pairs.extend((members[0], other) for other in members[1:])
    decoded = [i for i, scan in enumerate(scans) if scan.decoded is not None]
    hashes = [facts.hashes for i in decoded if (facts := scans[i].decoded) is not None]
    pairs.extend((decoded[p.first], decoded[p.second]) for p in near_duplicate_pairs(hashes, max_bits))
    return group_pairs(len(scans), pairs)
