"""``--device`` / ``--bf16``: the flags of every command that runs a trained model."""
from __future__ import annotations

import argparse


def add_device_flags(parser: argparse.ArgumentParser) -> None:
    """Where (``--device``) and in which precision (``--bf16``) a command runs its model."""
    parser.add_argument("--device", default=None,
                        help="e.g. cpu, cuda, cuda:1 (default: CUDA when available, else CPU)")
    parser.add_argument("--bf16", action="store_true", help="run the model under bf16 autocast")
