"""Writes a validation report as JSON (for machines and CI) and HTML (for the data team)."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from autoinspect.data.box_stats import SMALL_SIDE_THRESHOLDS_PX
from autoinspect.data.checks import CHECKS
from autoinspect.data.validation import ValidationReport

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def render_html(report: ValidationReport) -> str:
    env = Environment(loader=PackageLoader("autoinspect.data", "templates"), autoescape=select_autoescape())
    template = env.get_template("validation.html.j2")
    return template.render(report=report, checks=CHECKS, thresholds=SMALL_SIDE_THRESHOLDS_PX)


def write_report(report: ValidationReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (with a computed ``passed`` field) and ``report.html``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = report.model_dump(mode="json")
    payload["passed"] = report.passed
    payload["counts_by_check"] = report.counts_by_check
    json_path = out_dir / REPORT_JSON
    json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    html_path = out_dir / REPORT_HTML
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def read_report(path: Path) -> ValidationReport:
    """Load a ``report.json`` back (computed fields are ignored)."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload.pop("passed", None)
    payload.pop("counts_by_check", None)
    return ValidationReport.model_validate(payload)
