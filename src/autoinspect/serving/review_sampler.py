"""The review sampler: which answers outside the review band also go to the review queue.

The review band sends what the model was unsure about; reviewers who see only that never learn how often the
confident answers are wrong, nor look where the model is weakest for one customer or class. Each configured
rule (``review_sampling.rules``) draws a share of the answers it matches, capped per hour over a sliding window
so a burst of traffic cannot flood the queue; the rule's name travels with the logged answer (``sampled_for``)
so the queue and the KPIs can tell sampled answers from flagged ones and report what their reviews found.

Example:
    >>> from autoinspect.config import SamplingRule
    >>> sampler = ReviewSampler([SamplingRule(name="all", share=1.0, per_hour=1)])
    >>> sampler.pick(["dent"], 0.9, caller="fleet"), sampler.pick(["dent"], 0.9, caller="fleet")
    ('all', None)
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from autoinspect.config import SamplingRule

HOUR_S = 3600.0


class ReviewSampler:
    """Draws answers for review by the rules, in order; thread-safe (answers are logged from worker threads)."""

    def __init__(
        self,
        rules: Sequence[SamplingRule],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._rules = list(rules)
        self._clock = clock
        self._rng = rng or random.Random()
        self._taken: dict[str, deque[float]] = {rule.name: deque() for rule in self._rules}
        self._lock = threading.Lock()

    def pick(self, verdict: Sequence[str], confidence: float, *, caller: str | None) -> str | None:
        """The name of the first rule that matches this answer, draws it and is under its cap; else ``None``.

        ``verdict`` is the answer's class names (``["None"]`` for no damage), ``confidence`` its confidence.
        """
        if not self._rules:
            return None
        with self._lock:
            now = self._clock()
            for rule in self._rules:
                if not _matches(rule, verdict, confidence, caller) or self._rng.random() >= rule.share:
                    continue
                taken = self._taken[rule.name]
                while taken and taken[0] <= now - HOUR_S:
                    taken.popleft()
                if len(taken) < rule.per_hour:
                    taken.append(now)
                    return rule.name
        return None


def _matches(rule: SamplingRule, verdict: Sequence[str], confidence: float, caller: str | None) -> bool:
    if rule.verdict_class is not None and rule.verdict_class not in verdict:
        return False
    if rule.caller is not None and rule.caller != caller:
        return False
    if rule.confidence_between is not None:
        low, high = rule.confidence_between
        return low <= confidence < high
    return True
