"""The ``stpn`` command line: ``stpn --help`` lists the commands."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from stpn import __version__
    from stpn.analysis.cli import add_analysis_commands
    from stpn.data.cli import add_data_commands
    from stpn.demo.cli import add_demo_command
    from stpn.detection.cli import add_detection_commands
    from stpn.droptrack.cli import add_droptrack_commands
    from stpn.pretraining.cli import add_pretrain_commands
    from stpn.tracking.train_cli import add_train_track_command
    from stpn.tracking.cli import add_tracking_commands
    from stpn.vss.cli import add_vss_commands
    from stpn.vis.segment_cli import add_vis_eval_commands
    from stpn.vis.train_cli import add_train_vis_command

    parser = argparse.ArgumentParser(
        prog="stpn",
        description="Spatio-Temporal Prompting Network: robust video features with dynamic video prompts.",
    )
    parser.add_argument("--version", action="version", version=f"stpn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_demo_command(commands)
    add_detection_commands(commands)
    add_data_commands(commands)
    add_train_track_command(commands)
    add_tracking_commands(commands)
    add_analysis_commands(commands)
    add_pretrain_commands(commands)
    add_droptrack_commands(commands)
    add_vss_commands(commands)
    add_train_vis_command(commands)
    add_vis_eval_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "data":
        from stpn.data.cli import run_data_command

        return run_data_command(args)
    if args.command == "demo":
        from stpn.demo.cli import run_demo_command

        return run_demo_command(args)
    if args.command in ("track", "eval-track"):
        from stpn.tracking.cli import run_tracking_command

        return run_tracking_command(args)
    if args.command in ("explain", "tsne"):
        from stpn.analysis.cli import run_analysis_command

        return run_analysis_command(args)
    if args.command == "pretrain":
        from stpn.pretraining.cli import run_pretrain_command

        return run_pretrain_command(args)
    if args.command in ("train-vss", "eval-vss", "segment-semantic"):
        from stpn.vss.cli import run_vss_command

        return run_vss_command(args)
    if args.command == "train-vis":
        from stpn.vis.train_cli import run_train_vis_command

        return run_train_vis_command(args)
    if args.command in ("eval-vis", "segment"):
        from stpn.vis.segment_cli import run_vis_eval_command

        return run_vis_eval_command(args)
    if args.command in ("train-droptrack", "eval-droptrack"):
        from stpn.droptrack.cli import run_droptrack_command

        return run_droptrack_command(args)
    if args.command == "train-track":
        from stpn.tracking.train_cli import run_train_track_command

        return run_train_track_command(args)
    from stpn.detection.cli import run_detection_command

    return run_detection_command(args)


if __name__ == "__main__":
    sys.exit(main())
