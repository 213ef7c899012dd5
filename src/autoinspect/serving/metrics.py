"""Prometheus metrics of one replica: latency, answers by verdict and model version, errors, writer and registry.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so two apps in one process (tests, or a
blue-green pair in one interpreter) never share or double-register series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from autoinspect.domain import NONE_VERDICT
from autoinspect.serving.replica import ReplicaStats
from autoinspect.store import WriterStats

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; CPU inference of one 640 px photo takes 0.1-0.5 s, batches and cold starts run longer."""
CONTENT_TYPE = CONTENT_TYPE_LATEST


def verdict_label(verdict: str | list[str]) -> str:
    """``None``, or the classes joined by ``+`` (``dent+scratch``): a bounded label set, one per combination."""
    return verdict if isinstance(verdict, str) else "+".join(verdict) or NONE_VERDICT


class ServiceMetrics:
    """The series a replica exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "autoinspect_request_latency_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inspections = Counter(
            "autoinspect_inspections",
            "Photos answered (or shadowed), by verdict, model version and route",
            ["verdict", "model_version", "route"],
            registry=self.registry,
        )
        self.needs_review = Counter(
            "autoinspect_needs_review",
            "Answered photos the review band flagged for the review queue, by model version",
            ["model_version"],
            registry=self.registry,
        )
        self.review_samples = Counter(
            "autoinspect_review_samples",
            "Confident answers a review-sampling rule sent to the review queue, by rule",
            ["rule"],
            registry=self.registry,
        )
        self.errors = Counter(
            "autoinspect_errors",
            "Requests answered with an error, by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.retakes = Counter(
            "autoinspect_retakes",
            "Photos the quality gate refused before the model, by reason (a photo may have several)",
            ["reason"],
            registry=self.registry,
        )
        self.shadow_skipped = Counter(
            "autoinspect_shadow_skipped",
            "Shadow predictions skipped because the shadow queue was full",
            registry=self.registry,
        )

    def watch(self, writer: Callable[[], WriterStats], replica: Callable[[], ReplicaStats]) -> None:
        """Export the prediction writer's and the replica's own counters, read at scrape time."""
        self.registry.register(_StatsCollector(writer, replica))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StatsCollector(Collector):
    def __init__(self, writer: Callable[[], WriterStats], replica: Callable[[], ReplicaStats]) -> None:
        self._writer = writer
        self._replica = replica

    def collect(self) -> Iterator[Metric]:
        writer = self._writer()
        logged = GaugeMetricFamily(
            "autoinspect_prediction_log_entries",
            "Prediction log entries handled by the background writer, by outcome",
            labels=["outcome"],
        )
        for outcome, value in (
            ("written", writer.written),
            ("spilled", writer.spilled),
            ("replayed", writer.replayed),
            ("dropped", writer.dropped),
        ):
            logged.add_metric([outcome], value)
        yield logged
        replica = self._replica()
        yield GaugeMetricFamily("autoinspect_model_swaps", "Model sets published by this replica", value=replica.swaps)
        serving = GaugeMetricFamily(
            "autoinspect_model_serving", "1 for each model version loaded, by role", labels=["role", "version"]
        )
        for role, version in (("champion", replica.champion), ("challenger", replica.challenger)):
            if version is not None:
                serving.add_metric([role, str(version)], 1)
        yield serving
        yield GaugeMetricFamily(
            "autoinspect_fallback_version",
            "The last version that loaded, served because the champion cannot be (0: serving the champion)",
            value=replica.fallback or 0,
        )
        yield GaugeMetricFamily(
            "autoinspect_registry_refresh_errors",
            "Failed registry reads or model loads (the previous models kept serving)",
            value=replica.refresh_errors,
        )
