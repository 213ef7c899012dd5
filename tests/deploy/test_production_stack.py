"""The production configuration of deploy/docker-compose.yml, run here without Docker.

A real MLflow tracking server (PostgreSQL backend, artifacts proxied to an S3 bucket served by moto), the prediction
log on PostgreSQL, and the console commands an operator runs, each in its own process and configured only through
the environment, as in the containers: train, register (the first model passing the gates becomes champion), issue
a key, serve, inspect a photo. Checks that the model's files landed in the bucket and the answer in the PostgreSQL
log. About 100 s, most of it MLflow migrating an empty database and one training epoch.

Needs the local PostgreSQL (trust auth): fails under CI, which provides it, and is skipped elsewhere without it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from served import jpeg
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from unavailable import unavailable

from autoinspect.data.synthetic import generate_dataset

BIN = Path(sys.executable).parent
"""The console scripts installed beside this interpreter: `mlflow`, `autoinspect`."""
SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
BUCKET = "mlflow"
AWS = {"AWS_ACCESS_KEY_ID": "ci", "AWS_SECRET_ACCESS_KEY": "ci-secret", "AWS_DEFAULT_REGION": "us-east-1"}
"""Fake credentials: moto accepts any; only the MLflow server (which proxies artifacts) gets them."""
START_TIMEOUT = 90.0
"""MLflow's first start migrates an empty PostgreSQL database (about 20 s here); the API loads the champion."""
COMMAND_TIMEOUT = 180.0
"""One console command; training one epoch on 30 photos takes about 45 s on CPU."""
STOP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Stack:
    env: dict[str, str]
    """What every autoinspect process gets: AUTOINSPECT_* as the api/airflow containers set them."""
    store_url: str
    s3_endpoint: str
    mlflow: subprocess.Popen[bytes]
    mlflow_log: Path


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases on the local server (MLflow's and the prediction log's), dropped afterwards."""
    admin = create_engine(f"{SERVER}/test?connect_timeout=3", isolation_level="AUTOCOMMIT")
    names = [f"ci_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("mlflow", "store")]
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {SERVER}: {error.orig}")
    try:
        yield names[0], names[1]
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
    """Signal the process group this test started (MLflow runs uvicorn as a child), then kill what is left."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def _wait_http(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = START_TIMEOUT) -> Any:
    """The JSON (or text) of ``url`` once it answers 200; fails with the server's output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the server exited with {process.returncode}:\n{log.read_text()[-8000:]}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response.json() if "json" in response.headers.get("content-type", "") else response.text
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 200 within {timeout:.0f} s:\n{log.read_text()[-8000:]}")


@pytest.fixture
def stack(databases: tuple[str, str], tmp_path: Path) -> Iterator[Stack]:
    """moto's S3 with the artifact bucket, and an MLflow server on PostgreSQL proxying artifacts to it."""
    mlflow_db, store_db = databases
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    moto.start()
    s3_endpoint = f"http://127.0.0.1:{moto._port}"
    mlflow_log = tmp_path / "mlflow.log"
    server: subprocess.Popen[bytes] | None = None
    try:
        boto3.client("s3", endpoint_url=s3_endpoint, **_boto_credentials()).create_bucket(Bucket=BUCKET)
        port = _free_port()
        server_env = {**os.environ, **AWS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_DISABLE_TELEMETRY": "true"}
        command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        command += ["--backend-store-uri", f"{SERVER}/{mlflow_db}"]
        command += ["--artifacts-destination", f"s3://{BUCKET}", "--serve-artifacts"]
        with mlflow_log.open("wb") as log_file:
            server = subprocess.Popen(
                command, env=server_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MLFLOW_S3"))}
        env |= {
            "AUTOINSPECT_HOME": str(tmp_path / "home"),
            "AUTOINSPECT_TRACKING__URI": f"http://127.0.0.1:{port}",
            "AUTOINSPECT_STORE__URL": f"{SERVER}/{store_db}",
            "AUTOINSPECT_SERVING__POLL_SECONDS": "1",
            **TINY_MODEL_FLOORS,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        yield Stack(env, f"{SERVER}/{store_db}", s3_endpoint, server, mlflow_log)
    finally:
        if server is not None:
            _stop(server, timeout=5.0)  # it holds nothing to flush: the database and the bucket have it all
        moto.stop()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


def _cli(stack: Stack, *args: str) -> str:
    """Run one ``autoinspect`` command as an operator would; its output, or a failure with it and MLflow's log."""
    try:
        result = subprocess.run(
            [str(BIN / "autoinspect"), *args], env=stack.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"autoinspect {' '.join(args)} ran past {COMMAND_TIMEOUT:.0f} s:\n{error.stdout}\n{error.stderr}")
    if result.returncode != 0:
        pytest.fail(
            f"autoinspect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-8000:]}\n"
            f"--- mlflow server ---\n{stack.mlflow_log.read_text()[-4000:]}"
        )
    return result.stdout


TINY_MODEL_FLOORS = {f"AUTOINSPECT_GATES__MIN_{name}": "0" for name in ("MAP50", "DAMAGED_CAUGHT", "CLEAN_NONE_RATE")}
"""The quality floors must not decide these tests: their models train for a minute on generated panels."""


def test_train_register_serve_on_the_production_configuration(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    data = generate_dataset(tmp_path / "synthetic", 30, seed=1, size=(160, 120)).root
    tracking_uri = stack.env["AUTOINSPECT_TRACKING__URI"]
    # Waiting on the MLflow server here, not in the fixture, lets the dataset be made while it migrates.
    _wait_http(stack.mlflow, f"{tracking_uri}/health", stack.mlflow_log)
    print(f"mlflow up: {time.monotonic() - started:.0f} s")

    trained = _cli(stack, "train", "--data", str(data), "--epochs", "1", "--imgsz", "96", "--batch", "8")
    run_id = next(line.split()[1] for line in trained.splitlines() if line.startswith("run: "))
    print(f"trained: {time.monotonic() - started:.0f} s")
    registered = _cli(stack, "register", "--run", run_id)
    print(f"registered: {time.monotonic() - started:.0f} s")
    assert "version 1: alias champion" in registered, registered

    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint, **_boto_credentials())
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]
    assert any(key.startswith(f"1/{run_id}/artifacts/") for key in keys), keys  # the run's artifacts
    assert any("/models/" in key and key.endswith("model.onnx") for key in keys), keys  # the logged model
    assert not (Path(stack.env["AUTOINSPECT_HOME"]) / "mlartifacts").exists()  # nothing stored beside the client

    issued = json.loads(_cli(stack, "keys", "create", "ci", "--scope", "inspect").strip().splitlines()[-1])
    port = _free_port()
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(BIN / "autoinspect"), "serve", "--port", str(port)],
            env=stack.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ready = _wait_http(server, f"http://127.0.0.1:{port}/readyz", serve_log)
        assert ready["champion"] == 1, ready
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/inspect",
            files={"image": ("car.jpg", jpeg(red=True, size=(160, 120)), "image/jpeg")},
            headers={"X-API-Key": issued["token"]},
            timeout=60,
        )
        assert response.status_code == 200, f"{response.text}\n{serve_log.read_text()[-8000:]}"
        answer = response.json()
        assert answer["model_version"] == "1" and answer["route"] == "champion", answer
    finally:
        _stop(server, signal.SIGINT)  # Ctrl-C: the server flushes its prediction log before it exits
    assert server.returncode == 0, serve_log.read_text()[-8000:]

    engine = create_engine(stack.store_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT request_id, model_version FROM predictions WHERE request_id = :id"),
                {"id": answer["request_id"]},
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 1 and str(rows[0].model_version) == "1", rows
    print(f"production stack: {time.monotonic() - started:.0f} s from dataset to logged answer")

    # the data-centric tools on the same configuration: Label Studio tasks pre-annotated by the champion (pulled
    # from the MLflow server and S3), and label issues ranked from two tiny fold models
    tasks_dir = tmp_path / "to-label"
    _cli(stack, "data", "labelstudio-tasks", str(tasks_dir), "--dataset", "synthetic", "--model", "champion")
    tasks = json.loads((tasks_dir / "tasks.json").read_text())
    assert len(tasks) == 30 and all(task["predictions"][0]["model_version"] == "champion" for task in tasks)
    recipe = tmp_path / "folds.yaml"
    recipe.write_text("epochs: 1\nimgsz: 64\nworkers: 0\nlite: {backbone_lr_scale: 0.0, photo_weight: 0.0}\n")
    issues_dir = tmp_path / "issues"
    found = _cli(
        stack, "data", "issues", "synthetic", "--folds", "2", "--config", str(recipe), "--out", str(issues_dir)
    )
    assert "flagged" in found and (issues_dir / "label_issues.html").is_file(), found
    print(f"label studio tasks and label issues: {time.monotonic() - started:.0f} s")
