"""The moving average of the lite detector's weights: its decay schedule and what it averages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinspect.training.lite.weight_average import WeightAverage


def _linear(weight: float) -> nn.Module:
    layer = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        layer[0].weight.fill_(weight)
    return layer


def test_the_average_forgets_early_steps_fast_and_never_decays_beyond_the_cap() -> None:
    average = WeightAverage(_linear(0.0), decay=0.995)
    rates = []
    for _ in range(2000):
        rates.append(average.rate())
        average.updates += 1
    assert rates[0] == pytest.approx(0.1)
    assert rates[90] == pytest.approx(91 / 100)
    assert rates == sorted(rates)
    assert max(rates) == 0.995


def test_the_average_lies_between_the_weights_it_saw_and_buffers_follow_the_model() -> None:
    model = _linear(0.0)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].running_mean.fill_(3.0)
    average.update(model)  # keeps 0.1 of the old average
    assert float(average.model[0].weight) == pytest.approx(0.9)
    assert float(average.model[1].running_mean) == 3.0
    average.update(model)  # keeps 2/11
    assert float(average.model[0].weight) == pytest.approx(1 - 0.1 * 2 / 11)
    assert not any(p.requires_grad for p in average.model.parameters())
    assert float(model[0].weight) == 1.0


def test_decay_zero_keeps_exactly_the_last_step() -> None:
    model = _linear(0.0)
    average = WeightAverage(model, decay=0.0)
    for value in (0.3, -2.0, 5.5):
        with torch.no_grad():
            model[0].weight.fill_(value)
        average.update(model)
        assert torch.equal(average.model[0].weight, model[0].weight)
