"""A serving replica's models: it follows the registry and hot-swaps without dropping a request.

Each replica polls the deployment plan (mode + alias targets). When it changes, the versions it newly needs are
downloaded and loaded *beside* the ones serving, then one reference assignment publishes the new
:class:`~autoinspect.serving.router.ActiveModels`. Requests already running keep the snapshot they took and
finish on the old models, which are freed when the last of them returns; no lock sits on the request path.
Anything that fails during a refresh (registry down, a corrupt file) leaves the current models serving. A version
that failed to load is tried again after a back-off that doubles up to :data:`MAX_RETRY_SECONDS`, not on every
poll: a corrupt file would otherwise be downloaded again every few seconds by every replica.

A replica records the last champion it loaded (``serving/last_served.json``). Started when the champion cannot be
loaded (corrupt or tampered files, a store outage), it serves that version instead of nothing, says so in
``/readyz``, the log and the ``autoinspect_fallback_version`` metric, and keeps trying the champion.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoinspect.config import Settings
from autoinspect.inference import Detector
from autoinspect.registry.deployment import DeploymentMode, DeploymentPlan, resolve_plan
from autoinspect.registry.mlflow_registry import download_model_files
from autoinspect.serving.router import ActiveModels, LoadedModel

logger = logging.getLogger(__name__)

ModelLoader = Callable[[int], Detector]
"""Loads one registered version; the default downloads it from the registry into the replica's folder."""

MAX_RETRY_SECONDS = 900.0
LAST_SERVED_FILE = "last_served.json"


class LoadDeferredError(RuntimeError):
    """A version the plan needs failed to load recently; it is not tried again before its back-off ends."""


@dataclass(frozen=True)
class _LoadFailure:
    attempts: int
    retry_at: float
    """``time.monotonic()`` after which the version may be tried again."""
    reason: str


@dataclass(frozen=True)
class ReplicaStats:
    """Exported as metrics: how the replica has been following the registry."""

    swaps: int
    refresh_errors: int
    last_error: str | None
    last_refresh_at: float | None
    """``time.time()`` of the last successful registry read."""
    champion: int | None
    challenger: int | None
    fallback: int | None = None
    """The last version that loaded, served because the registry's champion cannot be; ``None`` normally."""


class Replica:
    """The models one serving process holds, kept in step with the registry.

    Example::

        replica = Replica(settings)
        replica.refresh()          # load the champion (and challenger) now
        replica.start_polling()    # then follow promotions, canaries and rollbacks
        active = replica.active    # one snapshot per request
    """

    def __init__(self, settings: Settings, *, loader: ModelLoader | None = None) -> None:
        self._settings = settings
        self._loader = loader or self._download_and_load
        self._active: ActiveModels | None = None
        self._loaded: dict[int, LoadedModel] = {}
        self._failures: dict[int, _LoadFailure] = {}
        self._refresh_lock = threading.Lock()
        """Serialises the poller and admin calls; never taken by a request."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swaps = self._errors = 0
        self._last_error: str | None = None
        self._last_refresh_at: float | None = None
        self._fallback: int | None = None

    @property
    def active(self) -> ActiveModels | None:
        """The current snapshot; ``None`` until a champion has been loaded (the replica is not ready)."""
        return self._active

    @property
    def stats(self) -> ReplicaStats:
        active = self._active
        return ReplicaStats(
            swaps=self._swaps,
            refresh_errors=self._errors,
            last_error=self._last_error,
            last_refresh_at=self._last_refresh_at,
            champion=active.champion.version if active else None,
            fallback=self._fallback,
            challenger=active.challenger.version if active and active.challenger else None,
        )

    def refresh(self, *, retry_now: bool = False) -> bool:
        """Read the plan and apply it; ``True`` when the served models changed.

        Raises whatever the registry or the model loading raised, after recording it: the previous models stay.
        A version still in its back-off raises :class:`LoadDeferredError` instead of loading, unless
        ``retry_now`` (an operator's explicit call) asks to try it at once.
        """
        with self._refresh_lock:
            if retry_now:
                self._failures.clear()
            try:
                plan = resolve_plan(self._settings)
                changed = self._apply(plan)
            except LoadDeferredError as error:
                self._last_error = str(error)
                raise
            except Exception as error:
                self._errors += 1
                self._last_error = f"{type(error).__name__}: {error}"
                raise
            self._last_refresh_at = time.time()
            self._last_error = None
            return changed

    def prepare(self, version: int) -> None:
        """Load ``version`` beside the serving models now (an operator asked: no back-off), so that a registry
        change needing it can be refused before it is made. Raises whatever loading raised; the serving models
        are untouched either way. A prepared version that no plan takes up is freed at the next plan change."""
        with self._refresh_lock:
            self._failures.pop(version, None)
            if version not in self._loaded:
                self._loaded[version] = LoadedModel(version=version, detector=self._load(version))

    def fall_back(self) -> bool:
        """Serve the last champion this replica loaded, when nothing serves (the champion failed to load at
        start); ``True`` when it now serves that version. The poller keeps trying the registry's plan."""
        with self._refresh_lock:
            version = self._last_served()
            if self._active is not None or version is None:
                return False
            try:
                loaded = self._loaded.get(version) or LoadedModel(version=version, detector=self._load(version))
            except Exception:
                logger.exception("the last served version %d does not load either: not ready", version)
                return False
            self._loaded[version] = loaded
            plan = DeploymentPlan(mode=DeploymentMode.SINGLE, canary_percent=0.0, champion=version, challenger=None)
            self._active = ActiveModels(plan=plan, champion=loaded, challenger=None)
            self._fallback = version
            logger.error(
                "the champion cannot be loaded (%s): serving version %d, the last that loaded",
                self._last_error,
                version,
            )
            return True

    def _last_served(self) -> int | None:
        path = self._settings.serving_dir / LAST_SERVED_FILE
        try:
            version = json.loads(path.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return version if isinstance(version, int) else None

    def _record_served(self, version: int) -> None:
        path = self._settings.serving_dir / LAST_SERVED_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": version}), encoding="utf-8")

    def start_polling(self) -> None:
        """Refresh every ``serving.poll_seconds`` on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="registry-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self._settings.serving.poll_seconds):
            try:
                self.refresh()
            except LoadDeferredError as error:
                logger.debug("%s", error)
            except Exception:
                logger.exception("registry poll failed; the current models keep serving")

    def _apply(self, plan: DeploymentPlan) -> bool:
        current = self._active
        if current is not None and current.plan == plan:
            self._fallback = None  # the registry came back to the version served as a fallback
            return False
        if plan.champion is None:
            if current is None:
                logger.warning("no champion in the registry yet: not ready until one is promoted")
            else:
                logger.error("the champion alias disappeared; keeping version %d", current.champion.version)
            return False
        for version in sorted(plan.versions - self._loaded.keys()):
            self._loaded[version] = LoadedModel(version=version, detector=self._load(version))
        challenger = self._loaded[plan.challenger] if plan.challenger is not None else None
        self._active = ActiveModels(plan=plan, champion=self._loaded[plan.champion], challenger=challenger)
        self._swaps += 1
        self._fallback = None
        self._record_served(plan.champion)
        for version in sorted(self._loaded.keys() - plan.versions):
            del self._loaded[version]  # requests still holding it finish first; then it is garbage
            shutil.rmtree(self._version_dir(version), ignore_errors=True)
        logger.info(
            "serving %s: champion v%d%s",
            plan.mode.value,
            plan.champion,
            f", challenger v{plan.challenger}" if plan.challenger is not None else "",
        )
        return True

    def _load(self, version: int) -> Detector:
        """Load one version, or refuse while its last failure's back-off lasts; failures lengthen the back-off."""
        failure = self._failures.get(version)
        if failure is not None and time.monotonic() < failure.retry_at:
            wait = failure.retry_at - time.monotonic()
            raise LoadDeferredError(f"version {version} failed to load ({failure.reason}); next try in {wait:.0f} s")
        started = time.perf_counter()
        try:
            detector = self._loader(version)
        except Exception as error:
            attempts = failure.attempts + 1 if failure else 1
            delay = min(self._settings.serving.poll_seconds * 2**attempts, MAX_RETRY_SECONDS)
            reason = f"{type(error).__name__}: {error}"
            self._failures[version] = _LoadFailure(attempts, time.monotonic() + delay, reason)
            logger.error("version %d failed to load (attempt %d), next try in %.0f s", version, attempts, delay)
            raise
        self._failures.pop(version, None)
        logger.info("loaded model version %d in %.1f s", version, time.perf_counter() - started)
        return detector

    def _download_and_load(self, version: int) -> Detector:
        files = download_model_files(self._settings, version, self._version_dir(version))
        return Detector(
            files.onnx,
            thresholds=files.read_thresholds(),
            intra_op_threads=self._settings.serving.inference_threads,
        )

    def _version_dir(self, version: int) -> Path:
        return self._settings.serving_dir / "models" / str(version)
