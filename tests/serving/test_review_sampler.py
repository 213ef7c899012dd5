"""The review sampler: shares, hourly caps, filters, rule order; and on a real app, sampled answers in the queue."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from served import KeyFactory, jpeg, wait_for_log

from autoinspect.config import ReviewSamplingSettings, SamplingRule, Settings
from autoinspect.serving.app import create_app
from autoinspect.serving.review_sampler import ReviewSampler
from autoinspect.store import Scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_share_draws_about_that_share() -> None:
    sampler = ReviewSampler([SamplingRule(name="r", share=0.3, per_hour=10_000)], rng=random.Random(0))
    drawn = sum(sampler.pick(["None"], 0.1, caller=None) == "r" for _ in range(4000))
    assert 0.27 < drawn / 4000 < 0.33


def test_the_hourly_cap_is_a_sliding_window() -> None:
    clock = Clock()
    sampler = ReviewSampler([SamplingRule(name="r", share=1.0, per_hour=3)], clock=clock)
    picks = []
    for _ in range(5):
        picks.append(sampler.pick(["dent"], 0.9, caller=None))
        clock.now += 600
    assert picks == ["r", "r", "r", None, None]  # 3 in the first 40 minutes, then full
    clock.now = 1000.0 + 3600  # the first draw is now an hour old
    assert sampler.pick(["dent"], 0.9, caller=None) == "r"
    assert sampler.pick(["dent"], 0.9, caller=None) is None


def test_filters_and_rule_order() -> None:
    rules = [
        SamplingRule(name="dents", share=1.0, verdict_class="dent"),
        SamplingRule(name="clean", share=1.0, verdict_class="None"),
        SamplingRule(name="fleet", share=1.0, caller="fleet-a"),
        SamplingRule(name="unsure", share=1.0, confidence_between=(0.3, 0.6)),
    ]
    sampler = ReviewSampler(rules)
    assert sampler.pick(["dent", "scratch"], 0.9, caller="fleet-a") == "dents"  # the first rule that draws it
    assert sampler.pick(["None"], 0.1, caller=None) == "clean"
    assert sampler.pick(["scratch"], 0.9, caller="fleet-a") == "fleet"
    assert sampler.pick(["scratch"], 0.45, caller="dealer") == "unsure"
    assert sampler.pick(["scratch"], 0.6, caller="dealer") is None  # [lo, hi): 0.6 is out
    assert ReviewSampler([]).pick(["dent"], 0.9, caller=None) is None


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError, match="unique"):
        ReviewSamplingSettings(rules=[SamplingRule(name="a", share=0.1), SamplingRule(name="a", share=0.2)])
    with pytest.raises(ValidationError, match="lo < hi"):
        SamplingRule(name="a", share=0.1, confidence_between=(0.6, 0.3))
    with pytest.raises(ValidationError):
        SamplingRule(name="a", share=0.0)
    with pytest.raises(ValidationError):
        SamplingRule(name="no spaces", share=0.5)


def test_sampled_confident_answers_join_the_review_queue_under_their_rule(
    registry: Settings, make_key: KeyFactory
) -> None:
    """The red-box model flags red photos (review band) and answers the others "None" with confidence; a rule
    sampling "None" answers, capped at 2 an hour, sends the first two clean photos to the queue as well, and a
    rule for another caller sends none."""
    rules = [
        SamplingRule(name="other-caller", share=1.0, caller="someone-else"),
        SamplingRule(name="clean-check", share=1.0, per_hour=2, verdict_class="None"),
    ]
    settings = registry.model_copy(update={"review_sampling": ReviewSamplingSettings(rules=rules)})
    inspector, reviewer = make_key(Scope.INSPECT), make_key(Scope.REVIEW)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answers = []
        for index, red in enumerate([True, False, False, False, True]):
            headers = {"X-API-Key": inspector, "X-Request-ID": f"car-{index}"}
            files = {"image": ("car.jpg", jpeg(red=red, seed=index), "image/jpeg")}
            response = client.post("/v1/inspect", files=files, headers=headers)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert [a["needs_review"] for a in answers] == [True, False, False, False, True]  # answers unchanged
        wait_for_log(settings, 5)
        queue = client.get("/v1/review/queue", headers={"X-API-Key": reviewer}).json()
        assert [(e["request_id"], e["sampled_for"]) for e in queue] == [
            ("car-4", None),
            ("car-2", "clean-check"),
            ("car-1", "clean-check"),
            ("car-0", None),
        ]
        metrics = client.get("/metrics").text
        assert 'autoinspect_review_samples_total{rule="clean-check"} 2.0' in metrics
        assert 'rule="other-caller"' not in metrics
        reviewed = client.post("/v1/review/car-1", json={"decision": "accept"}, headers={"X-API-Key": reviewer})
        assert reviewed.status_code == 200, reviewed.text
        queue = client.get("/v1/review/queue", headers={"X-API-Key": reviewer}).json()
        assert [e["request_id"] for e in queue] == ["car-4", "car-2", "car-0"]
