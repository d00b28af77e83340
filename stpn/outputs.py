"""Writing command outputs safely: never over an input, never half-written, and refused early
with one line naming the path when the path cannot be written.

* :func:`atomic_output` / :func:`atomic_write`: write to a temporary file beside the target and
  ``os.replace`` it into place only once complete (a killed command leaves the old file intact);
  later writes of the same target remove the temporaries a killed write left behind.
* :func:`check_outputs` : before any work, every output must be writable and none may be one of
  the inputs (resolved paths and hard links compared).
* :func:`check_run_directory`: a finished or interrupted training run is not replaced unless
  asked (``--resume`` / ``--overwrite``).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Optional, Union

PathLike = Union[str, Path]
RUN_FILES = ("checkpoint.pt", "model.safetensors")


class OutputError(ValueError):
    """An output path that must not or cannot be written; the message names it."""


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temps(path: Path, keep: Optional[str] = None) -> None:
    """Delete ``.NAME.*.tmp*`` temporaries of ``path`` left by killed writes (except ``keep``)."""
    if not path.parent.is_dir():
        return
    for stale in path.parent.glob(f"{_temp_prefix(path)}*.tmp*"):
        if stale.name != keep and stale.is_file():
            with contextlib.suppress(OSError):
                stale.unlink()


@contextlib.contextmanager
def atomic_output(path: PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path ``.NAME.XXXX.tmp`` beside ``path`` (``keep_suffix``: ending in
    ``path``'s suffix too, for writers that pick a format from it); on success it replaces
    ``path``, on any error it is removed."""
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    remove_stale_temps(path)


def atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` into a temporary file, then move it onto ``path`` (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        write(str(tmp))
    return Path(path)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _directory_problem(path: Path) -> Optional[str]:
    """Why files cannot be created in the directory ``path`` (made if missing); ``None`` if they can."""
    if path.exists() and not path.is_dir():
        return f"{path} is an existing file, not a directory"
    base = _nearest_existing(path)
    if not base.is_dir():
        return f"{base} is a file, not a directory"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{base} is not writable (permission denied)"
    return None


def check_writable_dir(path: PathLike, what: str = "output directory") -> Path:
    """Raise :class:`OutputError` unless ``path`` is, or can be created as, a writable directory."""
    path = Path(path)
    problem = _directory_problem(path)
    if problem:
        raise OutputError(f"cannot write {what} {path}: {problem}")
    return path


def check_writable(path: PathLike, what: str = "output") -> Path:
    """Raise :class:`OutputError` unless the file ``path`` can be written."""
    path = Path(path)
    if path.is_dir():
        problem = "it is a directory; give a file name"
    elif path.exists() and not os.access(path, os.W_OK):
        problem = "permission denied"
    else:
        problem = _directory_problem(path.parent)
    if problem:
        raise OutputError(f"cannot write {what} {path}: {problem}")
    return path


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file: same resolved path, or hard links of one file."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(inputs: Iterable[tuple[str, Optional[PathLike]]], outputs: Mapping[str, Optional[PathLike]]) -> None:
    """Refuse (``OutputError``) outputs that are an input or another output, or not writable.
    ``inputs``: ``(name, path)`` pairs (``("the input video", path)``); ``outputs``: by flag
    (``"--out"``); the names appear in messages and ``None`` paths are skipped."""
    given_in = [(name, path) for name, path in inputs if path is not None]
    given_out = {k: v for k, v in outputs.items() if v is not None}
    for flag, out in given_out.items():
        for name, source in given_in:
            if same_file(out, source):
                raise OutputError(f"{flag} {out} is {name} {source}: refusing to overwrite an input")
        check_writable(out, flag)
    flags = list(given_out)
    for i, first in enumerate(flags):
        for second in flags[i + 1:]:
            if same_file(given_out[first], given_out[second]):
                raise OutputError(f"{first} and {second} are the same file {given_out[first]}")


def check_run_directory(out: PathLike, resume: bool, overwrite: bool) -> Path:
    """Refuse to start a fresh run in a directory that holds a run (its ``checkpoint.pt`` or
    ``model.safetensors``, at the top or in a stage folder) unless resuming; ``overwrite``
    deletes those files instead, so an interrupted new run never passes for the old one."""
    out = check_writable_dir(out, "run directory")
    if resume or not out.is_dir():
        return out
    found = sorted(p for name in RUN_FILES for p in (*out.glob(name), *out.glob(f"*/{name}")))
    if found and not overwrite:
        raise OutputError(f"{out} already holds a training run ({found[0]}); pass --resume to continue it "
                          "or --overwrite to replace it")
    for old in found:  # --overwrite: a killed new run must not look like the finished old one
        old.unlink(missing_ok=True)  # (every torchrun rank runs this)
    return out


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file (see :func:`atomic_output`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def input_files(name: str, path: Optional[PathLike]) -> list[tuple[str, Path]]:
    """``(name, path)`` and, for a directory (a run directory given as ``--checkpoint``),
    ``("a file of NAME", file)`` for each of its files: inputs for :func:`check_outputs`."""
    if path is None:
        return []
    path = Path(path)
    files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else []
    return [(name, path), *((f"a file of {name}", p) for p in files)]
