"""Reports that reach the UI from any host: published to object storage when written, mirrored where they are read.

The pipelines write their reports (monitoring runs, validation reports, dataset profiles, label issues, challenger
comparisons) as folders under ``<home>/reports``. On one host the UI reads the same folders. When tasks run on
Celery or Kubernetes workers, each worker's home is its own and often thrown away with the pod, so a report left
there is lost to the UI. With ``storage.reports_url`` set, each report folder is also published to object storage
once complete, under its path in the home (``reports/monitoring/20261207T101500Z/summary.json``), and the UI
mirrors what it lacks into its own home before it lists reports: every page keeps reading plain local files.

Report folders have unique names (a timestamp, a dataset digest, a model version), so their files are written
once, like every object in the store; a file already published is left as it is (a label-issues report run again
on the same version keeps its first published copy). The JSON file the UI lists a folder by is published last,
and mirrored last, so a reader never finds a folder whose other files have not arrived yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from autoinspect.config import Settings
from autoinspect.object_storage import LocalObjects, ObjectStore, check_key, object_store

logger = logging.getLogger(__name__)


def new_report_folder(root: Path, now: datetime | None = None) -> Path:
    """A new, empty ``<root>/<UTC timestamp>``: names sort by time, and a suffix keeps two reports started within
    the same second apart."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    folder, suffix = root / stamp, 1
    while True:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            suffix += 1
            folder = root / f"{stamp}-{suffix}"


def _json_last(name: str) -> tuple[bool, str]:
    """Sort key: the JSON files a page lists report folders by come after the files they name."""
    return name.endswith(".json"), name


def _store(settings: Settings) -> ObjectStore | None:
    url = settings.storage.reports_url
    return None if url is None else object_store(url, endpoint_url=settings.storage.s3_endpoint_url)


def publish(settings: Settings, folder: Path) -> int:
    """Copy the files of the report ``folder`` (under ``settings.reports_dir``) to ``storage.reports_url``; how
    many were new there. Subfolders stay local (the fold models of a label-issues run). Nothing happens without a
    reports URL, or for a folder outside the reports (a ``--out`` chosen by hand stays where the person asked)."""
    store = _store(settings)
    if store is None or not folder.resolve().is_relative_to(settings.reports_dir.resolve()):
        return 0
    home = settings.home.resolve()
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda path: _json_last(str(path)))
    written = 0
    for path in files:
        key = path.resolve().relative_to(home).as_posix()
        try:
            written += store.create(check_key(key), path.read_bytes())
        except ValueError:
            logger.warning("not published (not a valid object key): %s", path)
    logger.info("published %d of %d report files from %s to %s", written, len(files), folder, store.location)
    return written


def mirror(settings: Settings, folder: Path) -> int:
    """Download into ``folder`` (under ``settings.reports_dir``) the published report files it lacks; how many.
    Without a reports URL the local folder is all there is."""
    store = _store(settings)
    if store is None:
        return 0
    home = settings.home
    prefix = folder.relative_to(home).as_posix() + "/"
    local = LocalObjects(home)
    fetched = 0
    for key in sorted(store.keys(prefix), key=_json_last):
        if not local.exists(key):
            fetched += local.create(key, store.read(key))
    if fetched:
        logger.info("mirrored %d report files from %s into %s", fetched, store.location, folder)
    return fetched
