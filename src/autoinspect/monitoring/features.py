"""Features of a live photo, computed exactly as for the training data's reference table.

The service logs these with every prediction; drift monitoring compares their distribution with the reference
table stored beside the model version. Both sides call :func:`autoinspect.data.features.image_features`, so a
shift in the numbers is a shift in the photos, never in the code. Numpy only: importing this from the service
pulls in no training or profiling dependency.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from autoinspect.data.features import FeatureValue, feature_row, image_features


def live_features(rgb: npt.NDArray[np.uint8]) -> dict[str, FeatureValue]:
    """The reference table's image columns for one decoded photo (no box columns: live photos have no labels).

    Example:
        >>> sorted(live_features(np.zeros((4, 6, 3), dtype=np.uint8)))[:3]
        ['aspect', 'brightness', 'colorfulness']
    """
    return feature_row(image_features(rgb))
