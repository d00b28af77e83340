"""YAML run configs: one mapping of named sections, checked before anything runs.

Every training command (``stpn train``, ``stpn train-track``) reads its config through
:func:`read_sections`, so a typo in a section name, a missing section or a file that is not YAML
ends in one message naming the file, never a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path``; a missing file is a ``FileNotFoundError``, bad YAML a
    ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc


def read_sections(path: str | Path, sections: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
    """The config at ``path`` as a dict; unknown sections and missing (or empty) ``required``
    sections are ``ValueError`` s, a missing file a ``FileNotFoundError``."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with sections {', '.join(sections)}")
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}; known: {', '.join(sections)}")
    for needed in required:
        if not data.get(needed):
            raise ValueError(f"{path}: missing section `{needed}`")
    return data
