"""The promotion gates as a pure function: one table row per situation a promotion can be in."""

from __future__ import annotations

import math

import pytest

from autoinspect.evaluation.metric_names import MetricName, metric_key
from autoinspect.registry.gates import (
    IMAGE_CLEAN_NONE_RATE,
    IMAGE_DAMAGED_CAUGHT,
    LATENCY_MS_P95,
    MAP50,
    GateRule,
    GateRules,
    ap50_key,
    check_gates,
)

DENT_F1 = metric_key(MetricName.IMAGE_F1, "dent")
CHAMPION = {
    MAP50: 0.60,
    DENT_F1: 0.80,
    ap50_key("scratch"): 0.55,
    ap50_key("dent"): 0.65,
    IMAGE_DAMAGED_CAUGHT: 0.90,
    IMAGE_CLEAN_NONE_RATE: 0.95,
    LATENCY_MS_P95: 40.0,
}
BUDGET = GateRules(latency_budget_ms=50.0)


def _with(changes: dict[str, float] | None = None) -> dict[str, float]:
    """The champion's metrics with some changed."""
    return {**CHAMPION, **(changes or {})}


@pytest.mark.parametrize(
    ("candidate", "champion", "rules", "passed", "failed_rules"),
    [
        (_with({MAP50: 0.63, ap50_key("scratch"): 0.60, ap50_key("dent"): 0.66}), CHAMPION, BUDGET, True, []),
        (_with({ap50_key("dent"): 0.64}), CHAMPION, GateRules(), True, []),  # within the allowed 0.02 drop
        (_with({ap50_key("dent"): 0.63}), CHAMPION, GateRules(), True, []),  # exactly the allowed drop
        (
            _with({MAP50: 0.70, ap50_key("scratch"): 0.80, ap50_key("dent"): 0.60}),
            CHAMPION,
            GateRules(),
            False,
            [GateRule.AP50_DROP],
        ),
        (_with({IMAGE_CLEAN_NONE_RATE: 0.94}), CHAMPION, GateRules(), False, [GateRule.CLEAN_NONE_RATE_DROP]),
        (_with({IMAGE_DAMAGED_CAUGHT: 0.80}), CHAMPION, GateRules(), False, [GateRule.DAMAGED_CAUGHT_DROP]),
        (_with({LATENCY_MS_P95: 75.0}), CHAMPION, BUDGET, False, [GateRule.LATENCY_BUDGET]),
        (_with({DENT_F1: 0.70}), CHAMPION, GateRules(), True, []),  # presence F1 is not gated unless asked
        (_with({DENT_F1: 0.70}), CHAMPION, GateRules(max_presence_f1_drop=0.05), False, [GateRule.PRESENCE_F1_DROP]),
        (_with({DENT_F1: 0.76}), CHAMPION, GateRules(max_presence_f1_drop=0.05), True, []),
        (_with({MAP50: 0.1, ap50_key("dent"): 0.0}), None, GateRules(), True, []),  # no champion: only absolute rules
        (_with({MAP50: 0.1}), None, GateRules(min_map50=0.3), False, [GateRule.MIN_MAP50]),
        (
            _with({IMAGE_DAMAGED_CAUGHT: 0.4, IMAGE_CLEAN_NONE_RATE: 0.3}),
            None,
            GateRules(min_damaged_caught=0.5, min_clean_none_rate=0.5),
            False,
            [GateRule.MIN_DAMAGED_CAUGHT, GateRule.MIN_CLEAN_NONE_RATE],
        ),
        ({MAP50: 0.5}, None, GateRules(min_damaged_caught=0.5), False, [GateRule.MIN_DAMAGED_CAUGHT]),  # unmeasured
        ({MAP50: 0.7}, None, BUDGET, False, [GateRule.LATENCY_BUDGET]),  # latency not measured: fails closed
        ({**CHAMPION, ap50_key("rust"): 0.1}, CHAMPION, GateRules(), True, []),  # a new class is not gated
        (_with({ap50_key("dent"): math.nan}), CHAMPION, GateRules(), False, [GateRule.AP50_DROP]),
        (_with(), {**CHAMPION, ap50_key("dent"): math.nan}, GateRules(), True, []),
    ],
    ids=[
        "better-challenger",
        "small-class-drop",
        "drop-at-limit",
        "one-class-drop",
        "more-false-alarms",
        "fewer-damaged-caught",
        "over-latency-budget",
        "presence-f1-ungated",
        "presence-f1-drop",
        "presence-f1-within-limit",
        "no-champion",
        "below-floor",
        "below-verdict-floors",
        "verdict-unmeasured",
        "latency-unmeasured",
        "new-class",
        "candidate-nan",
        "champion-nan",
    ],
)
def test_gate_decisions(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    rules: GateRules,
    passed: bool,
    failed_rules: list[GateRule],
) -> None:
    decision = check_gates(candidate, champion, rules)

    assert decision.passed is passed
    assert [check.rule for check in decision.failures] == failed_rules


def test_each_check_says_what_it_compared() -> None:
    decision = check_gates(_with({ap50_key("dent"): 0.60}), CHAMPION, GateRules())

    (failure,) = decision.failures
    assert (failure.metric, failure.candidate, failure.reference) == ("ap50/dent", 0.60, 0.65)
    assert "ap50/dent 0.6000 vs champion 0.6500" in failure.message
    assert {check.metric for check in decision.checks} == {
        MAP50,
        "ap50/scratch",
        "ap50/dent",
        IMAGE_CLEAN_NONE_RATE,
        IMAGE_DAMAGED_CAUGHT,
    }
    with_presence = check_gates(_with(), CHAMPION, GateRules(max_presence_f1_drop=0.0))
    assert DENT_F1 in {check.metric for check in with_presence.checks}


def test_rules_and_decisions_round_trip_as_json() -> None:
    rules = GateRules(max_ap50_drop=0.05, latency_budget_ms=80)
    decision = check_gates(CHAMPION, CHAMPION, rules)

    assert GateRules.model_validate_json(rules.model_dump_json()) == rules
    assert type(decision).model_validate_json(decision.model_dump_json()) == decision
