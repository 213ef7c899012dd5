"""Mapping the class names of an annotation source onto the classes AutoInspect trains on.

Annotators spell classes their own way ("Dunt", "scracth ") and label things AutoInspect does not detect
("rust"). Guessing would silently corrupt the training data, so every source name must either already be a
target class (compared case-insensitively, whitespace trimmed) or be mapped explicitly; anything else stops the
import with the exact ``--map`` options that would fix it.

Example:
    >>> class_map = ClassMap.from_specs(["dunt=dent", "rust="])
    >>> class_map.resolve(["Dunt", "rust", "scratch"], ["scratch", "dent"])
    {'Dunt': 'dent', 'rust': None, 'scratch': 'scratch'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from autoinspect.errors import ConfigError, DataFormatError

_MAPPING_FILE = TypeAdapter(dict[str, str | None])


def _key(name: str) -> str:
    return name.strip().casefold()


def _read_mapping_file(path: Path) -> dict[str, str | None]:
    """A YAML mapping ``source: target``; a null or empty target drops the source class."""
    try:
        return _MAPPING_FILE.validate_python(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read class map {path}: {exc}") from None
    except ValidationError:
        raise ConfigError(f"{path}: expected a mapping of class name to class name (or null to drop)") from None


class ClassMap:
    """Source class name -> target class name, or ``None`` to drop the regions of that class."""

    def __init__(self, rules: Mapping[str, str | None] | None = None) -> None:
        self._rules = {
            _key(source): (target.strip() or None) if target else None for source, target in (rules or {}).items()
        }

    @classmethod
    def from_specs(cls, specs: Sequence[str] = (), mapping_file: Path | None = None) -> ClassMap:
        """Build from ``--map`` strings (``NAME=TARGET``, ``NAME=`` to drop) over an optional YAML file.

        The command-line strings win over the file, so a one-off fix needs no edit of a shared file.
        """
        rules = _read_mapping_file(mapping_file) if mapping_file else {}
        for spec in specs:
            source, equals, target = spec.partition("=")
            if not equals or not source.strip():
                raise ConfigError(f"--map {spec!r}: expected NAME=TARGET, or NAME= to drop the class")
            rules[source] = target
        return cls(rules)

    def resolve(self, sources: Iterable[str], targets: Sequence[str]) -> dict[str, str | None]:
        """The target of every source name (spelled as in ``targets``), checked before anything is written.

        Raises:
            ConfigError: a rule maps to a name that is not a target class.
            DataFormatError: a source name is neither mapped nor a target class.
        """
        canonical = {_key(target): target for target in targets}
        wrong = sorted({t for t in self._rules.values() if t is not None and _key(t) not in canonical})
        if wrong:
            raise ConfigError(f"class map targets {wrong} are not classes of this dataset {list(targets)}")
        resolved: dict[str, str | None] = {}
        unknown: list[str] = []
        for source in sorted(set(sources)):
            key = _key(source)
            if key in self._rules:
                target = self._rules[key]
                resolved[source] = canonical[_key(target)] if target else None
            elif key in canonical:
                resolved[source] = canonical[key]
            else:
                unknown.append(source)
        if unknown:
            raise DataFormatError(
                f"unknown class names {unknown}: the dataset classes are {list(targets)}. "
                f"Add --map NAME= to drop a class or --map NAME=TARGET to rename it, "
                f"e.g. --map '{unknown[0]}=' or --map '{unknown[0]}={next(iter(targets), 'TARGET')}'"
            )
        return resolved
