"""Loading JSON annotation files and picking out records whose fields have the right types."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stpn.data.formats.errors import ProblemLog


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def load_json(path: Path, log: ProblemLog) -> Any:
    """Parse a JSON file; a missing or broken file is reported and ``None`` returned."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        log.report(path, "file", "not found")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.report(path, "json", f"not valid JSON: {exc}")
    return None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def has_list(data: Any, key: str) -> bool:
    return isinstance(data, dict) and isinstance(data.get(key), list)


def _has_type(record: Any, name: str, kind: type) -> bool:
    value = record.get(name) if isinstance(record, dict) else None
    return is_int(value) if kind is int else isinstance(value, kind)


def typed_records(
    data: dict, key: str, required: dict[str, type], path: Path, log: ProblemLog
) -> list[tuple[int, dict]]:
    """``(position, record)`` for the records of the list ``data[key]`` whose ``required`` fields
    exist with the given types (``int`` excludes ``bool``); the others are reported."""
    good = []
    for i, record in enumerate(data[key]):
        bad = [name for name, kind in required.items() if not _has_type(record, name, kind)]
        if bad:
            kind = required[bad[0]]
            log.report(path, f"{key}[{i}].{bad[0]}", f"missing or not {_KIND_NAMES.get(kind, kind.__name__)}")
        else:
            good.append((i, record))
    return good


def coco_categories(data: dict, path: Path, log: ProblemLog) -> tuple[list[str], dict[int, int]]:
    """``data["categories"]`` (COCO style ``{"id", "name"}``) → class names ordered by id, and
    id → index into them. Repeated ids or names are reported and skipped."""
    names: list[str] = []
    index: dict[int, int] = {}
    records = typed_records(data, "categories", {"id": int, "name": str}, path, log)
    for i, category in sorted(records, key=lambda r: r[1]["id"]):
        if category["id"] in index or category["name"] in names:
            log.report(path, f"categories[{i}]",
                       f"category id {category['id']} or name {category['name']!r} is used twice")
            continue
        index[category["id"]] = len(names)
        names.append(category["name"])
    return names, index
