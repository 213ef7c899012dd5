"""``autoinspect review``: the queue, accept, correct and export from the command line, on the configured store."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.config import get_settings
from autoinspect.domain import Box, Detection
from autoinspect.store import (
    ImageStore,
    PredictionEntry,
    PredictionLog,
    ReviewConflictError,
    Route,
    create_schema,
    make_engine,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """AUTOINSPECT_HOME set, and three flagged answers plus a clean one in its store (with their photos)."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOINSPECT_HOME", str(home))
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.store_url)
    create_schema(engine)
    images = ImageStore(settings.images_dir)
    scratch = Detection(label="scratch", box=Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4), confidence=0.4)
    PredictionLog(engine).write(
        [
            PredictionEntry(
                request_id=f"car-{index}",
                model_version="1",
                route=Route.CHAMPION,
                verdict=["scratch"],
                detections=[scratch],
                needs_review=index < 3,
                max_score=0.4,
                latency_ms=9.0,
                image_sha256=images.put(_photo(index)),
            )
            for index in range(4)
        ]
    )
    engine.dispose()
    yield home
    get_settings.cache_clear()


def _photo(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _queue() -> list[str]:
    code, output = _run("review", "list")
    assert code == 0, output
    return [json.loads(line)["request_id"] for line in output.splitlines()]


def test_list_accept_correct_and_export(_home: Path) -> None:
    assert _queue() == ["car-2", "car-1", "car-0"]
    code, output = _run("review", "list", "--limit", "1")
    assert code == 0 and [json.loads(line)["verdict"] for line in output.splitlines()] == [["scratch"]]

    code, output = _run("review", "accept", "car-0", "--reviewer", "ana")
    assert code == 0, output
    accepted = json.loads(output)
    assert accepted["decision"] == "accepted" and accepted["reviewer"] == "ana"
    assert [label["label"] for label in accepted["labels"]] == ["scratch"]

    code, output = _run("review", "correct", "car-1", "--box", "dent 0.5 0.5 0.9 0.7", "--box", "scratch 0 0 0.1 0.1")
    assert code == 0, output
    corrected = json.loads(output)
    assert corrected["decision"] == "corrected" and corrected["reviewer"]  # the OS user by default
    assert [(label["label"], label["box"]["x2"]) for label in corrected["labels"]] == [("dent", 0.9), ("scratch", 0.1)]

    code, output = _run("review", "correct", "car-2")  # no --box: no damage
    assert code == 0 and json.loads(output)["labels"] == []
    assert _queue() == []

    code, output = _run("review", "export")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["exported"] == 3 and summary["skipped"] == [] and Path(summary["batch"]).is_dir()
    assert json.loads(_run("review", "export")[1])["batch"] is None


def test_bad_boxes_and_unknown_requests_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _run("review", "correct", "car-0", "--box", "dent 0.5 0.5")
    assert code == 2 and "expected CLASS x1 y1 x2 y2" in output
    for args, message in (
        (["correct", "car-0", "--box", "rust 0.1 0.1 0.2 0.2"], "error: labels[0]: class 'rust' is not one of"),
        (["correct", "car-0", "--box", "dent 0.1 0.1 1.2 0.2"], "is not inside [0, 1]"),
        (["accept", "car-9"], "error: no served answer is logged under request id 'car-9'"),
    ):
        monkeypatch.setattr(sys, "argv", ["autoinspect", "review", *args])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert _queue() == ["car-2", "car-1", "car-0"]  # nothing was stored


def test_a_conflicting_second_review_is_refused() -> None:
    assert _run("review", "accept", "car-0", "--reviewer", "ana")[0] == 0
    assert _run("review", "accept", "car-0", "--reviewer", "bob")[0] == 0  # the same answer again: fine
    with pytest.raises(ReviewConflictError, match="already reviewed with a different answer"):
        _run("review", "correct", "car-0", "--reviewer", "bob")


def test_the_review_queue_goes_to_label_studio_with_the_answers_served(tmp_path: Path) -> None:
    out = tmp_path / "to-label"
    code, output = _run("data", "labelstudio-tasks", str(out), "--review")
    assert code == 0, output
    tasks = json.loads((out / "tasks.json").read_text())
    keys = sorted(task["data"]["autoinspect"] for task in tasks)
    assert [key.split(".")[0] for key in keys] == ["queue/car-0", "queue/car-1", "queue/car-2"]  # not the clean one
    assert all(
        (out / "images" / key).is_file() and "split" not in t["data"] for key, t in zip(keys, tasks, strict=True)
    )
    (answer,) = tasks[0]["predictions"]  # the answer served, as it was served: no current labels for a live photo
    assert answer["model_version"] == "served: 1" and answer["score"] == 0.4
    (region,) = answer["result"]
    assert region["value"]["rectanglelabels"] == ["scratch"] and region["score"] == 0.4
    assert region["value"]["x"] == pytest.approx(10) and region["value"]["height"] == pytest.approx(20)
    assert (region["original_width"], region["original_height"]) == (128, 96)
