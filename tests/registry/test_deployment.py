"""The deployment record in the real registry: defaults, refusals, the plan read with the aliases, history."""

from __future__ import annotations

import pytest

from autoinspect.config import Settings
from autoinspect.registry.aliases import CHALLENGER, promote, set_alias
from autoinspect.registry.deployment import (
    DEPLOYMENT_TAG,
    DeploymentMode,
    deployment_history,
    get_deployment,
    resolve_plan,
    set_deployment,
)
from autoinspect.registry.mlflow_registry import RegistryError, registry_client


def test_nothing_registered_means_single_with_no_champion(tracked_settings: Settings) -> None:
    assert get_deployment(tracked_settings).mode is DeploymentMode.SINGLE
    plan = resolve_plan(tracked_settings)
    assert (plan.champion, plan.challenger, plan.versions) == (None, None, frozenset())
    with pytest.raises(RegistryError, match="no model"):
        set_deployment(tracked_settings, DeploymentMode.SINGLE)


def test_modes_that_need_a_challenger_are_refused_without_one(two_versions: Settings) -> None:
    promote(two_versions, 1, "first")
    for mode in (DeploymentMode.SHADOW, DeploymentMode.CANARY):
        with pytest.raises(RegistryError, match="needs a challenger"):
            set_deployment(two_versions, mode, canary_percent=10)
    with pytest.raises(RegistryError, match=r"\(0, 100\]"):
        set_deployment(two_versions, DeploymentMode.CANARY, canary_percent=0)
    assert deployment_history(two_versions) == []


def test_the_plan_follows_the_record_and_the_aliases(two_versions: Settings) -> None:
    promote(two_versions, 1, "first")
    set_alias(two_versions, CHALLENGER, 2, reason="trial")
    assert resolve_plan(two_versions).challenger is None  # single mode loads the champion only
    record = set_deployment(two_versions, DeploymentMode.CANARY, canary_percent=12.5, reason="5 % first", actor="ops")
    assert (record.actor, record.reason) == ("ops", "5 % first")
    plan = resolve_plan(two_versions)
    assert (plan.mode, plan.canary_percent, plan.champion, plan.challenger) == (DeploymentMode.CANARY, 12.5, 1, 2)
    set_deployment(two_versions, DeploymentMode.SHADOW)
    assert resolve_plan(two_versions).canary_percent == 0.0  # the share belongs to canary mode only


def test_bluegreen_keeps_the_previous_champion_warm_after_the_switch(two_versions: Settings) -> None:
    promote(two_versions, 1, "first")
    set_alias(two_versions, CHALLENGER, 2, reason="green")
    set_deployment(two_versions, DeploymentMode.BLUEGREEN)
    assert (resolve_plan(two_versions).champion, resolve_plan(two_versions).challenger) == (1, 2)
    promote(two_versions, 2, "switch")  # the challenger alias is consumed; the old blue stays as standby
    plan = resolve_plan(two_versions)
    assert (plan.champion, plan.challenger, plan.versions) == (2, 1, frozenset({1, 2}))


def test_every_change_is_kept_in_order(two_versions: Settings) -> None:
    promote(two_versions, 1, "first")
    set_alias(two_versions, CHALLENGER, 2, reason="trial")
    for mode in (DeploymentMode.SHADOW, DeploymentMode.CANARY, DeploymentMode.SINGLE):
        set_deployment(two_versions, mode, canary_percent=30)
    assert [record.mode for record in deployment_history(two_versions)] == [
        DeploymentMode.SHADOW,
        DeploymentMode.CANARY,
        DeploymentMode.SINGLE,
    ]


def test_a_hand_edited_broken_record_falls_back_to_single(two_versions: Settings) -> None:
    promote(two_versions, 1, "first")
    registry_client(two_versions).set_registered_model_tag(two_versions.tracking.model_name, DEPLOYMENT_TAG, "{oops")
    assert resolve_plan(two_versions).mode is DeploymentMode.SINGLE
