"""The prediction service runs on the serving install: neither torch, onnx nor ultralytics may be imported.

Checked in a fresh interpreter, since this test process has imported all of them for other tests: after
importing the app module, and again after the app has started (lifespan run: store opened, registry read) and
answered a few requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "onnx", "ultralytics")

PROBE = f"""
import json, sys

HEAVY = set({HEAVY!r})

def loaded():
    return sorted(HEAVY & {{name.split(".")[0] for name in sys.modules}})

import autoinspect.serving.app
after_import = loaded()

from fastapi.testclient import TestClient

with TestClient(autoinspect.serving.app.create_app()) as client:
    statuses = {{
        "readyz": client.get("/readyz").status_code,
        "healthz": client.get("/healthz").status_code,
        "metrics": client.get("/metrics").status_code,
        "inspect": client.post("/v1/inspect", content=b"x").status_code,
    }}
print(json.dumps({{"after_import": after_import, "after_serving": loaded(), "statuses": statuses}}))
"""


def test_the_service_imports_neither_torch_nor_onnx_nor_ultralytics(tmp_path: Path) -> None:
    env = {**os.environ, "AUTOINSPECT_HOME": str(tmp_path / "home")}  # an empty home: no registry, not ready
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["statuses"] == {"readyz": 503, "healthz": 200, "metrics": 200, "inspect": 401}, report
    assert report["after_import"] == [], f"importing autoinspect.serving.app loaded {report['after_import']}"
    assert report["after_serving"] == [], f"starting and serving loaded {report['after_serving']}"
