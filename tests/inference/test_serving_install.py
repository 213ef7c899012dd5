"""The serving install has neither torch nor onnx: importing the prediction path must not need them."""

from __future__ import annotations

import subprocess
import sys


def test_inference_imports_neither_torch_nor_onnx() -> None:
    probe = "import sys, autoinspect.inference; print(sorted({'torch', 'onnx'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
