"""The one place where a command's failure becomes a one-line error.

Every ``stpn`` command runs through :func:`run_reporting_errors`: an expected failure (a bad or
missing file, an output that cannot be written, a non-finite loss, ...) is printed as
``stpn COMMAND: error: MESSAGE`` on stderr, where MESSAGE is one line naming the file, and the
command exits with status 2. Set ``STPN_TRACEBACK=1`` to get the traceback instead (debugging).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

# ValueError covers DatasetFormatError, UnicodeDecodeError and the OutputError of stpn.outputs;
# OSError covers FileNotFoundError, PermissionError, NotADirectoryError, a full disk;
# FloatingPointError is NonFiniteLossError; RuntimeError what torch raises for unloadable files
# and what a DataLoader worker's failure becomes.
EXPECTED_ERRORS = (ValueError, OSError, RuntimeError, FloatingPointError)
WORKER_MARK = "Original Traceback"


def _worker_message(text: str) -> str:
    """The original exception's line of a DataLoader worker failure (``pkg.Error: message``)."""
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    head, sep, rest = last.partition(": ")
    return rest if sep and " " not in head else last


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc`` that keeps the file name it carries."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc)
    if WORKER_MARK in text:
        return _worker_message(text)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def _close_progress_bars() -> None:
    """End any progress bar the failure interrupted, so the error starts a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def run_reporting_errors(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``, with an expected failure printed as one line (exit status 2)."""
    try:
        return run(args)
    except EXPECTED_ERRORS as exc:
        if os.environ.get("STPN_TRACEBACK"):
            raise
        _close_progress_bars()
        print(f"stpn {command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
