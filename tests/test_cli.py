"""The command line as a user runs it: exit codes, messages and what lands on disk."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.data.synthetic import generate_dataset

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Path:
    return cli_home


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_validate_exit_codes_and_quarantine(tmp_path: Path, _home: Path) -> None:
    folder = generate_dataset(tmp_path / "ds", 12, seed=1, size=(128, 128)).root
    code, output = _run("data", "validate", str(folder), "--report-dir", str(tmp_path / "r1"))
    assert code == 0 and "PASS" in output
    assert json.loads((tmp_path / "r1" / "report.json").read_text())["passed"] is True
    label = next((folder / "labels" / "train").iterdir())
    label.write_text("5 0.5 0.5 0.1 0.1\n")
    code, output = _run("data", "validate", str(folder), "--report-dir", str(tmp_path / "r2"))
    assert code == 1 and "class_id: 1" in output and "FAIL" in output
    quarantined = list((_home / "quarantine").rglob(label.name))
    assert len(quarantined) == 1 and label.exists()


def test_version_create_list_show_checkout(tmp_path: Path) -> None:
    folder = generate_dataset(tmp_path / "ds", 12, seed=2, size=(128, 128)).root
    code, output = _run("data", "version", "create", str(folder), "--name", "demo", "-m", "first")
    assert code == 0 and "demo@" in output
    code, output = _run("data", "version", "show", "demo")
    shown = json.loads(output)
    assert sum(shown["images"].values()) == 12 and set(shown["images"]) <= {"train", "val", "test"}
    code, output = _run("data", "version", "list")
    assert "first" in output
    code, output = _run("data", "version", "checkout", f"demo@{shown['digest'][:10]}", str(tmp_path / "co"))
    assert code == 0 and len(list((tmp_path / "co" / "images").rglob("*.jpg"))) == 12


def test_user_errors_are_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["autoinspect", "data", "version", "show", "nope"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no dataset versions match 'nope'") and "Traceback" not in err


def test_import_with_class_map_then_validate(sample_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "export"
    shutil.copytree(sample_root, source)
    (source / "data.yaml").write_text("names: [scracth, dunt]\n")
    code, output = _run("data", "import", str(source), "--map", "scracth=scratch", "--map", "dunt=dent")
    assert code == 0
    imported = Path(output.strip().splitlines()[-1])
    code, output = _run("data", "validate", str(imported))
    assert code == 0 and "scratch: 448 boxes" in output and "dent: 100 boxes" in output


def test_up_trains_quickly_on_the_synthetic_sample_and_the_default_recipe_on_real_data() -> None:
    from autoinspect.training.base import TrainConfig

    quick = cli.first_model_config(synthetic=True, epochs=None, imgsz=None)
    assert (quick.epochs, quick.imgsz) == (cli.QUICK_EPOCHS, cli.QUICK_IMGSZ)
    assert cli.first_model_config(synthetic=False, epochs=None, imgsz=None) == TrainConfig()
    given = cli.first_model_config(synthetic=True, epochs=2, imgsz=96)
    assert (given.epochs, given.imgsz) == (2, 96)


@pytest.mark.parametrize("verbose", [False, True])
def test_other_libraries_info_lines_only_with_verbose(verbose: bool, _home: Path) -> None:
    root = logging.getLogger()
    before = root.level, {name: logging.getLogger(name).level for name in ("autoinspect", "uvicorn", "mlflow")}
    try:
        assert runner.invoke(cli.app, ["-v", "keys", "list"] if verbose else ["keys", "list"]).exit_code == 0
        quiet = logging.getLogger("a_library.module").getEffectiveLevel()
        assert quiet == (logging.DEBUG if verbose else logging.WARNING)
        if not verbose:
            assert logging.getLogger("mlflow.store").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("autoinspect.training.lite.trainer").getEffectiveLevel() <= logging.INFO
    finally:
        root.setLevel(before[0])
        for name, level in before[1].items():
            logging.getLogger(name).setLevel(level)


def test_help_shows_flags_plainly_and_the_recipe_defaults() -> None:
    up = runner.invoke(cli.app, ["up", "--help"], terminal_width=120).output
    assert "--serve / --no-serve" in up and "<bool>" not in up
    train = " ".join(runner.invoke(cli.app, ["train", "--help"], terminal_width=120).output.split())
    assert "[default: 10]" in train and "[default: 384]" in train and "[default: 8]" in train
