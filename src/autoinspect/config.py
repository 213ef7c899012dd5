"""Settings: read once, validated where they enter, passed down explicitly.

Sources, highest priority first: constructor arguments, ``AUTOINSPECT_*`` environment variables (nested with
``__``, e.g. ``AUTOINSPECT_VALIDATION__MIN_SIDE_PX=64``), the YAML file named by ``AUTOINSPECT_CONFIG`` or
``./autoinspect.yaml`` when present, then the defaults below. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

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
    def checkouts_dir(self) -> Path:
        return self.home / "checkouts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (not at import)."""
    return Settings()
