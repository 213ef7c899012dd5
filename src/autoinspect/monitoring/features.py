"""Features of a live photo, computed exactly as for the training data's reference table.

The service logs these with every prediction; drift monitoring compares their distribution with the reference
table stored beside the model version. Both sides call :func:`autoinspect.data.features.image_features`, so a
shift in the numbers is a shift in the photos, never in the code. Numpy only: importing this from the service
pulls in no training or profiling dependency.
"""

from __future__ import annotations

import dataclasses

from autoinspect.data.features import FeatureValue, feature_row, image_features
from autoinspect.images import DecodedImage


def live_features(photo: DecodedImage) -> dict[str, FeatureValue]:
    """The reference table's image columns for one decoded photo (no box columns: live photos have no labels).

    Pixel statistics come from the pixels decoded; size columns from the file, since serving caps decoding at
    :data:`~autoinspect.images.DECODE_MAX_SIDE` and a photo's size is itself a feature that drifts.

    Example:
        >>> import numpy as np
        >>> photo = DecodedImage(np.zeros((4, 6, 3), dtype=np.uint8), "PNG", 1, source_width=60, source_height=40)
        >>> row = live_features(photo)
        >>> sorted(row)[:3], row["width"]
        (['aspect', 'brightness', 'colorfulness'], 60)
    """
    features = image_features(photo.rgb)
    size = {"width": photo.source_width, "height": photo.source_height}
    return feature_row(dataclasses.replace(features, **size, aspect=photo.source_width / photo.source_height))
