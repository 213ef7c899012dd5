"""One row of the quality table in BENCHMARKS.md from the evaluation a training run wrote.

Run: .venv/bin/python benchmarks/quality_row.py .autoinspect/runs/<run>/evaluation/evaluation.json
     [--name "lite, default recipe"] [--minutes 52.3]

``autoinspect train`` measures the test split at thresholds calibrated on val and writes ``evaluation.json``;
this prints the figures the issue asks for: AP50 and presence F1 per class, the verdict (damaged photos caught,
clean photos answered "None"), with the clean photos split into cars from other sources (file names
``clean-*``) and "None" photos from the damaged photos' own sources, whose figure shows whether a model tells
damage apart or only sources; and the Detector's latency per photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autoinspect.evaluation import EvaluationResult
from autoinspect.pipelines.model_evaluation import ModelEvaluation

OTHER_SOURCE_PREFIX = "clean"
HEADER = (
    "| model | minutes | AP50 scratch | AP50 dent | presence F1 scratch | presence F1 dent | damaged caught "
    "| None, other sources | None, same sources | ms/photo |"
)
SEPARATOR = "|---" * (HEADER.count("|") - 1) + "|"


def clean_none_by_origin(result: EvaluationResult) -> dict[str, tuple[int, int]]:
    """``{"other": (answered None, clean photos), "same": (...)}`` from the per-source slices."""
    counts = {"other": [0, 0], "same": [0, 0]}
    for group in result.slices:
        clean = group.image_level.clean_images
        if group.key != "source" or not clean:
            continue
        origin = "other" if group.value.startswith(OTHER_SOURCE_PREFIX) else "same"
        counts[origin][0] += round((group.image_level.clean_none_rate or 0.0) * clean)
        counts[origin][1] += clean
    return {origin: (none, total) for origin, (none, total) in counts.items()}


def _share(none: int, total: int) -> str:
    return f"{none / total:.2f} ({none}/{total})" if total else "-"


def row(name: str, evaluation: ModelEvaluation, minutes: float | None) -> str:
    test = evaluation.test
    ap = {label: metrics.ap50 or 0.0 for label, metrics in test.detection.per_class.items()}
    f1 = {label: metrics.f1 or 0.0 for label, metrics in test.image_level.per_class.items()}
    origin = clean_none_by_origin(test)
    return (
        f"| {name} | {'-' if minutes is None else f'{minutes:.1f}'} | {ap.get('scratch', 0):.3f} "
        f"| {ap.get('dent', 0):.3f} | {f1.get('scratch', 0):.2f} | {f1.get('dent', 0):.2f} "
        f"| {test.image_level.damaged_caught or 0:.2f} | {_share(*origin['other'])} | {_share(*origin['same'])} "
        f"| {evaluation.latency_ms_p50:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation", type=Path, help="evaluation.json written by autoinspect train")
    parser.add_argument("--name", default="autoinspect lite")
    parser.add_argument("--minutes", type=float, default=None, help="wall time of the run, if you timed it")
    args = parser.parse_args()
    evaluation = ModelEvaluation.model_validate_json(args.evaluation.read_text(encoding="utf-8"))
    print(HEADER)
    print(SEPARATOR)
    print(row(args.name, evaluation, args.minutes))


if __name__ == "__main__":
    main()
