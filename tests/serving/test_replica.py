"""A replica's model loading: a version that fails to load is retried after a growing back-off, not on every poll,
and an operator's explicit call retries it at once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from autoinspect.config import Settings
from autoinspect.inference import Detector
from autoinspect.registry.aliases import promote
from autoinspect.serving.replica import LoadDeferredError, Replica


def test_a_failed_version_waits_for_its_back_off_and_an_explicit_retry_loads_it(
    registry: Settings, redbox_onnx: Path
) -> None:
    calls: Counter[int] = Counter()
    broken = {2}

    def loader(version: int) -> Detector:
        calls[version] += 1
        if version in broken:
            raise OSError("model.onnx is truncated")
        return Detector(redbox_onnx)

    replica = Replica(registry, loader=loader)
    assert replica.refresh() and calls == {1: 1}
    promote(registry, 2, "test")

    with pytest.raises(OSError, match="truncated"):
        replica.refresh()
    with pytest.raises(LoadDeferredError, match="version 2 failed to load"):
        replica.refresh()  # the next poll does not download the broken version again
    assert calls[2] == 1 and replica.stats.refresh_errors == 1 and "truncated" in (replica.stats.last_error or "")
    assert replica.active is not None and replica.active.champion.version == 1  # v1 keeps serving

    time.sleep(registry.serving.poll_seconds * 2 + 0.1)  # the first back-off is two polls
    with pytest.raises(OSError):
        replica.refresh()
    with pytest.raises(LoadDeferredError):
        replica.refresh()  # the second back-off is longer (four polls): still waiting
    assert calls[2] == 2 and replica.stats.refresh_errors == 2

    broken.clear()  # the operator fixed the artifact and asks again
    assert replica.refresh(retry_now=True)
    assert calls[2] == 3 and replica.active.champion.version == 2 and replica.stats.last_error is None
