"""Continuous training: new reviewed annotations (or an alert, or the clock) -> a challenger on canary -> promoted
or rolled back on what reviewers said about its answers.

Each step is a plain function of the settings, so the local runner (:func:`run_continuous_training`) and the
Airflow DAG call the same code. Nothing here touches the champion until the online evidence is in: a failed or
rejected step leaves the champion serving, and a challenger that reviewers correct more often than the champion
is taken off the canary.

Steps:

1. :func:`check_triggers` - enough new reviews, a drift or performance alert, or the schedule;
2. :func:`merge_annotations` - reviews exported as annotations become the next version of the champion's
   dataset (the gold test split never changes);
3. :func:`train_challenger` - trained on it, warm-started from the champion's weights, evaluated on the fixed test
   split (and, with the champion, on the newly reviewed photos);
4. :func:`register_challenger` - gates against the champion (no class may lose more than the set AP50, clean cars
   answered "None" may not drop, optional latency budget), registered as ``challenger`` when they pass;
5. :func:`compare_challenger` - the challenger against the champion photo by photo on the test split (the
   photos whose verdict it breaks or fixes, drawn side by side), kept for the Models page and logged to its run;
6. :func:`start_canary` - a share of vehicles get it;
7. :func:`decide` - once enough canary answers are reviewed, promote it or roll it back.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric
from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.errors import ConfigError
from autoinspect.evaluation import MetricName, metric_key
from autoinspect.inference import Detector
from autoinspect.mlflow_setup import configure_mlflow
from autoinspect.monitoring.alerts import PERFORMANCE_RULE_PREFIX, Rule
from autoinspect.pipelines.annotations import export_reviews
from autoinspect.pipelines.dataset import version_dataset
from autoinspect.pipelines.labelled_photos import load_items
from autoinspect.pipelines.model_comparison import compare_on_dataset
from autoinspect.pipelines.model_evaluation import evaluate_detector
from autoinspect.pipelines.prediction import load_detector
from autoinspect.pipelines.registration import gate_rules, register_run
from autoinspect.pipelines.runner import LocalRunner
from autoinspect.pipelines.training import train_model
from autoinspect.registry.aliases import CHALLENGER, CHAMPION, promote, retire_challenger
from autoinspect.registry.deployment import DeploymentMode, get_deployment, resolve_plan, set_deployment
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.shared_reports import publish
from autoinspect.store import AlertHistory, PipelineRuns, ReviewLog, RunStatus, open_store
from autoinspect.training.base import TrainConfig
from autoinspect.training.tracking import ARTIFACT_WEIGHTS_DIR

logger = logging.getLogger(__name__)

PIPELINE = "continuous_training"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DRIFT_RULES = frozenset({Rule.INPUT_DRIFT.value, Rule.NONE_RATE_CHANGE.value})


class TriggerDecision(BaseModel):
    fire: bool
    reasons: list[str]


class CanaryEvidence(BaseModel):
    """What reviewers said about each side of the canary since it started."""

    champion_reviewed: int
    champion_overrides: int
    challenger_reviewed: int
    challenger_overrides: int

    @staticmethod
    def rate(overrides: int, reviewed: int) -> float | None:
        return overrides / reviewed if reviewed else None


class ContinuousTrainingResult(BaseModel):
    """How one pass of the pipeline ended: ``outcome`` is one of the words below, ``detail`` says why."""

    outcome: str
    """``no_trigger``, ``no_new_data``, ``rejected``, ``canary_started``, ``first_champion``, or a canary decision
    (``promoted``, ``rolled_back``, ``waiting``)."""
    detail: str
    version: int | None = None


def check_triggers(settings: Settings, *, now: datetime | None = None) -> TriggerDecision:
    """Which configured triggers fired since the last successful training."""
    now = now or datetime.now(UTC)
    rules = settings.continuous_training
    with open_store(settings.store_url) as engine:
        last = PipelineRuns(engine).last(PIPELINE, RunStatus.SUCCEEDED)
        since = last.started_at if last else EPOCH
        reviewed = len(ReviewLog(engine).between(since, now))
        alerts = {alert.rule for alert in AlertHistory(engine).between(since, now)}
    reasons = []
    if rules.new_reviews is not None and reviewed >= rules.new_reviews:
        reasons.append(f"{reviewed} new reviews (threshold {rules.new_reviews})")
    if rules.on_drift_alert and (drifted := sorted(alerts & DRIFT_RULES)):
        reasons.append(f"drift alert ({', '.join(drifted)})")
    if rules.on_performance_alert and (worse := sorted(a for a in alerts if a.startswith(PERFORMANCE_RULE_PREFIX))):
        reasons.append(f"performance alert ({', '.join(worse)})")
    if rules.schedule_hours is not None and (now - since).total_seconds() >= rules.schedule_hours * 3600:
        reasons.append(f"schedule (every {rules.schedule_hours:g} h)")
    return TriggerDecision(fire=bool(reasons), reasons=reasons)


def merge_annotations(settings: Settings) -> str | None:
    """Export new reviews and fold every pending inbox batch into the next version of the champion's dataset.

    Returns ``name@digest`` of the newest version, or ``None`` when there was nothing new. Merged batches move
    from the inbox to ``annotations/merged`` (kept, never deleted).
    """
    export_reviews(settings)
    champion = get_by_alias(settings, CHAMPION)
    if champion is None or champion.dataset is None:
        raise ConfigError("continuous training needs a champion trained on a dataset version; train one first")
    inbox = settings.annotations_inbox
    batches = sorted(path for path in inbox.iterdir() if (path / "data.yaml").is_file()) if inbox.is_dir() else []
    if not batches:
        return None
    merged_dir = inbox.parent / "merged"
    merged_dir.mkdir(parents=True, exist_ok=True)
    latest = None
    for batch in batches:
        manifest, outcome = version_dataset(
            DatasetLayout(batch), champion.dataset.name, settings, message=f"reviewed annotations {batch.name}"
        )
        logger.info("merged %s into %s (validation passed: %s)", batch.name, manifest.ref.short, outcome.passed)
        shutil.move(str(batch), merged_dir / batch.name)
        latest = f"{manifest.name}@{manifest.digest}"
    return latest


def train_challenger(settings: Settings, dataset: str, config: TrainConfig | None = None) -> str:
    """Train on ``dataset``, warm-started from the champion's weights when it used the same backend; the run id.

    Besides the fixed test split (scored by the training itself), the challenger and the champion are scored on
    the photos this version added, and both sets of figures are logged to the run (``newdata/...``)."""
    config = config or load_train_config(settings)
    with tempfile.TemporaryDirectory(prefix="autoinspect-warm-") as tmp:
        weights = _champion_weights(settings, config, Path(tmp))
        outcome = train_model(settings, dataset, config, run_name="continuous-training", init_weights=weights)
    challenger = Detector(outcome.onnx_path, thresholds=outcome.evaluation.thresholds)
    new_data = evaluate_on_new_data(settings, dataset, challenger)
    if new_data is not None:
        configure_mlflow(settings)
        metrics = {f"newdata/{key}": value for key, value in new_data.challenger.items()}
        metrics |= {f"newdata/champion/{key}": value for key, value in (new_data.champion or {}).items()}
        MlflowClient().log_batch(
            outcome.run_id, metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in metrics.items()]
        )
        logger.info(
            "on %d new photos: challenger %s, champion %s", new_data.photos, new_data.challenger, new_data.champion
        )
    return outcome.run_id


class NewDataEvaluation(BaseModel):
    """Challenger and champion on the photos a dataset version added over the champion's (reviewed traffic)."""

    photos: int
    challenger: dict[str, float]
    champion: dict[str, float] | None
    """``None`` when there is no champion to compare with."""


NEW_DATA_METRICS = (
    metric_key(MetricName.MAP50),
    metric_key(MetricName.DAMAGED_CAUGHT),
    metric_key(MetricName.CLEAN_NONE_RATE),
    metric_key(MetricName.VERDICT_EXACT_ACCURACY),
)


def evaluate_on_new_data(settings: Settings, dataset: str, challenger: Detector) -> NewDataEvaluation | None:
    """Score ``challenger`` (and the champion) on the photos of ``dataset`` that the champion's version lacks."""
    champion = get_by_alias(settings, CHAMPION)
    store = DatasetStore.for_settings(settings)
    version = store.resolve(dataset)
    known = (
        {item.image_sha256 for item in store.resolve(champion.dataset.digest).items}
        if champion and champion.dataset
        else set()
    )
    added = {(item.split, item.name) for item in version.items if item.image_sha256 not in known}
    if not added or not known:
        return None
    layout = store.materialise(version, settings.checkouts_dir)
    photos = load_items(
        layout, [item for item in layout.items() if (item.split, item.image.name) in added], desc="load new"
    )

    def figures(detector: Detector) -> dict[str, float]:
        flat = evaluate_detector(detector, photos, detector.thresholds).flat_metrics()
        return {key: flat[key] for key in NEW_DATA_METRICS if key in flat}

    return NewDataEvaluation(
        photos=len(photos),
        challenger=figures(challenger),
        champion=figures(load_detector(settings, CHAMPION)) if champion else None,
    )


def register_challenger(settings: Settings, run_id: str) -> int | None:
    """Register the run behind the gates; the version when it became challenger (or first champion), else None."""
    rules = settings.continuous_training
    gates = gate_rules(
        settings,
        max_ap50_drop=rules.max_ap50_drop,
        max_clean_none_rate_drop=rules.max_clean_none_rate_drop,
        max_damaged_caught_drop=rules.max_damaged_caught_drop,
        latency_budget_ms=rules.latency_budget_ms,
    )
    registration = register_run(settings, run_id, gates)
    if registration.alias is None:
        failures = "; ".join(check.message for check in registration.decision.failures)
        logger.warning("v%d rejected by the gates: %s", registration.model.version, failures)
        return None
    return registration.model.version


def compare_challenger(settings: Settings, run_id: str, version: int, dataset: str) -> str:
    """The challenger against the champion photo by photo on the test split it was trained with, kept under
    ``comparisons_dir/v<version>`` (the Models page shows it) and logged to the challenger's run, so a person
    sees *what* changed before the canary decides; a one-line summary."""
    folder = settings.comparisons_dir / f"v{version}"
    comparison = compare_on_dataset(settings, CHAMPION, str(version), dataset, Split.TEST, folder)
    publish(settings, folder)
    configure_mlflow(settings)
    MlflowClient().log_artifacts(run_id, str(folder), artifact_path="comparison")
    counts = ", ".join(f"{kind.value} {count}" for kind, count in comparison.counts.items())
    return f"v{version} against the champion on {comparison.photos} test photos: {counts}"


def start_canary(settings: Settings, version: int) -> None:
    set_deployment(
        settings,
        DeploymentMode.CANARY,
        canary_percent=settings.continuous_training.canary_percent,
        reason=f"v{version} from continuous training",
        actor=PIPELINE,
    )


def canary_evidence(settings: Settings, version: int, champion: int, since: datetime) -> CanaryEvidence:
    with open_store(settings.store_url) as engine:
        reviews = ReviewLog(engine).between(since, datetime.now(UTC))
    by_version = {str(v): [r for r in reviews if r.model_version == str(v)] for v in (version, champion)}
    return CanaryEvidence(
        champion_reviewed=len(by_version[str(champion)]),
        champion_overrides=sum(r.overrode for r in by_version[str(champion)]),
        challenger_reviewed=len(by_version[str(version)]),
        challenger_overrides=sum(r.overrode for r in by_version[str(version)]),
    )


def decide(settings: Settings, version: int) -> str:
    """``promoted``, ``rolled_back`` or ``waiting`` (not enough reviewed canary answers yet)."""
    plan = resolve_plan(settings)
    record = get_deployment(settings)
    if plan.challenger != version or plan.champion is None or record.mode is not DeploymentMode.CANARY:
        return "waiting" if plan.challenger == version else "superseded"
    evidence = canary_evidence(settings, version, plan.champion, record.at or EPOCH)
    needed = settings.continuous_training.min_canary_reviews
    if min(evidence.champion_reviewed, evidence.challenger_reviewed) < needed:
        logger.info("canary v%d: %s; waiting for %d reviews per side", version, evidence.model_dump(), needed)
        return "waiting"
    challenger_rate = evidence.challenger_overrides / evidence.challenger_reviewed
    champion_rate = evidence.champion_overrides / evidence.champion_reviewed
    detail = f"override rate v{version} {challenger_rate:.2f} vs champion v{plan.champion} {champion_rate:.2f}"
    if challenger_rate <= champion_rate + settings.continuous_training.max_override_rate_increase:
        promote(settings, version, f"canary: {detail}", actor=PIPELINE)
        set_deployment(settings, DeploymentMode.SINGLE, reason=f"v{version} promoted", actor=PIPELINE)
        return "promoted"
    retire_challenger(settings, f"canary: {detail}", actor=PIPELINE)
    set_deployment(settings, DeploymentMode.SINGLE, reason=f"v{version} rolled back", actor=PIPELINE)
    return "rolled_back"


def run_continuous_training(
    settings: Settings,
    *,
    trigger: str | None = None,
    config: TrainConfig | None = None,
) -> ContinuousTrainingResult:
    """One pass: settle a running canary first; otherwise check the triggers and, if one fired, train a challenger
    and put it on canary. ``trigger`` forces a run (e.g. ``"manual"``)."""
    runner = LocalRunner(settings)
    canary = _canary_version(settings)
    if canary is not None:
        with runner.run(PIPELINE + ".decide", trigger=f"canary v{canary}") as run:
            verdict = run.step("decide", lambda: decide(settings, canary))
            run.outcome = f"v{canary}: {verdict}"
            run.skipped = verdict == "waiting"
        return ContinuousTrainingResult(outcome=verdict, detail=f"canary of v{canary}", version=canary)
    decision = TriggerDecision(fire=True, reasons=[trigger]) if trigger else check_triggers(settings)
    if not decision.fire:
        return ContinuousTrainingResult(outcome="no_trigger", detail="no trigger fired")
    with runner.run(PIPELINE, trigger="; ".join(decision.reasons)) as run:
        train_on = run.step("merge_annotations", lambda: training_data(settings, decision, forced=trigger is not None))
        if train_on is None:
            run.skipped, run.outcome = True, "no new annotations"
            return ContinuousTrainingResult(outcome="no_new_data", detail="no new reviewed annotations")
        run_id = run.step("train_challenger", lambda: train_challenger(settings, train_on, config))
        version = run.step("register_challenger", lambda: register_challenger(settings, run_id))
        if version is None:
            run.outcome = f"run {run_id} rejected by the gates; the champion keeps serving"
            return ContinuousTrainingResult(outcome="rejected", detail=run.outcome)
        if _alias_version(settings, CHALLENGER) != version:
            run.outcome = f"v{version} is the first champion"
            return ContinuousTrainingResult(outcome="first_champion", detail=run.outcome, version=version)
        run.step("compare_with_champion", lambda: compare_challenger(settings, run_id, version, train_on))
        run.step("start_canary", lambda: start_canary(settings, version))
        run.outcome = f"v{version} on canary ({settings.continuous_training.canary_percent:g} %)"
    return ContinuousTrainingResult(outcome="canary_started", detail=run.outcome, version=version)


def load_train_config(settings: Settings) -> TrainConfig:
    path = settings.continuous_training.train_config
    if path is None:
        return TrainConfig()
    return TrainConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def training_data(settings: Settings, decision: TriggerDecision, *, forced: bool = False) -> str | None:
    """The dataset version to train on: new annotations merged in, else (for an alert, the schedule or a forced
    run, which retrain on the current data) the champion's; ``None`` when only new reviews could justify it."""
    merged = merge_annotations(settings)
    if merged is not None:
        return merged
    if forced or any("alert" in reason or "schedule" in reason for reason in decision.reasons):
        return champion_dataset(settings)
    return None


def record_training(settings: Settings, trigger: str, outcome: str) -> None:
    """Record a training pass run outside the local runner (an Airflow DAG run), so the triggers count from it."""
    with open_store(settings.store_url) as engine:
        runs = PipelineRuns(engine)
        runs.finish(runs.start(PIPELINE, trigger), RunStatus.SUCCEEDED, outcome)


def champion_dataset(settings: Settings) -> str:
    """``name@digest`` of the dataset version the champion was trained on."""
    champion = get_by_alias(settings, CHAMPION)
    if champion is None or champion.dataset is None:
        raise ConfigError("continuous training needs a champion trained on a dataset version; train one first")
    return f"{champion.dataset.name}@{champion.dataset.digest}"


def _champion_weights(settings: Settings, config: TrainConfig, folder: Path) -> Path | None:
    champion = get_by_alias(settings, CHAMPION)
    if champion is None or champion.run_id is None or champion.backend != config.backend:
        return None
    configure_mlflow(settings)
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=champion.run_id, artifact_path=ARTIFACT_WEIGHTS_DIR, dst_path=str(folder)
        )
    )
    files = sorted(path for path in local.rglob("*") if path.is_file())
    if not files:
        logger.warning("champion v%d has no weights artifact: training from the pretrained backbone", champion.version)
        return None
    logger.info("warm start from champion v%d (%s)", champion.version, files[0].name)
    return files[0]


def _canary_version(settings: Settings) -> int | None:
    """The challenger on canary, from the one registry read that gives both the mode and the alias."""
    plan = resolve_plan(settings)
    return plan.challenger if plan.mode is DeploymentMode.CANARY else None


def _alias_version(settings: Settings, alias: str) -> int | None:
    found = get_by_alias(settings, alias)
    return found.version if found else None
