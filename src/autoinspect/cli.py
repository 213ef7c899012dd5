"""The ``autoinspect`` command: parses arguments, calls the library, prints what happened.

No logic lives here; every command is one call into ``pipelines`` or ``data``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from autoinspect.config import Settings, get_settings
from autoinspect.data.classmap import ClassMap
from autoinspect.data.formats import ExportFormat, ImportFormat, export_dataset
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.profiling import profile_dataset
from autoinspect.data.synthetic import generate_dataset
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.errors import AutoInspectError
from autoinspect.evaluation import EvaluationResult
from autoinspect.pipelines.dataset import as_layout, prepare_dataset, validate_dataset, version_dataset
from autoinspect.private_files import private_dir
from autoinspect.progress import figure
from autoinspect.shared_reports import publish
from autoinspect.store import ApiKeys, create_schema, make_engine
from autoinspect.training.base import BackendName, TrainConfig

PLAIN_HELP = None
"""Click's plain help: flags read ``--serve / --no-serve`` (not ``<bool>``) and ``[default: ...]`` stays text."""
app = typer.Typer(
    help="AutoInspect: scratches and dents in vehicle photos, and the ML loop around them.", rich_markup_mode=PLAIN_HELP
)
data_app = typer.Typer(help="Import, validate, version and profile annotated photos.", rich_markup_mode=PLAIN_HELP)
version_app = typer.Typer(help="Immutable dataset versions.", rich_markup_mode=PLAIN_HELP)
models_app = typer.Typer(
    help="Registered model versions, aliases, promotion and rollback.", rich_markup_mode=PLAIN_HELP
)
deploy_app = typer.Typer(
    help="How serving splits traffic: single, shadow, canary, blue-green.", rich_markup_mode=PLAIN_HELP
)
keys_app = typer.Typer(
    help="API keys of the prediction service (stored hashed; shown once).", rich_markup_mode=PLAIN_HELP
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(deploy_app, name="deploy")
app.add_typer(keys_app, name="keys")
review_app = typer.Typer(
    help="The review queue: accept or correct flagged answers, export reviews as annotations.",
    rich_markup_mode=PLAIN_HELP,
)
app.add_typer(review_app, name="review")
ct_app = typer.Typer(
    help="Continuous training: triggers, challenger, canary, promotion on the online evidence.",
    rich_markup_mode=PLAIN_HELP,
)
app.add_typer(ct_app, name="ct")
data_app.add_typer(version_app, name="version")

MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Class mapping SOURCE=TARGET, or SOURCE= to drop (repeatable), e.g. dunt=dent."),
]
MapFileOption = Annotated[Path | None, typer.Option("--map-file", help="YAML mapping {source: target or null}.")]


_DEFAULTS = TrainConfig()
"""The default recipe, shown in ``train --help`` (the options themselves default to "not given", so a --config
file's values are not overridden)."""
OWN_INFO_LOGGERS = ("autoinspect", "uvicorn")
DEMO_NOTE = " (DEMO: trained on synthetic panels, it will not find damage on real photos; train on yours with --data)"


def _settings() -> Settings:
    return get_settings()


def _class_map(specs: list[str] | None, mapping_file: Path | None) -> ClassMap | None:
    if not specs and mapping_file is None:
        return None
    return ClassMap.from_specs(specs or (), mapping_file)


def _echo_json(content: Any) -> None:
    typer.echo(json.dumps(content, indent=2, default=str))


QUICK_EPOCHS = 5
QUICK_IMGSZ = 320
"""The first model on the synthetic sample: enough to show the loop, a couple of minutes on a laptop CPU."""


def first_model_config(*, synthetic: bool, epochs: int | None, imgsz: int | None) -> TrainConfig:
    """What ``up`` trains when the registry has no champion: on the synthetic sample a quick model that only shows
    the loop working, on real data the default recipe; options given win either way."""
    quick = {"epochs": QUICK_EPOCHS, "imgsz": QUICK_IMGSZ} if synthetic else {}
    chosen = {key: value for key, value in {"epochs": epochs, "imgsz": imgsz}.items() if value is not None}
    return TrainConfig.model_validate(quick | chosen)


@app.callback()
def _configure(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # our own progress, and the server's start and requests; other libraries' INFO only with -v
        for name in OWN_INFO_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow's own handler ignores the root level
    private_dir(get_settings().home)  # databases, keys and photos live there: owner-only from the first command


@app.command()
def up(
    data: Annotated[Path | None, typer.Option(help="Your dataset (YOLO folder, COCO or Label Studio JSON).")] = None,
    images: Annotated[Path | None, typer.Option(help="Images folder for COCO / Label Studio.")] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the folder name).")] = None,
    class_map: MapOption = None,
    map_file: MapFileOption = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Epochs of the first model (default: 5 on the synthetic sample, else the recipe's)."),
    ] = None,
    imgsz: Annotated[
        int | None, typer.Option(min=32, help="Input size of the first model (default: 320 synthetic, else 384).")
    ] = None,
    serve: Annotated[
        bool, typer.Option(help="Start API + UI + scheduler (--no-serve: prepare and train only).")
    ] = True,
    api_port: Annotated[int | None, typer.Option(help="Default: serving.port (8000).")] = None,
    ui_port: Annotated[int | None, typer.Option(help="Default: ui.port (8501).")] = None,
) -> None:
    """The whole loop on embedded defaults: data (the synthetic sample when none is given), a first model when the
    registry is empty, then the API, the UI and the local scheduler until Ctrl-C."""
    settings = _settings()
    result = prepare_dataset(settings, data, name=name, class_map=_class_map(class_map, map_file), images_dir=images)
    version = result.version
    typer.echo(f"dataset version {version.ref.short}: {version.split_counts()} boxes {version.box_counts()}")
    typer.echo(f"validation: {'PASS' if result.validation.passed else 'FAIL'} {result.validation.report_html}")
    if result.validation.quarantine:
        typer.echo(f"quarantined: {result.validation.quarantine}")
    if result.profile:
        typer.echo(f"profile: {result.profile.html}  contact sheet: {result.profile.contact_sheet}")
    from autoinspect.pipelines.stack import Stack, ensure_champion, local_admin_key

    config = first_model_config(synthetic=data is None, epochs=epochs, imgsz=imgsz)
    champion = ensure_champion(settings, f"{version.name}@{version.digest}", config, demo=data is None)
    typer.echo(f"champion: version {champion.version}{DEMO_NOTE if champion.demo else ''}")
    if not serve:
        return
    stack = Stack(settings, api_port=api_port, ui_port=ui_port)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager stopping it
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack.start()
        typer.echo(f"sign in to the UI with the local admin key in {local_admin_key(settings)} (owner-only file)")
        typer.echo(f"API: {stack.api_url}/docs   UI: {stack.ui_url}   (Ctrl-C stops everything)")
        while not stopping.wait(0.5):
            pass
        typer.echo("stopping...")
    finally:
        stack.stop()


@data_app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="YOLO folder, COCO JSON or Label Studio JSON export.")],
    fmt: Annotated[ImportFormat | None, typer.Option("--format", help="Default: detected.")] = None,
    images: Annotated[Path | None, typer.Option(help="Images folder for COCO / Label Studio.")] = None,
    split: Annotated[Split | None, typer.Option(help="Put every image in this split.")] = None,
    class_map: MapOption = None,
    map_file: MapFileOption = None,
) -> None:
    """Import an annotation export into the canonical layout under the AutoInspect home."""
    layout, summary = as_layout(
        source,
        _settings(),
        fmt=fmt,
        class_map=_class_map(class_map, map_file) or ClassMap.from_specs(),
        images_dir=images,
        split=split,
    )
    if summary is not None:
        typer.echo(f"images {summary.images}, boxes {summary.boxes}, dropped {summary.dropped}")
        for problem in summary.problems:
            typer.echo(f"  problem: {problem.file}: {problem.message}")
    typer.echo(str(layout.root))


@data_app.command()
def validate(
    folder: Annotated[Path, typer.Argument(help="Dataset folder in the canonical (YOLO) layout.")],
    report_dir: Annotated[Path | None, typer.Option(help="Where report.json and report.html go.")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on warnings too.")] = False,
) -> None:
    """Check every image and label; bad files are copied to quarantine with the reason. Exit 1 on failure."""
    report, _, outcome = validate_dataset(DatasetLayout(folder), _settings(), report_dir)
    typer.echo(
        f"{report.images} images, {len(report.errors)} errors, {len(report.issues) - len(report.errors)} warnings"
    )
    for check, count in sorted(report.counts_by_check.items()):
        typer.echo(f"  {check}: {count}")
    for stats in report.box_stats:
        below = ", ".join(f"<{t}px {share:.0%}" for t, share in stats.share_below_px.items())
        typer.echo(f"  {stats.label}: {stats.boxes} boxes, median shorter side {stats.min_side_px_median} px; {below}")
    typer.echo(f"report: {outcome.report_html}")
    if outcome.quarantine:
        typer.echo(f"quarantined: {outcome.quarantine}")
    failed = not report.passed or (strict and bool(report.issues))
    typer.echo("FAIL" if failed else "PASS")
    raise typer.Exit(1 if failed else 0)


@data_app.command()
def profile(
    source: Annotated[str, typer.Argument(help="Dataset folder, or a version reference (name, name@digest).")],
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """EDA profile of the per-image features (HTML) and a contact sheet with boxes drawn."""
    settings = _settings()
    if Path(source).is_dir():
        layout = DatasetLayout(Path(source))
    else:
        store = DatasetStore.for_settings(settings)
        layout = store.materialise(store.resolve(source), settings.checkouts_dir)
    target = out or settings.reports_dir / "profile" / layout.root.name
    result = profile_dataset(layout, target, workers=settings.worker_count, title=f"{source} profile")
    publish(settings, target)
    typer.echo(f"profile: {result.html}\ncontact sheet: {result.contact_sheet}\nfeatures: {result.features_csv}")


@data_app.command()
def issues(
    data: Annotated[str, typer.Argument(help="Dataset version (name, name@digest) or a dataset folder.")],
    folds: Annotated[
        int, typer.Option(min=2, help="Fold models; each photo is predicted by one not trained on it.")
    ] = 3,
    config: Annotated[
        Path | None, typer.Option(help="Fold models' run configuration YAML (TrainConfig fields).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Fold models' epochs [default: 3, backbone frozen].")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Fold models' input side in pixels.")] = None,
    drop: Annotated[int, typer.Option(min=0, help="Commit a version without the N worst flagged train photos.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: under the home).")] = None,
) -> None:
    """Suspected label errors (missing box, wrong class, misplaced box, damage labelled clean) in the train and val
    photos, ranked by cleanlab from out-of-sample predictions of K fold models; HTML with crops, CSV, contact sheet."""
    from autoinspect.pipelines.label_issues import find_dataset_label_issues, fold_recipe

    settings = _settings()
    given = {k: v for k, v in {"epochs": epochs, "imgsz": imgsz}.items() if v is not None}
    run_config = _train_config(config, given) if config else fold_recipe().model_copy(update=given)
    reference = _dataset_ref(settings, data)
    manifest = DatasetStore.for_settings(settings).resolve(reference)
    folder = out or settings.label_issues_dir / manifest.digest[:12]
    run = find_dataset_label_issues(settings, reference, run_config, folds=folds, out_dir=folder, drop=drop)
    publish(settings, folder)
    report = run.report
    counts = ", ".join(f"{kind} {count}" for kind, count in report.counts().items())
    typer.echo(
        f"{report.photos} photos, {len(report.flagged)} flagged (fold models {run.fold_seconds:.0f} s, ranking "
        f"{run.rank_seconds:.0f} s); issues: {counts}"
    )
    for issue in report.issues[:10]:
        typer.echo(f"  {issue.score:.3f} {issue.kind.value:<22} {issue.label:<10} {issue.image_id}")
    if run.cleaned:
        typer.echo(f"without the {len(run.dropped)} worst train photos: version {run.cleaned.short}")
    typer.echo(f"report: {folder / 'label_issues.html'}")


@data_app.command("labelstudio-tasks")
def labelstudio_tasks(
    out: Annotated[Path, typer.Argument(help="Folder for tasks.json, images/ and label_config.xml.")],
    dataset: Annotated[str | None, typer.Option(help="Every photo of this dataset version.")] = None,
    issues: Annotated[Path | None, typer.Option(help="The flagged photos of a label-issues report folder.")] = None,
    review: Annotated[bool, typer.Option("--review", help="The review queue, with the answers served.")] = False,
    model: Annotated[str | None, typer.Option(help="Pre-annotate with this model (file, version or alias).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most review-queue answers sent.")] = 500,
) -> None:
    """Photos as Label Studio tasks with the model's boxes as pre-annotations; the finished export comes back with
    `autoinspect data import EXPORT --images OUT`, who labelled what kept in the dataset version."""
    from autoinspect.pipelines.labelstudio_tasks import export_tasks

    path = export_tasks(_settings(), out, dataset=dataset, issues=issues, review=review, model=model, limit=limit)
    typer.echo(f"tasks: {path}\nlabelling interface: {out / 'label_config.xml'}")
    typer.echo(
        f"serve the photos: LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
        f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={out.resolve()} label-studio start"
    )


@data_app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="New dataset folder.")],
    images: Annotated[int, typer.Option(help="How many photos.")] = 60,
    seed: Annotated[int, typer.Option(help="Same seed, same files.")] = 0,
) -> None:
    """Generate synthetic painted panels with scratches and dents (for demos and tests)."""
    layout = generate_dataset(out, images, seed=seed, classes=_settings().classes)
    typer.echo(str(layout.root))


@data_app.command()
def export(
    folder: Annotated[Path, typer.Argument(help="Dataset folder in the canonical layout.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="coco or labelstudio.")],
    out: Annotated[Path, typer.Option(help="Output JSON file.")],
) -> None:
    """Export a dataset folder as COCO or Label Studio JSON."""
    typer.echo(str(export_dataset(folder, fmt, out)))


@version_app.command("create")
def version_create(
    folder: Annotated[Path, typer.Argument(help="Dataset folder in the canonical layout.")],
    name: Annotated[str, typer.Option(help="Dataset name; an existing name gets a new version on top.")],
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    allow_test_change: Annotated[bool, typer.Option(help="Let this version change the gold test split.")] = False,
) -> None:
    """Validate a folder and commit what passed as a new immutable version."""
    manifest, outcome = version_dataset(
        DatasetLayout(folder), name, _settings(), message=message, allow_test_change=allow_test_change
    )
    typer.echo(f"{manifest.ref.short} {manifest.split_counts()} excluded={len(manifest.excluded)}")
    typer.echo(f"digest: {manifest.digest}\nreport: {outcome.report_html}")


@version_app.command("list")
def version_list(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Dataset names, or the history of one name (oldest first)."""
    store = DatasetStore.for_settings(_settings())
    for dataset in [name] if name else store.names():
        for manifest in store.history(dataset):
            created = manifest.created_at.isoformat(timespec="seconds")
            typer.echo(f"{manifest.ref.short}  {created}  {manifest.split_counts()}  {manifest.message}")


@version_app.command("show")
def version_show(ref: Annotated[str, typer.Argument(help="name, name@digest-prefix or digest prefix")]) -> None:
    """A version's manifest summary as JSON."""
    manifest = DatasetStore.for_settings(_settings()).resolve(ref)
    _echo_json(
        {
            "name": manifest.name,
            "digest": manifest.digest,
            "parent": manifest.parent,
            "created_at": manifest.created_at,
            "message": manifest.message,
            "classes": manifest.classes,
            "images": manifest.split_counts(),
            "boxes": manifest.box_counts(),
            "excluded": [e.model_dump() for e in manifest.excluded],
            "provenance": {
                f"{item.split.value}/{item.name}": manifest.provenance[item.image_sha256]
                for item in manifest.items
                if item.image_sha256 in manifest.provenance
            },
        }
    )


@version_app.command("checkout")
def version_checkout(ref: Annotated[str, typer.Argument()], out: Annotated[Path, typer.Argument()]) -> None:
    """Materialise a version as a YOLO folder (read-only files)."""
    layout = DatasetStore.for_settings(_settings()).checkout(ref, out)
    typer.echo(str(layout.root))


def _dataset_ref(settings: Settings, data: str) -> str:
    """A folder is validated and versioned first; anything else is a version reference."""
    folder = Path(data)
    if folder.is_dir():
        manifest, _ = version_dataset(
            DatasetLayout(folder), folder.name, settings, message=f"for training from {folder}"
        )
        return manifest.digest
    return data


def _train_config(config: Path | None, overrides: dict[str, Any]) -> TrainConfig:
    base = yaml.safe_load(config.read_text(encoding="utf-8")) if config else {}
    return TrainConfig.model_validate({**(base or {}), **{k: v for k, v in overrides.items() if v is not None}})


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Dataset version (name, name@digest) or a dataset folder.")],
    config: Annotated[Path | None, typer.Option(help="Run configuration YAML (TrainConfig fields).")] = None,
    backend: Annotated[
        BackendName | None,
        typer.Option(help=f"lite (pretrained EfficientNet-Lite) or yolo [default: {_DEFAULTS.backend}]"),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help=f"[default: {_DEFAULTS.epochs}]")] = None,
    imgsz: Annotated[int | None, typer.Option(help=f"Square input side in pixels [default: {_DEFAULTS.imgsz}]")] = None,
    batch: Annotated[int | None, typer.Option(help=f"Photos per step [default: {_DEFAULTS.batch}]")] = None,
    device: Annotated[
        str | None, typer.Option(help=f"auto, cpu, cuda, cuda:1... [default: {_DEFAULTS.device}]")
    ] = None,
    search: Annotated[int, typer.Option(help="Optuna trials (nested MLflow runs); 0 trains once.")] = 0,
) -> None:
    """Train a detector, keep the checkpoint best on val, calibrate thresholds and measure the test split."""
    from autoinspect.pipelines.training import search as run_search
    from autoinspect.pipelines.training import train_model

    settings = _settings()
    run_config = _train_config(
        config, {"backend": backend, "epochs": epochs, "imgsz": imgsz, "batch": batch, "device": device}
    )
    reference = _dataset_ref(settings, data)
    outcome = (
        run_search(settings, reference, run_config, search) if search else train_model(settings, reference, run_config)
    )
    test = outcome.evaluation.test
    typer.echo(f"run: {outcome.run_id}\nmodel: {outcome.onnx_path}\ndataset: {outcome.dataset.short}")
    typer.echo(f"thresholds (val-calibrated): {outcome.evaluation.thresholds}")
    _echo_summary(test)
    typer.echo(f"next: autoinspect register --run {outcome.run_id}")


def _echo_summary(result: EvaluationResult) -> None:
    detection, image = result.detection, result.image_level
    per_class = ", ".join(f"{label} {figure(ap.ap50)}" for label, ap in detection.per_class.items())
    typer.echo(f"test AP50 {per_class}; mAP50 {figure(detection.map50)}, mAP50-95 {figure(detection.map50_95)}")
    presence = ", ".join(f"{label} {figure(m.f1)}" for label, m in image.per_class.items())
    typer.echo(
        f"damaged caught {figure(image.damaged_caught)}, clean cars answered None {figure(image.clean_none_rate)}; "
        f"verdict F1 per class: {presence}"
    )


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="An .onnx file, a registry version or alias (champion).")],
    data: Annotated[str, typer.Option(help="Dataset version (name, name@digest).")],
    split: Annotated[Split, typer.Option()] = Split.TEST,
    out: Annotated[Path | None, typer.Option(help="Write the full evaluation JSON here.")] = None,
) -> None:
    """Measure a model on one split through the serving path, at the thresholds it serves with."""
    from autoinspect.pipelines.prediction import evaluate_model

    result = evaluate_model(_settings(), model, data, split)
    _echo_summary(result)
    for label, point in result.operating_point.items():
        typer.echo(f"  {label}: precision {point.precision} recall {point.recall} f1 {point.f1}")
    if out:
        out.write_text(result.model_dump_json(indent=1), encoding="utf-8")
        typer.echo(f"written: {out}")


@app.command()
def compare(
    baseline: Annotated[str, typer.Argument(help="The model in service: an .onnx file, a registry version or alias.")],
    candidate: Annotated[str, typer.Argument(help="The model to compare with it (e.g. challenger).")],
    data: Annotated[str, typer.Option(help="Dataset version (name, name@digest).")],
    split: Annotated[Split, typer.Option()] = Split.TEST,
    out: Annotated[Path | None, typer.Option(help="Folder for the report (default: under the home).")] = None,
) -> None:
    """The photos where two models answer differently, costliest first (verdicts the candidate breaks, then those
    it fixes), with both answers drawn side by side in an HTML report."""
    from autoinspect.pipelines.model_comparison import compare_on_dataset

    settings = _settings()
    folder = out or settings.comparisons_dir / f"{_slug(baseline)}-vs-{_slug(candidate)}"
    comparison = compare_on_dataset(settings, baseline, candidate, data, split, folder)
    counts = ", ".join(f"{kind.value} {count}" for kind, count in comparison.counts.items())
    typer.echo(f"{comparison.photos} photos: {comparison.identical} answered alike; {counts}")
    for d in comparison.differences[:10]:
        typer.echo(f"  {d.kind.value:<15} {d.image_id}: {' '.join(d.baseline)} -> {' '.join(d.candidate)}")
    typer.echo(f"report: {folder / 'comparison.html'}")


def _slug(model: str) -> str:
    """A model reference as a folder-name part (an ONNX path becomes its file stem)."""
    return Path(model).stem if model.endswith(".onnx") else model


@app.command()
def register(
    run: Annotated[str, typer.Option(help="MLflow run id printed by `autoinspect train`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Give the alias even if the gates fail (recorded as forced).")
    ] = False,
) -> None:
    """Register a trained run's model; the quality floors and the gates against the champion decide its alias."""
    from autoinspect.pipelines.registration import register_run

    registration = register_run(_settings(), run, force=force)
    for check in registration.decision.checks:
        typer.echo(f"  {'pass' if check.passed else 'FAIL'} {check.message}")
    alias = registration.alias or "none (gates failed; --force to promote anyway)"
    typer.echo(f"version {registration.model.version}: alias {alias}{' (forced)' if registration.forced else ''}")


@app.command()
def quantize(
    run: Annotated[str | None, typer.Option(help="MLflow run id of a trained model.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Or a registered version or alias (champion): its training run.")
    ] = None,
    calibration_photos: Annotated[
        int | None, typer.Option(min=1, help="Val photos that set the int8 ranges (default: settings).")
    ] = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Register the variant when it passes the gate.")
    ] = True,
) -> None:
    """The int8 variant of a trained model: quantized, evaluated like its float model on the same test split, and
    registered only when it loses no more than `quantization` settings allow (then the champion gates apply)."""
    from autoinspect.pipelines.quantization import quantize_run
    from autoinspect.registry.mlflow_registry import get_version

    if (run is None) == (model is None):
        raise typer.BadParameter("give --run or --model, not both")
    settings = _settings()
    source = run or get_version(settings, str(model)).run_id
    if source is None:
        raise typer.BadParameter(f"version {model} records no training run")
    outcome = quantize_run(settings, source, calibration_photos=calibration_photos, register=register)
    typer.echo(f"run: {outcome.run_id} (int8 of {source})")
    typer.echo(f"model: {outcome.onnx_path}")
    _echo_summary(outcome.evaluation.test)
    float_ms, int8_ms = outcome.source_metrics.get("latency_ms_p50"), outcome.evaluation.latency_ms_p50
    if float_ms:
        typer.echo(f"latency p50: {int8_ms:.0f} ms (float {float_ms:.0f} ms, timed at their own evaluations)")
    for check in outcome.decision.checks:
        typer.echo(f"  {'pass' if check.passed else 'FAIL'} {check.message}")
    if not outcome.decision.passed:
        typer.echo("not registered: the int8 variant lost more than `quantization` settings allow")
        raise typer.Exit(1)
    if outcome.registration is not None:
        registration = outcome.registration
        alias = registration.alias or "none (failed the gates against the champion)"
        typer.echo(f"version {registration.model.version} (int8): alias {alias}")


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="Photos.")],
    model: Annotated[str, typer.Option(help="An .onnx file, a registry version or alias.")] = "champion",
) -> None:
    """Verdict and boxes for each photo, one JSON object per line."""
    from autoinspect.pipelines.prediction import load_detector, predict_files

    detector = load_detector(_settings(), model)
    for result in predict_files(detector, images):
        if result.prediction is None:
            typer.echo(json.dumps({"file": result.file, "error": result.error}))
            continue
        prediction = result.prediction
        typer.echo(
            json.dumps(
                {
                    "file": result.file,
                    "verdict": prediction.verdict.names,
                    "damaged": not prediction.verdict.is_none,
                    "confidence": round(prediction.max_score, 4),
                    "needs_review": prediction.needs_review,
                    "detections": [d.model_dump() for d in prediction.detections],
                    "latency_ms": round(prediction.latency_ms, 2),
                }
            )
        )


@app.command("inspect-vehicle")
def inspect_vehicle(
    vehicle: Annotated[str, typer.Argument(help="The vehicle: VIN, plate or fleet id.")],
    photos: Annotated[list[Path], typer.Argument(help="Its photos.")],
    view: Annotated[
        list[str] | None,
        typer.Option(help="The view of each photo, in order: front, rear, left, right, roof, detail ('' unknown)."),
    ] = None,
    reference: Annotated[str | None, typer.Option(help="Your reference (claim, contract, work order).")] = None,
    request_id: Annotated[str | None, typer.Option(help="Idempotency key: a retry returns the stored answer.")] = None,
    api_url: Annotated[str | None, typer.Option(help="The API (default: ui.api_url).")] = None,
    key: Annotated[
        str | None, typer.Option(envvar="AUTOINSPECT_API_KEY", help="An API key with the inspect scope.")
    ] = None,
) -> None:
    """Inspect one vehicle from several photos through the API: prints the stored inspection as JSON (each photo's
    answer and the vehicle summary: damaged, clean, or incomplete when the photos do not cover the vehicle)."""
    from autoinspect.ui.client import ApiClient, ApiError

    if view and len(view) != len(photos):
        raise typer.BadParameter(f"{len(view)} --view for {len(photos)} photos: give one per photo, or none")
    if not key:
        raise typer.BadParameter("no API key: pass --key or set AUTOINSPECT_API_KEY", param_hint="--key")
    files = [(path.name, path.read_bytes()) for path in photos]
    try:
        with ApiClient(api_url or _settings().ui.api_url, key) as client:
            answer = client.inspect_vehicle(
                vehicle, files, views=view, client_reference=reference, request_id=request_id
            )
    except ApiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(answer, indent=2))
    typer.echo(f"{answer['inspection_id']}: {answer['summary']['detail']}", err=True)


@app.command()
def batch(
    folder: Annotated[str, typer.Argument(help="Folder of photos (searched recursively), or s3://bucket/prefix.")],
    out: Annotated[Path, typer.Option(help="Merged predictions, one JSON object per photo (JSON lines).")],
    shard_size: Annotated[int, typer.Option(help="Photos per shard (an Airflow mapped task each).")] = 500,
    model: Annotated[str, typer.Option(help="An .onnx file, a registry version or alias.")] = "champion",
) -> None:
    """Batch inference in this process, shard after shard (the autoinspect_batch_inference DAG, without Airflow)."""
    from autoinspect.pipelines.batch_inference import run_batch

    source = folder if folder.startswith("s3://") else Path(folder)
    summary = run_batch(_settings(), source, shard_size=shard_size, out=out, model=model)
    counts = f"needs review {summary.needs_review}, unreadable {summary.errors}"
    typer.echo(f"{summary.files} photos: {summary.verdicts}, {counts}")
    typer.echo(f"written: {summary.output}")


@models_app.command("list")
def models_list() -> None:
    """Registered versions with their aliases and key metrics."""
    from autoinspect.registry.mlflow_registry import list_versions

    for version in list_versions(_settings()):
        metrics = {k: round(v, 3) for k, v in version.metrics.items() if "/" not in k or k.startswith("image/")}
        demo = DEMO_NOTE if version.demo else ""
        backend = version.backend if version.precision == "float32" else f"{version.backend} {version.precision}"
        typer.echo(f"v{version.version} {','.join(version.aliases) or '-'} {backend} {metrics}{demo}")


@models_app.command()
def promote(
    version: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option()] = "manual promotion",
) -> None:
    """Make a version the champion (the previous one is kept for rollback)."""
    from autoinspect.registry.aliases import promote as promote_version

    move = promote_version(_settings(), version, reason)
    typer.echo(move.model_dump_json())


@models_app.command()
def rollback(reason: Annotated[str, typer.Option()] = "manual rollback") -> None:
    """Move the champion alias back to the previous champion."""
    from autoinspect.registry.aliases import rollback as rollback_champion

    typer.echo(rollback_champion(_settings(), reason).model_dump_json())


@models_app.command()
def challenger(
    version: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option()] = "manual choice",
) -> None:
    """Put a version on trial as the challenger (shadow, canary or blue-green standby)."""
    from autoinspect.registry.aliases import CHALLENGER, set_alias

    typer.echo(set_alias(_settings(), CHALLENGER, version, reason=reason).model_dump_json())


@deploy_app.command("status")
def deploy_status() -> None:
    """The deployment record and the versions it routes to."""
    from autoinspect.registry.deployment import get_deployment, resolve_plan

    settings = _settings()
    record, plan = get_deployment(settings), resolve_plan(settings)
    _echo_json({"record": record.model_dump(mode="json"), "plan": plan.model_dump()})


@deploy_app.command("set")
def deploy_set(
    mode: Annotated[str, typer.Argument(help="single | shadow | canary | bluegreen")],
    percent: Annotated[float, typer.Option("--percent", help="Canary share of traffic, in percent.")] = 0.0,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Change the mode; every replica applies it on its next poll."""
    from autoinspect.registry.deployment import DeploymentMode, set_deployment

    try:
        chosen = DeploymentMode(mode)
    except ValueError:
        raise typer.BadParameter(f"mode must be one of {[m.value for m in DeploymentMode]}") from None
    typer.echo(set_deployment(_settings(), chosen, canary_percent=percent, reason=reason).model_dump_json())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. intake-app.")],
    scope: Annotated[list[str], typer.Option("--scope", help="inspect, review or admin (repeatable).")],
) -> None:
    """Issue a key; the token is printed once and only its hash is stored."""
    issued = _api_keys().create(name, scope)
    typer.echo(json.dumps({"key_id": issued.key.key_id, "scopes": sorted(issued.key.scopes), "token": issued.token}))


@keys_app.command("list")
def keys_list() -> None:
    """Every key (revoked ones too), without secrets."""
    for key in _api_keys().list():
        typer.echo(key.model_dump_json())


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()]) -> None:
    """Revoke a key at once: the next request with it gets 401."""
    typer.echo(_api_keys().revoke(key_id).model_dump_json())


def _api_keys() -> ApiKeys:
    engine = make_engine(_settings().store_url)
    create_schema(engine)
    return ApiKeys(engine)


ReviewerOption = Annotated[str | None, typer.Option(help="Who reviewed (default: the OS user).")]


@review_app.command("list")
def review_list(limit: Annotated[int, typer.Option(min=1, help="Most answers listed.")] = 50) -> None:
    """Flagged answers nobody has reviewed yet, newest first: one JSON line each."""
    from autoinspect.pipelines.annotations import pending_reviews

    shown = {"request_id", "created_at", "model_version", "route", "verdict", "max_score", "detections"}
    for entry in pending_reviews(_settings(), limit):
        typer.echo(entry.model_dump_json(include=shown | {"image_sha256", "vehicle_id"}))


@review_app.command("accept")
def review_accept(request_id: Annotated[str, typer.Argument()], reviewer: ReviewerOption = None) -> None:
    """The model's detections were right: store them as the photo's truth."""
    from autoinspect.pipelines.annotations import submit_review

    review = submit_review(_settings(), request_id, reviewer=reviewer or _os_user(), labels=None)
    typer.echo(review.model_dump_json())


@review_app.command("correct")
def review_correct(
    request_id: Annotated[str, typer.Argument()],
    box: Annotated[
        list[str] | None,
        typer.Option("--box", help='A region "CLASS x1 y1 x2 y2", normalised to [0, 1] (repeatable); none: no damage.'),
    ] = None,
    reviewer: ReviewerOption = None,
) -> None:
    """Store the damage really in the photo (no --box: the photo shows none)."""
    from autoinspect.pipelines.annotations import submit_review

    labels = [_label_spec(spec) for spec in box or []]
    review = submit_review(_settings(), request_id, reviewer=reviewer or _os_user(), labels=labels)
    typer.echo(review.model_dump_json())


@review_app.command("export")
def review_export(
    since: Annotated[str | None, typer.Option(help="Only reviews made from this ISO time on (naive: UTC).")] = None,
) -> None:
    """Write the reviews not exported yet as a new YOLO batch in the annotations inbox."""
    from datetime import UTC, datetime

    from autoinspect.pipelines.annotations import export_reviews

    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(f"--since {since!r} is not an ISO date or time") from None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    result = export_reviews(_settings(), since=start)
    _echo_json(
        {
            "batch": result.batch,
            "exported": len(result.exported),
            "duplicates": result.duplicates,
            "skipped": [skip.model_dump() for skip in result.skipped],
            "already_exported": result.already_exported,
        }
    )


def _label_spec(spec: str) -> tuple[str, float, float, float, float]:
    parts = spec.split()
    try:
        if len(parts) != 5:
            raise ValueError
        return parts[0], float(parts[1]), float(parts[2]), float(parts[3]), float(parts[4])
    except ValueError:
        raise typer.BadParameter(f"--box {spec!r}: expected CLASS x1 y1 x2 y2, e.g. 'dent 0.1 0.2 0.3 0.4'") from None


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise typer.BadParameter("cannot tell who you are from the OS; pass --reviewer NAME") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: serving.host (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default: serving.port (8000).")] = None,
) -> None:
    """Run the prediction API on the registry's champion (Ctrl-C stops it after flushing the log)."""
    import uvicorn

    from autoinspect.serving.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.serving.host,
        port=port or settings.serving.port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


@app.command()
def ui(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Default: ui.port (8501).")] = None,
) -> None:
    """Run the operator UI (Streamlit) on loopback; it calls the API at ui.api_url with each person's own key."""
    import sys

    from autoinspect.ui import streamlit_command

    settings = _settings()
    command = streamlit_command(port or settings.ui.port, settings.serving.max_upload_bytes)
    # Become Streamlit (same pid, same environment): a stop signal reaches it directly and leaves no child behind.
    os.execv(sys.executable, command)


@app.command()
def monitor(
    hours: Annotated[
        float | None, typer.Option(min=0.001, help="Window length (default: monitoring.window_hours).")
    ] = None,
) -> None:
    """Monitor the last window of traffic: KPIs, drift reports, performance on reviews, alerts."""
    from autoinspect.pipelines.monitoring import run_monitoring

    report = run_monitoring(_settings(), hours=hours)
    kpis = report.kpis

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    p95 = "n/a" if kpis.latency_p95_ms is None else f"{kpis.latency_p95_ms:.0f} ms"
    typer.echo(str(report.summary_json))
    typer.echo(
        f"{kpis.answered} answers ({kpis.shadow} shadow), automation {share(kpis.automation_rate)}, "
        f"review {share(kpis.review_rate)}, override {share(kpis.override_rate)}, "
        f"None {share(kpis.none_rate)}, p95 {p95}; "
        f"alerts sent: {', '.join(alert.rule for alert in report.alerts_sent) or 'none'}"
    )


@ct_app.command("run")
def ct_run(
    trigger: Annotated[
        str | None, typer.Option(help="Force a training with this reason (default: only when a trigger fires).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML of TrainConfig fields for the challenger.")] = None,
) -> None:
    """One pass: settle a running canary, or check the triggers and train + canary a challenger."""
    from autoinspect.pipelines.continuous_training import run_continuous_training

    train_config = TrainConfig.model_validate(yaml.safe_load(config.read_text(encoding="utf-8"))) if config else None
    typer.echo(run_continuous_training(_settings(), trigger=trigger, config=train_config).model_dump_json())


@ct_app.command("check")
def ct_check() -> None:
    """Which triggers would fire now, without training."""
    from autoinspect.pipelines.continuous_training import check_triggers

    typer.echo(check_triggers(_settings()).model_dump_json())


@ct_app.command("history")
def ct_history(limit: Annotated[int, typer.Option()] = 10) -> None:
    """Recent pipeline runs with their steps, newest first."""
    from autoinspect.pipelines.runner import LocalRunner

    for run in LocalRunner(_settings()).history(limit=limit):
        steps = ", ".join(f"{step.step}:{step.status.value}" for step in run.steps)
        typer.echo(
            f"#{run.id} {run.pipeline} {run.status.value} {run.started_at:%Y-%m-%d %H:%M} [{steps}] {run.outcome}"
        )


def main() -> None:
    """Console entry point: user errors print one line and exit 2, without a traceback."""
    try:
        app()
    except AutoInspectError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
