"""A real S3 API on loopback (moto's server) for the object-storage tests, with fake credentials."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ci", "AWS_SECRET_ACCESS_KEY": "ci-secret", "AWS_DEFAULT_REGION": "us-east-1"}
"""moto accepts any credentials; these keep the tests away from a developer's real ones."""


@contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch, *buckets: str) -> Iterator[str]:
    """moto's S3 server on a free loopback port with ``buckets`` created; yields its endpoint URL. The AWS
    credential variables point at the fake credentials meanwhile. moto keeps its buckets in process-wide state, so
    the server is reset first: no test sees what an earlier one stored."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        client = boto3.client("s3", endpoint_url=endpoint)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()
