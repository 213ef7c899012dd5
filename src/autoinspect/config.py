"""Settings: read once, validated where they enter, passed down explicitly.

Sources, highest priority first: constructor arguments, ``AUTOINSPECT_*`` environment variables (nested with
``__``, e.g. ``AUTOINSPECT_VALIDATION__MIN_SIDE_PX=64``), the YAML file named by ``AUTOINSPECT_CONFIG`` or
``./autoinspect.yaml`` when present, then the defaults below. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from autoinspect.domain import DECODE_MAX_SIDE, VehicleView

DEFAULT_CONFIG_FILE = Path("autoinspect.yaml")


class ValidationSettings(BaseModel):
    """Thresholds of the dataset checks; each one is named in the report next to what it caught."""

    min_side_px: int = 64
    """Images whose shorter side is below this are rejected: a scratch is invisible at that size."""
    min_pixel_std: float = 4.0
    """Grey-level standard deviation below which an image is near-constant (blank, lens cap, black frame)."""
    near_duplicate_bits: int = 4
    """Largest Hamming distance between 64-bit perceptual hashes for two photos to count as near-duplicates.
    At 6 bits different cars shot in the same studio already match on the real sample; 4 keeps true copies."""
    min_box_side_px: float = 0.5
    """Boxes thinner than this in pixels are degenerate: they cover no whole pixel. A one-pixel hairline scratch
    is real, and six-decimal label files store it as 0.9999 px, so the bound sits at half a pixel."""
    coordinate_tolerance: float = 1e-3
    """Slack for label coordinates just outside [0, 1], which annotation tools write from rounding."""
    allowed_formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP", "BMP"])
    max_pixels: int = 50_000_000
    """Decoding larger images is refused (decompression-bomb guard)."""


class SplitSettings(BaseModel):
    """How images without a split are assigned one (deterministically, grouped by near-duplicates)."""

    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.15, ge=0.0, lt=1.0)


class TrackingSettings(BaseModel):
    """Where experiments and the model registry live (MLflow)."""

    uri: str | None = None
    """MLflow tracking URI; ``None`` means ``sqlite:///<home>/mlflow.db`` with artifacts under ``<home>/mlartifacts``.
    Production: ``http://mlflow:5000`` or ``postgresql+psycopg2://...``."""
    experiment: str = "autoinspect"
    model_name: str = "autoinspect-detector"
    """Registered model name; its versions carry the ``champion`` / ``challenger`` aliases."""


class StoreSettings(BaseModel):
    """Where predictions are logged and how the background writer batches them."""

    url: str | None = None
    """SQLAlchemy URL of the prediction log; ``None`` means ``sqlite:///<home>/autoinspect.db``.
    Production: ``postgresql+psycopg2://user:password@host:5432/autoinspect``."""
    keep_images: bool = True
    """Keep each served photo under ``<home>/images`` by content hash, so reviews and retraining can find it."""
    queue_size: int = Field(10_000, ge=1)
    """Predictions held in memory waiting for the database; beyond this they spill to disk, never block."""
    batch_size: int = Field(100, ge=1)
    """Predictions written per transaction: larger batches ride out a slow database with fewer round trips."""


class StorageSettings(BaseModel):
    """Where photos and dataset versions live when several hosts must reach them (``autoinspect.object_storage``)."""

    images_url: str | None = None
    """Served photos by content hash: ``None`` keeps them under ``<home>/images``; ``s3://bucket/prefix`` puts
    them in object storage, shared by every API replica, the UI and training on any host."""
    datasets_url: str | None = None
    """Dataset versions (objects, manifests, name histories): ``None`` keeps them under ``<home>/datasets``;
    ``s3://bucket/prefix`` lets a version made on one host be trained from on another (each downloads what it
    lacks once into ``<home>/cache``)."""
    results_url: str | None = None
    """Batch-inference runs of the Airflow DAG (shard files and merged predictions): ``None`` keeps them under
    ``<home>/batch``; ``s3://bucket/prefix`` lets shards run on workers that share no disk."""
    reports_url: str | None = None
    """Reports (monitoring runs, validation reports, dataset profiles, label issues, challenger comparisons):
    ``None`` keeps them only under ``<home>/reports``; ``s3://bucket/prefix`` also publishes each one there, and
    the UI mirrors them into its own home, so reports written on any worker reach it (``shared_reports``)."""
    s3_endpoint_url: str | None = None
    """An S3-compatible endpoint (MinIO, Ceph, R2); ``None`` means AWS. Credentials come from the usual AWS chain
    (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role)."""

    @field_validator("images_url", "datasets_url", "results_url", "reports_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("s3://"):
            raise ValueError(f"must be an s3:// URL (or unset for a folder of the home), got {value!r}")
        return value


class ServingSettings(BaseModel):
    """The prediction service: where it listens, what it accepts, how often it follows the registry."""

    host: str = "127.0.0.1"
    """Loopback by default: exposing the API is a deliberate choice (``0.0.0.0`` behind a load balancer)."""
    port: int = Field(8000, ge=1, le=65535)
    poll_seconds: float = Field(10.0, gt=0.0)
    """How often a replica re-reads the deployment record and aliases; a promotion reaches it within this."""
    max_upload_bytes: int = Field(20_000_000, ge=1)
    """Largest request body; bigger uploads are refused with 413 before they are read into memory."""
    max_batch_files: int = Field(16, ge=1)
    """Most photos in one ``/v1/inspect/batch`` request."""
    max_pixels: int = Field(24_000_000, ge=1)
    """Largest frame decoded (width x height): a 12 or 24 MP phone photo, not a decompression bomb, which is
    refused from its header. A JPEG counts at the reduced scale it is decoded at (see ``max_side``), so a 48 MP
    phone JPEG passes at half scale, while a 30 MP PNG, which must be decoded whole, does not."""
    max_side: int = Field(DECODE_MAX_SIDE, ge=32)
    """Photos are decoded to at most this many pixels on the long side (JPEGs without ever holding the full
    frame); answers still report the photo's own size, and boxes are normalised to it."""
    max_concurrent_decodes: int = Field(4, ge=1)
    """Photos decoded at once across all requests; with ``max_pixels`` this bounds decoding memory (each frame
    takes at most 4 bytes a pixel) however many requests and batches arrive together."""
    inference_threads: int | None = Field(None, ge=1)
    """ONNX Runtime threads per model run; ``None`` lets it use one per physical core."""
    max_concurrent_runs: int = Field(2, ge=1)
    """Model runs at once; further requests wait their turn. Each run already uses every core, so more in
    parallel only adds memory (measured: 3.7 GB at 32 unbounded runs of the 640 px model) and no throughput."""
    compute_features: bool = True
    """Log per-image features with every prediction: the input of drift monitoring (about 1 ms per photo)."""
    spill_file: Path | None = None
    """Where the prediction writer spills when the database is slow; ``None`` means
    ``<home>/serving/spill.jsonl``. One file per replica: replicas must not share it."""


class AlertSettings(BaseModel):
    """Alert thresholds and where alerts go; a rule that fired stays quiet for ``cooldown_minutes``."""

    drift_share: float = Field(0.3, ge=0.0, le=1.0)
    """Alert when at least this share of the image features drifted from the model's reference table."""
    none_rate_change: float = Field(0.15, ge=0.0, le=1.0)
    """Alert when the share of "None" answers moves by this much or more against the reference window."""
    min_ap50_drop: float = Field(0.10, ge=0.0, le=1.0)
    """Alert when a class's precision or recall on reviewed photos falls this far below the offline test figure."""
    max_p95_latency_ms: float = Field(2_000.0, gt=0.0)
    max_review_rate: float = Field(0.5, ge=0.0, le=1.0)
    """Alert when this share of answers or more goes to the review queue (inspectors swamped)."""
    cooldown_minutes: float = Field(60.0, ge=0.0)
    """The same alert is not sent again within this time (deduplication)."""
    webhook_url: str | None = None
    """Slack-compatible incoming webhook (JSON ``{"text": ...}``); ``None`` disables the sink."""
    smtp_host: str | None = None
    """E-mail sink: SMTP server host; ``None`` disables it."""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_sender: str = "autoinspect@localhost"
    smtp_recipients: list[str] = Field(default_factory=list)


class MonitoringSettings(BaseModel):
    """The monitoring job: which window it reads and what it compares that window with."""

    window_hours: float = Field(24.0, gt=0.0)
    """Length of the window of the prediction log one monitoring run covers (it ends now by default)."""
    min_window_size: int = Field(30, ge=1)
    """Fewer predictions than this in a window: drift is not computed (statistics on a handful mean nothing)."""
    drift_method_pvalue: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance level of the per-feature drift tests."""
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    every_minutes: float = Field(60.0, gt=0.0)
    """How often ``autoinspect up``'s local scheduler runs monitoring (Airflow uses its own schedule)."""


class TriggerSettings(BaseModel):
    """When continuous training starts a new training; each trigger can be switched off."""

    new_reviews: int | None = Field(50, ge=1)
    """Start when this many reviewed photos arrived since the last training; ``None`` disables."""
    on_drift_alert: bool = True
    on_performance_alert: bool = True
    schedule_hours: float | None = None
    """Start at least this often regardless; ``None`` disables."""
    max_ap50_drop: float = Field(0.02, ge=0.0, le=1.0)
    """Gate: no class may lose more AP50 than this against the champion on the fixed test split."""
    max_clean_none_rate_drop: float = Field(0.0, ge=0.0, le=1.0)
    """Gate: how much the share of clean test photos answered "None" may drop (0: no more false alarms)."""
    max_damaged_caught_drop: float = Field(0.02, ge=0.0, le=1.0)
    """Gate: how much the share of damaged test photos caught may drop against the champion."""
    latency_budget_ms: float | None = Field(None, gt=0.0)
    """Gate: p95 latency of the challenger on the test split; ``None`` leaves latency ungated."""
    canary_percent: float = Field(10.0, gt=0.0, le=100.0)
    """Share of the traffic a new challenger gets before it is promoted on the online evidence."""
    min_canary_reviews: int = Field(20, ge=1)
    """Reviewed canary answers needed (for each of champion and challenger) before the promotion decision."""
    max_override_rate_increase: float = Field(0.05, ge=0.0, le=1.0)
    """The challenger is rolled back when reviewers correct it this much more often than the champion."""
    train_config: Path | None = None
    """YAML of training options (as ``autoinspect train --config``); ``None`` uses the defaults."""
    every_minutes: float = Field(60.0, gt=0.0)
    """How often ``autoinspect up``'s local scheduler runs a continuous-training pass."""


class GateSettings(BaseModel):
    """Absolute quality floors every registered model must reach to be promoted (champion or challenger).

    A model below them is registered, so its figures stay inspectable, but not promoted unless an operator forces
    it (``autoinspect register --force``). The defaults are low on purpose: they stop a model that finds nothing
    (a first model trained on a handful of photos) or flags everything, not one that is merely weak.
    """

    min_map50: float = Field(0.02, ge=0.0, le=1.0)
    min_damaged_caught: float = Field(0.25, ge=0.0, le=1.0)
    """Share of damaged test photos whose verdict is not "None" (a model that finds nothing has 0)."""
    min_clean_none_rate: float = Field(0.25, ge=0.0, le=1.0)
    """Share of clean test photos answered "None" (a model that flags everything has 0; the CPU default recipe
    measured 0.5 on the full split's 12 clean test photos, so the floor sits well below that)."""


def _overview_cutoffs() -> dict[VehicleView, tuple[float, float]]:
    return dict.fromkeys(
        (VehicleView.FRONT, VehicleView.REAR, VehicleView.LEFT, VehicleView.RIGHT, VehicleView.ROOF), (0.005, 0.03)
    )


class QuantizationSettings(BaseModel):
    """``autoinspect quantize``: the int8 variant of a trained model, and how much it may lose against its float
    model on the same test split before it is refused (the promotion gates against the champion apply after)."""

    calibration_photos: int = Field(64, ge=1)
    """Val photos whose activations set the int8 ranges (all of val when it has fewer)."""
    max_ap50_drop: float = Field(0.01, ge=0.0)
    """Largest drop of any class's test AP50 against the float model."""
    max_verdict_drop: float = Field(0.01, ge=0.0)
    """Largest drop of the verdict figures (damaged photos caught, clean photos answered "None") against the float
    model: with a dozen clean test photos, one photo that changes its answer exceeds it."""
    max_presence_f1_drop: float = Field(0.01, ge=0.0)
    """Largest drop of any class's presence F1 against the float model. Measured on the default recipe's model:
    an int8 variant kept AP50 and both verdict figures but named dents less often (dent presence F1 0.60 -> 0.55),
    which only this check sees."""


class InspectionSettings(BaseModel):
    """Inspections of one vehicle from several photos (``POST /v1/inspections``): what covers a vehicle, and how a
    damage's share of a photo maps to a size."""

    max_photos: int = Field(24, ge=1)
    """Most photos in one inspection (an intake or a claim is typically 4-20)."""
    max_upload_bytes: int = Field(200_000_000, ge=1)
    """Largest inspection request body: ``serving.max_upload_bytes`` is sized for one or a few photos, and 20
    phone photos of 5-8 MB each are an ordinary claim."""
    required_views: list[VehicleView] = Field(
        default_factory=lambda: [VehicleView.FRONT, VehicleView.REAR, VehicleView.LEFT, VehicleView.RIGHT]
    )
    """Views that must all be among the usable photos before a vehicle can be answered "None": a clean front
    photo says nothing about the rear."""
    min_photos_without_views: int = Field(4, ge=1)
    """When no photo says its view, this many usable photos stand in for the required views."""
    size_cutoffs: dict[VehicleView, tuple[float, float]] = Field(default_factory=_overview_cutoffs)
    """Per view, the box area (share of the photo) below which a damage is small, and below which it is medium;
    larger is large. Views not listed (a ``detail`` close-up, or no view) get no size class, since the share of
    a close-up says nothing about the damage's real size."""

    @field_validator("size_cutoffs")
    @classmethod
    def _ordered_cutoffs(cls, value: dict[VehicleView, tuple[float, float]]) -> dict[VehicleView, tuple[float, float]]:
        for view, (small, medium) in value.items():
            if not 0 < small < medium <= 1:
                raise ValueError(f"size_cutoffs[{view}]: need 0 < small < medium <= 1, got {small}, {medium}")
        return value


class QualityGateSettings(BaseModel):
    """The photo-quality gate before the model: a photo failing a check is answered ``retake`` with the reasons.

    Defaults measured on the real sample (``benchmarks/photo_quality.py``): none of its photos is refused, and
    blurred, darkened, overexposed and shrunken copies of them are."""

    enabled: bool = True
    min_short_side: int = Field(128, ge=1)
    """Pixels on the photo's shorter side: a thumbnail cannot show a hairline scratch (the sample's smallest
    photo has 171)."""
    min_brightness: float = Field(0.12, ge=0, le=1)
    """Mean luma (0-1) below which a photo is too dark (the sample's darkest: 0.16)."""
    max_brightness: float = Field(0.85, ge=0, le=1)
    """Mean luma (0-1) above which a photo with less contrast than ``min_contrast`` is overexposed."""
    min_contrast: float = Field(0.1, ge=0, le=1)
    """Luma standard deviation (0-1) a bright photo must keep (the sample's bright photos keep 0.14 and more)."""
    max_glare: float = Field(0.6, ge=0, le=1)
    """Share of the middle of the photo clipped to white above which glare hides the paint (the sample: 0.48 at
    most, a studio shot)."""
    max_blur: float = Field(0.38, ge=0, le=1)
    """Above this blur measure (detail a slight softening leaves, 0-1) a photo is blurred (the sample: 0.31 at
    most, sharp close-ups of smooth paint included; every copy blurred by 1/150 of the photo's side is above it:
    ``benchmarks/photo_quality.py``)."""


class SamplingRule(BaseModel):
    """One rule of the review sampler: ``share`` of the answers it matches joins the review queue, at most
    ``per_hour`` of them in any hour. Filters left empty match every answer.

    Example:
        >>> SamplingRule(name="dents", share=0.2, verdict_class="dent").per_hour
        20
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Shown in the review queue (``sampled_for``), the metrics and the KPIs."""
    share: float = Field(gt=0, le=1)
    per_hour: int = Field(20, ge=1)
    """Cap over the last hour (a sliding window), so a burst of traffic cannot flood the reviewers."""
    verdict_class: str | None = None
    """Only answers whose verdict names this class (``"None"``: only answers of no damage)."""
    caller: str | None = None
    """Only answers to this API key (each dealer, insurer or fleet sends with a key of its own)."""
    confidence_between: tuple[float, float] | None = None
    """Only answers whose ``confidence`` lies in ``[lo, hi)``: low-margin answers, wider than the review band."""

    @field_validator("confidence_between")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1] <= 1:
            raise ValueError(f"confidence_between must be [lo, hi) with 0 <= lo < hi <= 1, got {list(value)}")
        return value


class ReviewSamplingSettings(BaseModel):
    """Answers sent to the review queue besides the review band, so reviewers also see what teaches most: a
    random share measures the model's real precision on traffic, per-class, per-caller and low-margin shares look
    where it is weakest. Rules are tried in order; an answer joins for the first rule that draws it. No rule by
    default: only the review band fills the queue."""

    model_config = ConfigDict(extra="forbid")

    rules: list[SamplingRule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: list[SamplingRule]) -> list[SamplingRule]:
        names = [rule.name for rule in value]
        if len(set(names)) != len(names):
            raise ValueError(f"sampling rule names must be unique, got {names}")
        return value


class UiSettings(BaseModel):
    """The operator UI (Streamlit): which API it talks to, where it listens, how long a sign-in lasts.

    The UI holds no key of its own: each person signs in with their own API key, and the UI acts with it."""

    api_url: str = "http://127.0.0.1:8000"
    """Base URL of the prediction API the UI calls."""
    session_minutes: float = Field(60.0, gt=0)
    """A sign-in ends after this many minutes without using the UI."""
    port: int = Field(8501, ge=1, le=65535)
    """Where ``autoinspect ui`` serves the app (loopback)."""


class Settings(BaseSettings):
    """Everything configurable in AutoInspect, in one place."""

    model_config = SettingsConfigDict(
        env_prefix="AUTOINSPECT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Path(".autoinspect")
    """Working folder for datasets, reports, quarantine, tracking and the prediction log."""
    classes: list[str] = Field(default_factory=lambda: ["scratch", "dent"])
    """Damage classes, in class-id order."""
    workers: int = Field(0, ge=0)
    """Threads for image work; 0 means one per CPU core."""
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    splits: SplitSettings = Field(default_factory=SplitSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    quantization: QuantizationSettings = Field(default_factory=QuantizationSettings)
    continuous_training: TriggerSettings = Field(default_factory=TriggerSettings)
    inspections: InspectionSettings = Field(default_factory=InspectionSettings)
    quality_gate: QualityGateSettings = Field(default_factory=QualityGateSettings)
    review_sampling: ReviewSamplingSettings = Field(default_factory=ReviewSamplingSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"classes must be a non-empty list of unique names, got {value}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = Path(os.environ.get("AUTOINSPECT_CONFIG", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file),
            file_secret_settings,
        )

    @property
    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{(self.home / 'autoinspect.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        """Artifact root for experiments created against the default SQLite store."""
        return (self.home / "mlartifacts").resolve()

    @property
    def runs_dir(self) -> Path:
        """Training working folders (checkpoints, exported ONNX, plots) before they are logged."""
        return self.home / "runs"

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def datasets_location(self) -> str:
        """Where dataset versions are: ``storage.datasets_url`` or :attr:`datasets_dir`."""
        return self.storage.datasets_url or str(self.datasets_dir)

    @property
    def checkouts_dir(self) -> Path:
        return self.home / "checkouts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def serving_dir(self) -> Path:
        """Per-replica serving state: downloaded model versions and the writer's spill file."""
        return self.home / "serving"

    @property
    def images_dir(self) -> Path:
        """Served photos by content hash (when ``store.keep_images``), unless ``storage.images_url`` is set."""
        return self.home / "images"

    @property
    def images_location(self) -> str:
        """Where served photos are: ``storage.images_url`` or :attr:`images_dir`."""
        return self.storage.images_url or str(self.images_dir)

    @property
    def cache_dir(self) -> Path:
        """Local copies of remote objects (photos from object storage) for tools that need files."""
        return self.home / "cache"

    @property
    def monitoring_dir(self) -> Path:
        """One folder per monitoring run: Evidently HTML + JSON summary, KPIs, alerts raised."""
        return self.reports_dir / "monitoring"

    @property
    def comparisons_dir(self) -> Path:
        """Photo-by-photo comparisons of two models (``autoinspect compare``, and each challenger's)."""
        return self.reports_dir / "comparisons"

    @property
    def label_issues_dir(self) -> Path:
        """One folder per ``autoinspect data issues`` run: suspected label errors, worst first."""
        return self.reports_dir / "label-issues"

    @property
    def annotations_inbox(self) -> Path:
        """Reviewed corrections exported as annotations (YOLO layout + provenance), waiting for the next version."""
        return self.home / "annotations" / "inbox"

    @property
    def spill_path(self) -> Path:
        return self.serving.spill_file or self.serving_dir / "spill.jsonl"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (not at import)."""
    return Settings()
