"""Which loaded model answers a request, and which one shadows it: the deployment plan applied per request.

Pure functions over an immutable :class:`ActiveModels` snapshot: a request takes the snapshot once and keeps it to
the end, so a hot swap between two of its steps can never mix versions within one answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from autoinspect.inference import Detector
from autoinspect.registry.deployment import DeploymentMode, DeploymentPlan
from autoinspect.store import Route

BUCKETS = 10_000
"""Canary shares are resolved to 0.01 %: the hash of the routing key picks one of this many buckets."""


@dataclass(frozen=True)
class LoadedModel:
    """A registered version held in memory, ready to answer."""

    version: int
    detector: Detector


@dataclass(frozen=True)
class ActiveModels:
    """What a replica serves right now: the plan and the loaded models it names."""

    plan: DeploymentPlan
    champion: LoadedModel
    challenger: LoadedModel | None
    """Loaded whenever the plan names one: it shadows, takes the canary share, or stands by (blue-green)."""


@dataclass(frozen=True)
class Assignment:
    answer: LoadedModel
    """The model whose prediction is returned."""
    route: Route
    shadow: LoadedModel | None
    """Runs on a copy of the request after the answer; its prediction is only logged."""


def canary_bucket(key: str) -> int:
    """A stable bucket in ``[0, BUCKETS)`` for a routing key (vehicle id, else request id).

    sha256 rather than :func:`hash`: Python salts string hashes per process, and every replica must put the same
    vehicle on the same side of the canary.

    Example:
        >>> canary_bucket("WVW-123") == canary_bucket("WVW-123")
        True
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(active: ActiveModels, key: str) -> Assignment:
    """Route one request; ``key`` keeps a vehicle on the same side of a canary across all its photos."""
    plan, challenger = active.plan, active.challenger
    in_canary = plan.mode is DeploymentMode.CANARY and canary_bucket(key) < plan.canary_percent / 100 * BUCKETS
    if challenger is not None and in_canary:
        return Assignment(answer=challenger, route=Route.CHALLENGER, shadow=None)
    shadow = challenger if plan.mode is DeploymentMode.SHADOW else None
    return Assignment(answer=active.champion, route=Route.CHAMPION, shadow=shadow)
