"""Promotion gates: a pure decision over named evaluation metrics, whether a candidate may replace the champion.

Pure on purpose: it reads two metric maps and a rule set and touches nothing, so every rule is covered by
table-driven unit tests, and the pipeline, the CLI and the UI show the same decision for the same numbers.
Metric keys come from the evaluation's own :mod:`~autoinspect.evaluation.metric_names`, never strings typed in
glue code.

Fail closed: a metric that a rule needs and the candidate lacks (or reports as NaN) fails that rule. What the
champion lacks cannot be compared and is reported as such, so a new class or a newly measured metric never
blocks the model that introduces it.

Example:
    >>> decision = check_gates({MAP50: 0.61, ap50_key("dent"): 0.6}, None, GateRules())
    >>> decision.passed, [c.rule.value for c in decision.checks]
    (True, ['min_map50'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from autoinspect.evaluation.metric_names import MetricName, metric_key

MAP50 = metric_key(MetricName.MAP50)
AP50_PREFIX = f"{MetricName.AP50.value}/"
IMAGE_DAMAGED_CAUGHT = metric_key(MetricName.DAMAGED_CAUGHT)
"""Share of damaged photos whose verdict is not "None": the "caught before stock intake" KPI."""
IMAGE_CLEAN_NONE_RATE = metric_key(MetricName.CLEAN_NONE_RATE)
"""Share of clean photos answered "None": one minus the false-alarm rate on clean cars."""
PRESENCE_F1_PREFIX = f"{MetricName.IMAGE_F1.value}/"
"""Per-class presence F1 keys (``image/f1/dent``): does the verdict name the classes the photo shows."""
LATENCY_MS_P95 = "latency_ms_p95"
"""Added to the evaluation's metrics by the evaluation step (it times the Detector)."""

_EPS = 1e-9
"""Slack for float noise, so a drop of exactly the allowed amount passes."""


def ap50_key(label: str) -> str:
    """The flat key of one class's AP at IoU 0.5, e.g. ``ap50/scratch``."""
    return metric_key(MetricName.AP50, label)


class GateRule(StrEnum):
    MIN_MAP50 = "min_map50"
    MIN_DAMAGED_CAUGHT = "min_damaged_caught"
    MIN_CLEAN_NONE_RATE = "min_clean_none_rate"
    LATENCY_BUDGET = "latency_budget"
    AP50_DROP = "ap50_drop"
    CLEAN_NONE_RATE_DROP = "clean_none_rate_drop"
    DAMAGED_CAUGHT_DROP = "damaged_caught_drop"
    PRESENCE_F1_DROP = "presence_f1_drop"


class GateRules(BaseModel):
    """Thresholds of the gates; serialisable, so a run records the rules its decision was made under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_map50: float = Field(0.0, ge=0.0, le=1.0)
    """Absolute floor on mAP@0.5 (the project's floors come from ``settings.gates``)."""
    min_damaged_caught: float = Field(0.0, ge=0.0, le=1.0)
    """Absolute floor on the share of damaged photos caught."""
    min_clean_none_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Absolute floor on the share of clean photos answered "None"."""
    max_ap50_drop: float = Field(0.02, ge=0.0)
    """Largest drop of any single class's AP@0.5 versus the champion: a better mean must not hide a lost class."""
    max_clean_none_rate_drop: float = Field(0.0, ge=0.0)
    """Largest drop of the clean-photo "None" rate: by default false alarms on clean cars may not increase."""
    max_damaged_caught_drop: float = Field(0.02, ge=0.0)
    """Largest drop of the share of damaged photos caught."""
    max_presence_f1_drop: float | None = Field(None, ge=0.0)
    """Largest drop of any class's presence F1 (``image/f1/<class>``); ``None`` leaves it unchecked. The verdict
    figures above pool the classes, so a variant that keeps "damaged or not" but names dents less often passes
    them; this holds each class's answer."""
    latency_budget_ms: float | None = Field(None, gt=0.0)
    """Budget for p95 latency in milliseconds; ``None`` leaves latency ungated (it depends on the machine)."""


class GateCheck(BaseModel):
    """One rule applied to one metric."""

    rule: GateRule
    metric: str
    passed: bool
    candidate: float | None
    reference: float | None
    """The bound the candidate was held to: the champion's value or the absolute threshold."""
    message: str


class GateDecision(BaseModel):
    passed: bool
    checks: list[GateCheck]

    @property
    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]


def check_gates(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    rules: GateRules,
    *,
    against: str = "champion",
) -> GateDecision:
    """Apply every rule; with no champion only the absolute rules (floors, latency) apply. ``against`` names the
    reference in the messages (the int8 gate holds a variant against its ``float model``)."""
    checks = [_at_least(GateRule.MIN_MAP50, MAP50, candidate, rules.min_map50)]
    verdict_floors = (
        (GateRule.MIN_DAMAGED_CAUGHT, IMAGE_DAMAGED_CAUGHT, rules.min_damaged_caught),
        (GateRule.MIN_CLEAN_NONE_RATE, IMAGE_CLEAN_NONE_RATE, rules.min_clean_none_rate),
    )
    checks += [_at_least(rule, key, candidate, floor) for rule, key, floor in verdict_floors if floor > 0]
    if rules.latency_budget_ms is not None:
        checks.append(_latency(candidate, rules.latency_budget_ms))
    if champion is not None:
        # one AP50 check per class the reference was measured on: a class only the candidate has is new, not gated
        keys = sorted(key for key in champion if key.startswith(AP50_PREFIX))
        drops = [(GateRule.AP50_DROP, key, rules.max_ap50_drop) for key in keys]
        if rules.max_presence_f1_drop is not None:
            presence = sorted(key for key in champion if key.startswith(PRESENCE_F1_PREFIX))
            drops += [(GateRule.PRESENCE_F1_DROP, key, rules.max_presence_f1_drop) for key in presence]
        drops.append((GateRule.CLEAN_NONE_RATE_DROP, IMAGE_CLEAN_NONE_RATE, rules.max_clean_none_rate_drop))
        drops.append((GateRule.DAMAGED_CAUGHT_DROP, IMAGE_DAMAGED_CAUGHT, rules.max_damaged_caught_drop))
        checks += [_no_drop(rule, key, candidate, champion, limit, against) for rule, key, limit in drops]
    return GateDecision(passed=all(check.passed for check in checks), checks=checks)


def _value(metrics: Mapping[str, float], key: str) -> float | None:
    """The metric if present and finite; NaN (undefined, e.g. no instances) counts as absent."""
    value = metrics.get(key)
    return float(value) if value is not None and math.isfinite(value) else None


def _missing(rule: GateRule, key: str, reference: float | None) -> GateCheck:
    return GateCheck(
        rule=rule,
        metric=key,
        passed=False,
        candidate=None,
        reference=reference,
        message=f"candidate has no finite '{key}': cannot be checked, so it fails",
    )


def _at_least(rule: GateRule, key: str, candidate: Mapping[str, float], floor: float) -> GateCheck:
    value = _value(candidate, key)
    if value is None:
        return _missing(rule, key, floor)
    passed = value >= floor - _EPS
    verb = "meets" if passed else "is below"
    return GateCheck(
        rule=rule,
        metric=key,
        passed=passed,
        candidate=value,
        reference=floor,
        message=f"{key} {value:.4f} {verb} the floor {floor:.4f}",
    )


def _latency(candidate: Mapping[str, float], budget_ms: float) -> GateCheck:
    value = _value(candidate, LATENCY_MS_P95)
    if value is None:
        return _missing(GateRule.LATENCY_BUDGET, LATENCY_MS_P95, budget_ms)
    passed = value <= budget_ms + _EPS
    verb = "within" if passed else "over"
    return GateCheck(
        rule=GateRule.LATENCY_BUDGET,
        metric=LATENCY_MS_P95,
        passed=passed,
        candidate=value,
        reference=budget_ms,
        message=f"{LATENCY_MS_P95} {value:.1f} ms is {verb} the budget of {budget_ms:.1f} ms",
    )


def _no_drop(
    rule: GateRule,
    key: str,
    candidate: Mapping[str, float],
    champion: Mapping[str, float],
    max_drop: float,
    against: str,
) -> GateCheck:
    reference = _value(champion, key)
    value = _value(candidate, key)
    if reference is None:
        return GateCheck(
            rule=rule,
            metric=key,
            passed=True,
            candidate=value,
            reference=None,
            message=f"{against} has no finite '{key}': nothing to compare with",
        )
    if value is None:
        return _missing(rule, key, reference)
    passed = value >= reference - max_drop - _EPS
    verb = "keeps within" if passed else "drops more than"
    return GateCheck(
        rule=rule,
        metric=key,
        passed=passed,
        candidate=value,
        reference=reference,
        message=f"{key} {value:.4f} vs {against} {reference:.4f}: {verb} the allowed drop of {max_drop:.4f}",
    )
