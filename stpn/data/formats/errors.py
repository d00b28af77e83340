"""Problems in a dataset on disk, each naming the file and the field at fault.

Readers send every problem to a :class:`ProblemLog`. A strict log (the default of every reader)
raises the first one as a :class:`DatasetFormatError`; a collecting log (what
:func:`stpn.data.check.check_dataset` uses) keeps them all, and the reader skips the bad item and
carries on, so one run lists every problem instead of stopping at the first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union


class DatasetFormatError(ValueError):
    """A malformed dataset file. ``file`` is the path, ``field`` the element at fault (a JSON key
    path such as ``annotations[3].bbox``, an XML element, ``line 7``, ...)."""

    def __init__(self, file: Union[str, Path], field: str, message: str) -> None:
        self.file = str(file)
        self.field = field
        self.message = message
        super().__init__(f"{self.file}: {field}: {message}")

    def __reduce__(self):  # keep it picklable (DataLoader workers send exceptions across processes)
        return (type(self), (self.file, self.field, self.message))


class ProblemLog:
    """Collects :class:`DatasetFormatError` s; ``strict=True`` raises the first one instead."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.problems: list[DatasetFormatError] = []

    def report(self, file: Union[str, Path], field: str, message: str) -> None:
        error = DatasetFormatError(file, field, message)
        if self.strict:
            raise error
        self.problems.append(error)


def strict_if_none(log: "ProblemLog | None") -> ProblemLog:
    """The log a reader uses when the caller gave none: strict."""
    return ProblemLog(strict=True) if log is None else log
