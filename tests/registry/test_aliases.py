"""Champion and challenger aliases on a real registry: promotion, rollback and the recorded history of moves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoinspect.config import Settings
from autoinspect.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    AliasAction,
    alias_history,
    promote,
    rollback,
    set_alias,
)
from autoinspect.registry.mlflow_registry import RegistryError, get_by_alias


def _version(settings: Settings, alias: str) -> int | None:
    found = get_by_alias(settings, alias)
    return found.version if found else None


def test_promote_then_rollback_moves_the_champion_and_records_each_move(two_versions: Settings) -> None:
    settings = two_versions
    promote(settings, 1, reason="first model", actor="ana")
    set_alias(settings, CHALLENGER, 2, reason="gates passed", actor="pipeline")

    promote(settings, 2, reason="canary clean for 24 h", actor="ana")
    assert (_version(settings, CHAMPION), _version(settings, PREVIOUS_CHAMPION)) == (2, 1)
    assert _version(settings, CHALLENGER) is None  # the trial is over

    rollback(settings, reason="false alarms doubled", actor="bo")
    assert (_version(settings, CHAMPION), _version(settings, PREVIOUS_CHAMPION)) == (1, None)

    moves = [(m.action, m.alias, m.from_version, m.to_version, m.actor, m.reason) for m in alias_history(settings)]
    assert moves == [
        (AliasAction.PROMOTE, CHAMPION, None, 1, "ana", "first model"),
        (AliasAction.SET, CHALLENGER, None, 2, "pipeline", "gates passed"),
        (AliasAction.PROMOTE, CHAMPION, 1, 2, "ana", "canary clean for 24 h"),
        (AliasAction.ROLLBACK, CHAMPION, 2, 1, "bo", "false alarms doubled"),
    ]


def test_a_second_rollback_is_refused_instead_of_flipping_back(two_versions: Settings) -> None:
    promote(two_versions, 1, reason="first")
    promote(two_versions, 2, reason="second")
    rollback(two_versions, reason="bad")

    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(two_versions, reason="again")
    assert _version(two_versions, CHAMPION) == 1


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (lambda s: set_alias(s, CHAMPION, 1), "only through promote or rollback"),
        (lambda s: set_alias(s, CHALLENGER, 9), "no version 9"),
        (lambda s: promote(s, 9, reason="typo"), "no version 9"),
        (lambda s: rollback(s, reason="nothing promoted yet"), "no previous champion"),
    ],
    ids=["champion-by-hand", "unknown-challenger", "unknown-champion", "rollback-first"],
)
def test_invalid_moves_are_refused_and_not_recorded(
    two_versions: Settings, move: Callable[[Settings], object], message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        move(two_versions)
    assert alias_history(two_versions) == []


def test_promoting_the_champion_again_is_an_error(two_versions: Settings) -> None:
    promote(two_versions, 1, reason="first")
    with pytest.raises(RegistryError, match="already the champion"):
        promote(two_versions, 1, reason="again")


def test_history_is_empty_before_anything_is_registered(tracked_settings: Settings) -> None:
    assert alias_history(tracked_settings) == []
