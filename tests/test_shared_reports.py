"""Reports published to object storage by the host that wrote them and mirrored by the host that shows them."""

from __future__ import annotations

import socket
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from s3 import CREDENTIALS, s3_server

from autoinspect.config import Settings, StorageSettings
from autoinspect.object_storage import LocalObjects
from autoinspect.shared_reports import mirror, new_report_folder, publish
from autoinspect.ui.reports import monitoring_runs


def _on_bucket(settings: Settings, endpoint: str, home: Path) -> Settings:
    storage = StorageSettings(reports_url="s3://reports/site-a", s3_endpoint_url=endpoint)
    return settings.model_copy(update={"home": home, "storage": storage})


def _report(root: Path) -> Path:
    folder = new_report_folder(root, now=datetime(2026, 12, 7, 10, 15, tzinfo=UTC))
    (folder / "summary.json").write_text('{"kpis": {}}')
    (folder / "input_drift.html").write_text("<html>drift</html>")
    (folder / "folds").mkdir()
    (folder / "folds" / "model.onnx").write_bytes(b"large")
    return folder


def test_a_report_written_on_one_home_is_mirrored_into_another_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server(monkeypatch, "reports") as endpoint:
        worker = _on_bucket(settings, endpoint, tmp_path / "worker")
        ui = _on_bucket(settings, endpoint, tmp_path / "ui")
        folder = _report(worker.monitoring_dir)

        assert publish(worker, folder) == 2  # the folder's files; its subfolders stay on the worker
        assert publish(worker, folder) == 0  # published once: nothing is overwritten
        assert mirror(ui, ui.monitoring_dir) == 2
        assert mirror(ui, ui.monitoring_dir) == 0  # what the UI has it does not fetch again

        copy = ui.monitoring_dir / folder.name
        assert sorted(path.name for path in copy.iterdir()) == ["input_drift.html", "summary.json"]
        assert (copy / "summary.json").read_text() == '{"kpis": {}}'
        assert not (copy / "summary.json").stat().st_mode & stat.S_IWUSR  # a copy, read-only
        assert mirror(ui, ui.comparisons_dir) == 0  # another kind of report: nothing published there


def test_the_json_a_page_lists_folders_by_is_published_last(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader mirroring while a report is being published never finds its summary before the files it names."""
    order: list[str] = []

    class Recording(LocalObjects):
        def create(self, key: str, data: bytes) -> bool:
            order.append(key.rsplit("/", 1)[1])
            return super().create(key, data)

    monkeypatch.setattr("autoinspect.shared_reports.object_store", lambda *_, **__: Recording(tmp_path / "bucket"))
    worker = settings.model_copy(update={"storage": StorageSettings(reports_url="s3://reports/x")})
    folder = _report(worker.monitoring_dir)
    (folder / "zz.png").write_bytes(b"png")

    publish(worker, folder)

    assert order == ["input_drift.html", "zz.png", "summary.json"]


def test_without_a_reports_url_or_outside_the_reports_nothing_is_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _report(settings.monitoring_dir)
    assert publish(settings, local) == 0 and mirror(settings, settings.monitoring_dir) == 0
    with s3_server(monkeypatch, "reports") as endpoint:
        worker = _on_bucket(settings, endpoint, settings.home)
        elsewhere = _report(tmp_path / "chosen-by-hand")
        assert publish(worker, elsewhere) == 0  # a --out the person chose stays where they asked
        assert mirror(_on_bucket(settings, endpoint, tmp_path / "ui"), tmp_path / "ui" / "reports") == 0


def test_report_folders_are_new_and_sort_by_time(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, 10, 15, 30, tzinfo=UTC)
    first = new_report_folder(tmp_path, now=now)
    second = new_report_folder(tmp_path, now=now)
    later = new_report_folder(tmp_path, now=now.replace(second=31))
    assert [first.name, second.name, later.name] == ["20261207T101530Z", "20261207T101530Z-2", "20261207T101531Z"]
    assert all(folder.is_dir() and not any(folder.iterdir()) for folder in (first, second, later))


def test_the_ui_shows_its_own_reports_when_object_storage_cannot_be_reached(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    ui = _on_bucket(settings, endpoint, settings.home)
    folder = new_report_folder(ui.monitoring_dir)
    (folder / "summary.json").write_text('{"window_end": "2026-12-07T10:00:00Z", "kpis": {"answered": 3}}')

    (run,) = monitoring_runs(ui, last=10)

    assert run.folder == folder and run.kpis.answered == 3
    assert "published reports under" in caplog.text and "not fetched" in caplog.text
