"""The Label Studio round trip through a real Label Studio server on loopback: our tasks imported with their
pre-annotations, one task annotated through its API, its JSON export imported back as a dataset version that
names the task, the annotator and the time.

Label Studio lives in its own virtual environment (``make labelstudio``: Django and its pins must not meet ours);
CI installs it, and its absence fails there (skips elsewhere)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redbox import red_dataset
from typer.testing import CliRunner
from unavailable import unavailable

from autoinspect import cli
from autoinspect.data.versions import DatasetStore

REPO = Path(__file__).resolve().parents[2]
LABEL_STUDIO = REPO / ".venv-labelstudio" / "bin" / "label-studio"
START_TIMEOUT = 240.0
ANNOTATOR = "annotator@example.com"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """A fresh Label Studio (own data folder, SQLite) serving local files from a folder; a client with its token."""
    if not LABEL_STUDIO.is_file():
        unavailable(f"Label Studio is not installed at {LABEL_STUDIO} (make labelstudio)")
    root = tmp_path_factory.mktemp("label-studio")
    documents = root / "documents"
    documents.mkdir()
    port, token = _free_port(), secrets.token_hex(20)
    env = {
        **os.environ,
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(documents),
        "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data"),
        "SENTRY_DSN": "",  # nothing phones home from a test
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
    }
    command = [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(root / "data"), "--username", ANNOTATOR, "--password", secrets.token_hex(8)]
    command += ["--user-token", token, "--enable-legacy-api-token"]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"}, timeout=60)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"Label Studio exited with {process.returncode}:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            try:
                if client.get("/api/projects").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Label Studio did not answer in {START_TIMEOUT} s:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(1.0)
        yield client, documents
    finally:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Path:
    return cli_home


def test_tasks_go_through_a_real_label_studio_and_come_back_as_a_version_with_provenance(
    label_studio: tuple[httpx.Client, Path], tmp_path: Path, _home: Path
) -> None:
    client, documents = label_studio
    runner = CliRunner()
    created = runner.invoke(cli.app, ["data", "version", "create", str(red_dataset(tmp_path / "red")), "--name", "red"])
    assert created.exit_code == 0, created.output
    written = runner.invoke(cli.app, ["data", "labelstudio-tasks", str(documents), "--dataset", "red"])
    assert written.exit_code == 0, written.output

    config = (documents / "label_config.xml").read_text()
    project = client.post("/api/projects", json={"title": "AutoInspect review", "label_config": config})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    tasks = json.loads((documents / "tasks.json").read_text())
    imported = client.post(f"/api/projects/{project_id}/import", json=tasks)
    assert imported.status_code == 201, imported.text
    listed = client.get("/api/tasks", params={"project": project_id, "fields": "all"}).json()
    server_tasks = listed["tasks"] if isinstance(listed, dict) else listed
    assert len(server_tasks) == len(tasks)
    # Label Studio kept our pre-annotations: the current label of the red photo arrives as a prediction
    red = next(t for t in server_tasks if t["data"]["autoinspect"] == "train/train_0.png")
    predictions = client.get("/api/predictions", params={"task": red["id"]}).json()
    assert [p["model_version"] for p in predictions] == ["current labels"]
    assert predictions[0]["result"][0]["value"]["rectanglelabels"] == ["scratch"]

    # the annotator marks a dent on a photo labelled clean; the other tasks stay unannotated
    clean = next(t for t in server_tasks if t["data"]["autoinspect"] == "train/train_1.png")
    dent = {
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": 160,
        "original_height": 160,
        "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["dent"]},
    }
    annotation = client.post(f"/api/tasks/{clean['id']}/annotations/", json={"result": [dent]})
    assert annotation.status_code == 201, annotation.text
    me = client.get("/api/current-user/whoami").json()

    # every task, annotated or not: the unannotated ones must not come back with the model's guess as a label
    export = client.get(
        f"/api/projects/{project_id}/export", params={"exportType": "JSON", "download_all_tasks": "true"}
    )
    assert export.status_code == 200, export.text
    export_file = tmp_path / "export.json"
    export_file.write_bytes(export.content)
    back = runner.invoke(cli.app, ["data", "import", str(export_file), "--images", str(documents)])
    assert back.exit_code == 0, back.output
    assert back.output.count("not annotated in Label Studio yet") == len(tasks) - 1
    folder = Path(back.output.strip().splitlines()[-1])
    version = runner.invoke(cli.app, ["data", "version", "create", str(folder), "--name", "red", "-m", "from LS"])
    assert version.exit_code == 0, version.output

    manifest = DatasetStore(_home / "datasets").resolve("red")
    assert manifest.box_counts()["train"] == {"scratch": 1, "dent": 1}
    (origin,) = manifest.provenance.values()
    assert origin["tool"] == "labelstudio" and origin["task"] == str(clean["id"])
    assert origin["annotation"] == str(annotation.json()["id"]) and origin["photo"] == "train/train_1.png"
    assert origin["annotator"] in {str(me["id"]), me["email"]} and origin["annotated_at"].startswith("20")
