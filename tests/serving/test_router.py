"""Routing rules on real loaded models: sticky canary shares, shadow copies, blue-green standby."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoinspect.inference import Detector
from autoinspect.registry.deployment import DeploymentMode, DeploymentPlan
from autoinspect.serving.router import BUCKETS, ActiveModels, LoadedModel, assign, canary_bucket
from autoinspect.store import Route


@pytest.fixture(scope="module")
def models(redbox_onnx: Path) -> tuple[LoadedModel, LoadedModel]:
    detector = Detector(redbox_onnx)
    return LoadedModel(1, detector), LoadedModel(2, detector)


def _active(models: tuple[LoadedModel, LoadedModel], mode: DeploymentMode, percent: float = 0.0) -> ActiveModels:
    champion, challenger = models
    plan = DeploymentPlan(mode=mode, canary_percent=percent, champion=1, challenger=2)
    return ActiveModels(plan=plan, champion=champion, challenger=challenger)


def test_canary_share_is_close_to_the_percentage_and_sticky(models: tuple[LoadedModel, LoadedModel]) -> None:
    active = _active(models, DeploymentMode.CANARY, 20.0)
    keys = [f"VIN{i:05d}" for i in range(5000)]
    routed = {key: assign(active, key) for key in keys}
    share = sum(a.route is Route.CHALLENGER for a in routed.values()) / len(keys)
    assert 0.18 < share < 0.22
    assert all(assign(active, key).route is routed[key].route for key in keys[:500])  # same vehicle, same side
    assert all(a.answer.version == (2 if a.route is Route.CHALLENGER else 1) for a in routed.values())
    assert all(a.shadow is None for a in routed.values())


def test_canary_edges(models: tuple[LoadedModel, LoadedModel]) -> None:
    keys = [f"r{i}" for i in range(300)]
    assert {assign(_active(models, DeploymentMode.CANARY, 100.0), k).route for k in keys} == {Route.CHALLENGER}
    assert {assign(_active(models, DeploymentMode.CANARY, 0.0), k).route for k in keys} == {Route.CHAMPION}
    assert 0 <= canary_bucket("") < BUCKETS


def test_shadow_answers_with_the_champion_and_copies_to_the_challenger(
    models: tuple[LoadedModel, LoadedModel],
) -> None:
    assignment = assign(_active(models, DeploymentMode.SHADOW), "r1")
    assert (assignment.answer.version, assignment.route, assignment.shadow) == (1, Route.CHAMPION, models[1])


@pytest.mark.parametrize("mode", [DeploymentMode.SINGLE, DeploymentMode.BLUEGREEN])
def test_single_and_bluegreen_answer_with_the_champion_only(
    models: tuple[LoadedModel, LoadedModel], mode: DeploymentMode
) -> None:
    for key in ("a", "b", "c"):
        assignment = assign(_active(models, mode), key)
        assert (assignment.answer.version, assignment.shadow) == (1, None)
