"""The HTML reports' Jinja templates, read from the package that ships them, with autoescaping always on (the
reports show file names, class names and user-entered text)."""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, Template, select_autoescape

_ENVIRONMENT = Environment(autoescape=select_autoescape(default=True))


def package_template(package: str, name: str) -> Template:
    """``templates/<name>`` of ``package`` (e.g. ``autoinspect.pipelines``), compiled."""
    source = resources.files(package).joinpath(f"templates/{name}").read_text(encoding="utf-8")
    return _ENVIRONMENT.from_string(source)
