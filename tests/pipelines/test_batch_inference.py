"""Batch inference: deterministic shards, one line per photo even for corrupt files, counts that add up.

The red-box detector (``tests/support/redbox.py``) answers "dent + scratch, needs review" for a photo with pure
red in it and "None" otherwise, so every count below is known in advance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from PIL import Image
from redbox import METADATA, export, photo
from registered import register_versions
from s3 import s3_server
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.config import Settings, StorageSettings, get_settings
from autoinspect.errors import ConfigError, DataFormatError
from autoinspect.pipelines.batch_inference import (
    BatchLine,
    merge_shards,
    pin_model,
    plan_shards,
    predict_shard,
    run_batch,
    shard_name,
)

RED_PHOTOS = ("a_red.jpg", "sub/c_red.png")
CLEAN_PHOTOS = ("b_clean.jpg", "d_clean.webp")
CORRUPT = "e_corrupt.jpg"


@pytest.fixture(scope="module")
def redbox_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tmp_path_factory.mktemp("redbox") / "redbox.onnx", batch=None)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two red photos (one in a subfolder), two clean ones, a corrupt JPEG and a file that is not an image."""
    folder = tmp_path / "intake"
    for index, name in enumerate(RED_PHOTOS + CLEAN_PHOTOS):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        red = (40, 30, 90, 70) if name in RED_PHOTOS else None
        Image.fromarray(photo(200, 150, red, seed=index)).save(target)
    (folder / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "notes.txt").write_text("not a photo", encoding="utf-8")
    return folder


@pytest.fixture
def champion(tracked_settings: Settings, redbox_onnx: Path, tmp_path: Path) -> Settings:
    """A real registry whose version 1, the red-box model, is the champion."""
    register_versions(tracked_settings, redbox_onnx, METADATA)
    return tracked_settings


def _names(shards: list[list[str]], root: Path) -> list[list[str]]:
    return [[Path(file).relative_to(root.resolve()).as_posix() for file in shard] for shard in shards]


def test_plan_is_sorted_deterministic_and_skips_non_images(photos: Path) -> None:
    shards = plan_shards(photos, 2)
    assert _names(shards, photos) == [
        ["a_red.jpg", "b_clean.jpg"],
        ["d_clean.webp", "e_corrupt.jpg"],
        ["sub/c_red.png"],
    ]
    assert all(Path(file).is_absolute() for shard in shards for file in shard)
    assert plan_shards(photos, 2) == shards
    assert plan_shards(photos, 100) == [[file for shard in shards for file in shard]]


def test_plan_refuses_a_bad_shard_size_and_an_empty_folder(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        plan_shards(photos, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no image files"):
        plan_shards(tmp_path / "empty", 10)
    with pytest.raises(DataFormatError, match="not a folder"):
        plan_shards(tmp_path / "missing", 10)


def test_a_corrupt_photo_is_a_line_with_its_error_and_the_shard_goes_on(
    settings: Settings, photos: Path, redbox_onnx: Path, tmp_path: Path
) -> None:
    files = [str(photos / CORRUPT), str(photos / "a_red.jpg"), str(photos / "b_clean.jpg")]
    part = predict_shard(settings, files, model=str(redbox_onnx), out_dir=tmp_path / "parts")

    assert Path(part) == tmp_path / "parts" / shard_name(files)
    lines = [json.loads(line) for line in Path(part).read_text(encoding="utf-8").splitlines()]
    assert [line["file"] for line in lines] == files
    corrupt, red, clean = lines
    assert corrupt["verdict"] is None and corrupt["needs_review"] is None and corrupt["detections"] == []
    assert "corrupt" in corrupt["error"] or "truncated" in corrupt["error"]
    assert red == {**red, "verdict": ["dent", "scratch"], "damaged": True, "needs_review": True, "error": None}
    assert {d["label"] for d in red["detections"]} == {"dent", "scratch"}
    assert clean == {
        **clean,
        "verdict": ["None"],
        "damaged": False,
        "needs_review": False,
        "detections": [],
        "error": None,
    }


def test_a_retried_shard_replaces_its_own_part(
    settings: Settings, photos: Path, redbox_onnx: Path, tmp_path: Path
) -> None:
    files = [str(photos / "a_red.jpg")]
    first = predict_shard(settings, files, model=str(redbox_onnx), out_dir=tmp_path / "parts")
    again = predict_shard(settings, files, model=str(redbox_onnx), out_dir=tmp_path / "parts")
    assert first == again and len(Path(again).read_text(encoding="utf-8").splitlines()) == 1
    assert [path.name for path in (tmp_path / "parts").iterdir()] == [Path(first).name]  # no temporary file left


def test_merge_keeps_every_line_in_shard_order_and_counts_them(
    settings: Settings, photos: Path, redbox_onnx: Path, tmp_path: Path
) -> None:
    shards = plan_shards(photos, 2)
    parts: list[Path | str] = [
        predict_shard(settings, files, model=str(redbox_onnx), out_dir=tmp_path / "parts") for files in shards
    ]

    summary = merge_shards(parts, tmp_path / "out" / "predictions.jsonl")

    lines = [json.loads(line) for line in Path(summary.output).read_text(encoding="utf-8").splitlines()]
    assert [line["file"] for line in lines] == [file for shard in shards for file in shard]
    assert summary.files == 5 and summary.errors == 1
    assert summary.verdicts == {"None": 2, "dent+scratch": 2}
    assert summary.damaged == 2 and summary.needs_review == 2


def test_photos_parts_and_predictions_in_object_storage(
    settings: Settings, photos: Path, redbox_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards that share no disk: photos listed and read from a bucket, parts and predictions written to one."""
    with s3_server(monkeypatch, "intake", "results") as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint)
        for path in sorted(photos.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), "intake", f"day-1/{path.relative_to(photos).as_posix()}")
        remote = settings.model_copy(update={"storage": StorageSettings(s3_endpoint_url=endpoint)})

        shards = plan_shards("s3://intake/day-1", 2, endpoint_url=endpoint)
        assert [[file.rsplit("/", 1)[1] for file in shard] for shard in shards] == [
            ["a_red.jpg", "b_clean.jpg"],
            ["d_clean.webp", "e_corrupt.jpg"],
            ["c_red.png"],
        ]
        client.delete_object(Bucket="intake", Key="day-1/d_clean.webp")  # gone between planning and predicting
        parts: list[Path | str] = [
            predict_shard(remote, files, model=str(redbox_onnx), out_dir="s3://results/run-1/parts") for files in shards
        ]
        assert all(str(part).startswith("s3://results/run-1/parts/shard-") for part in parts)
        summary = merge_shards(parts, "s3://results/run-1/predictions.jsonl", remote)

        assert summary.output == "s3://results/run-1/predictions.jsonl"
        assert summary.files == 5 and summary.verdicts == {"None": 1, "dent+scratch": 2} and summary.errors == 2
        merged = client.get_object(Bucket="results", Key="run-1/predictions.jsonl")["Body"].read().decode()
        lines = [json.loads(line) for line in merged.splitlines()]
        assert [line["file"] for line in lines] == [file for shard in shards for file in shard]
        assert "d_clean.webp" in lines[2]["file"] and lines[2]["error"]


def test_pin_model_fixes_the_alias_to_a_version(champion: Settings, redbox_onnx: Path) -> None:
    assert pin_model(champion, "champion") == "1"
    assert pin_model(champion, "1") == "1"
    assert pin_model(champion, str(redbox_onnx)) == str(redbox_onnx)


def test_local_runner_on_the_champion(champion: Settings, photos: Path, tmp_path: Path) -> None:
    summary = run_batch(champion, photos, shard_size=2, out=tmp_path / "out" / "predictions.jsonl")

    assert summary.files == 5 and summary.verdicts == {"None": 2, "dent+scratch": 2} and summary.errors == 1
    assert sorted(path.name for path in Path(summary.output).parent.iterdir()) == ["predictions.jsonl"]  # no parts


@pytest.fixture
def env_home(champion: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("AUTOINSPECT_HOME", str(champion.home))
    get_settings.cache_clear()
    yield champion
    get_settings.cache_clear()


def test_batch_command(env_home: Settings, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(cli.app, ["batch", str(photos), "--shard-size", "3", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "5 photos" in result.output and "unreadable 1" in result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5


def test_batch_command_on_a_folder_without_photos_says_why(env_home: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o.jsonl")])
    assert isinstance(result.exception, DataFormatError)
    assert not (tmp_path / "o.jsonl").exists()


def test_lines_written_before_the_one_type_verdict_still_read() -> None:
    old = BatchLine.model_validate_json('{"file": "a.jpg", "verdict": "None", "needs_review": false}')
    assert old.verdict == ["None"] and old.verdict_key == "None"
    assert BatchLine(file="b.jpg", verdict=["dent", "scratch"]).verdict_key == "dent+scratch"
