"""Reading annotation text files (lists, labels, ground truth, ini files) as UTF-8, with a file
that is not UTF-8 reported as a problem of that file instead of a ``UnicodeDecodeError``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from stpn.data.formats.errors import ProblemLog


def read_text(path: Path, log: ProblemLog) -> Optional[str]:
    """The UTF-8 text of ``path``; ``None`` (reported to ``log``) if it is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.report(path, "encoding", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})")
        return None


def read_lines(path: Path, log: ProblemLog) -> Optional[list[str]]:
    """The non-empty lines of ``path``, stripped; ``None`` if it is not UTF-8 (reported)."""
    text = read_text(path, log)
    return None if text is None else [line.strip() for line in text.splitlines() if line.strip()]
