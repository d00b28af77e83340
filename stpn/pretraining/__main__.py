"""``python -m stpn.pretraining ...``: the ``pretrain`` command before it is wired into ``stpn``."""
import argparse
import sys

from stpn.pretraining.cli import add_pretrain_commands, run_pretrain_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stpn.pretraining")
    add_pretrain_commands(parser.add_subparsers(dest="command"))
    return run_pretrain_command(parser.parse_args(["pretrain", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
