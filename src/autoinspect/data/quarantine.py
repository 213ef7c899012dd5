"""Quarantine: copies of rejected images and their labels, set aside with the reasons, never deleted.

The source folder is left as it was (it may be the user's only copy); a dataset version leaves the rejected
images out, and the quarantine folder keeps them with ``reasons.json`` so that a person can fix and re-import.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

from autoinspect.data.layout import DatasetLayout
from autoinspect.data.validation import ValidationReport

logger = logging.getLogger(__name__)

REASONS_FILE = "reasons.json"


def quarantine_rejected(report: ValidationReport, layout: DatasetLayout, quarantine_root: Path) -> Path | None:
    """Copy every rejected image and its label under a new timestamped folder; ``None`` when nothing failed."""
    rejected = sorted(report.rejected_images())
    if not rejected:
        return None
    target = quarantine_root / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    by_image = {item.image.relative_to(layout.root).as_posix(): item for item in layout.items()}
    reasons = []
    for image in rejected:
        item = by_image[Path(image).as_posix()]
        for source in (item.image, item.label):
            if source.is_file():
                destination = target / source.relative_to(layout.root)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
        reasons.append(
            {
                "image": image,
                "label": item.label.relative_to(layout.root).as_posix() if item.label.is_file() else None,
                "issues": [i.model_dump(mode="json") for i in report.errors if i.image == image],
            }
        )
    (target / REASONS_FILE).write_text(
        json.dumps({"source": str(layout.root), "rejected": reasons}, indent=2), encoding="utf-8"
    )
    logger.warning("quarantined %d images with reasons in %s", len(rejected), target / REASONS_FILE)
    return target
