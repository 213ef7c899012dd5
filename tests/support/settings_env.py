"""Deployment files set settings as ``AUTOINSPECT_*`` variables: check each names a real setting."""

from __future__ import annotations

from typing import Any

from autoinspect.config import Settings


def assert_setting_exists(variable: str, where: str) -> None:
    """``AUTOINSPECT_SERVING__PORT`` must name ``Settings.serving.port``; ``where`` names the file's service."""
    model: Any = Settings
    for part in variable.removeprefix("AUTOINSPECT_").lower().split("__"):
        fields = model.model_fields
        assert part in fields, f"{where}: {variable} names no setting ({part!r} not in {sorted(fields)})"
        model = fields[part].annotation
