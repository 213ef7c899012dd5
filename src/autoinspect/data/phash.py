"""Perceptual hashes that also recognise a photo flipped or rotated by 90°, and grouping of near-duplicates.

Dataset tools (and Roboflow's augmented exports) produce mirrored and rotated copies of the same photo; a copy in
train and its mirror in test inflates every test figure. A 64-bit DCT hash (pHash) is computed for each of the
eight flips/rotations of the image, and two photos are near-duplicates when the hash of one is within a few bits
of any variant of the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

HASH_SIZE = 8
SAMPLE_SIZE = 32
_ROWS_PER_CHUNK = 512


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """Orthonormal DCT-II matrix, so a 2-D DCT is ``C @ X @ C.T`` with numpy alone."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return np.asarray(matrix, dtype=np.float64)


_DCT = _dct_matrix(SAMPLE_SIZE)
_BIT_WEIGHTS = (1 << np.arange(HASH_SIZE * HASH_SIZE, dtype=np.uint64)).astype(np.uint64)


def _hash_of(sample: npt.NDArray[np.float64]) -> np.uint64:
    coefficients = (_DCT @ sample @ _DCT.T)[:HASH_SIZE, :HASH_SIZE].ravel()
    bits = coefficients > np.median(coefficients[1:])
    return np.uint64(np.sum(_BIT_WEIGHTS[bits], dtype=np.uint64))


def dihedral_hashes(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """pHash of the image under each of the 8 flips/rotations; index 0 is the image as it is."""
    grey = Image.fromarray(rgb).convert("L").resize((SAMPLE_SIZE, SAMPLE_SIZE), Image.Resampling.BOX)
    sample = np.asarray(grey, dtype=np.float64)
    variants: list[npt.NDArray[np.float64]] = []
    for turns in range(4):
        rotated = np.rot90(sample, turns)
        variants.extend((rotated, rotated[:, ::-1]))
    return np.array([_hash_of(np.ascontiguousarray(v)) for v in variants], dtype=np.uint64)


@dataclass(frozen=True)
class NearDuplicatePair:
    first: int
    second: int
    distance: int
    """Bits that differ between the first photo and the closest flip/rotation of the second."""


def near_duplicate_pairs(hashes: Sequence[npt.NDArray[np.uint64]], max_bits: int) -> list[NearDuplicatePair]:
    """All pairs ``i < j`` whose hashes are within ``max_bits``, in chunks so memory stays bounded."""
    if not hashes:
        return []
    variants = np.stack(hashes)  # n x 8
    upright = variants[:, 0]
    pairs: list[NearDuplicatePair] = []
    for start in range(0, len(upright), _ROWS_PER_CHUNK):
        rows = upright[start : start + _ROWS_PER_CHUNK]
        distances = np.bitwise_count(rows[:, None, None] ^ variants[None, :, :]).min(axis=2)
        for i, j in zip(*np.nonzero(distances <= max_bits), strict=True):
            first = start + int(i)
            if first < int(j):
                pairs.append(NearDuplicatePair(first, int(j), int(distances[i, j])))
    return pairs


def group_pairs(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components (union-find) of the pair graph, only those with two or more members."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for index in range(n):
        groups.setdefault(find(index), []).append(index)
    return sorted((members for members in groups.values() if len(members) > 1), key=lambda g: g[0])
