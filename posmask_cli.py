"""`posmask` console entry point: one subcommand per job, each owned by its package.

Each subcommand module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`, and keeps
heavy imports inside `run` so that `posmask --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from toolbox.errors import EXIT_INTERRUPTED, Interrupted, UserError

COMMANDS: dict[str, str] = {
    "make-scenes": "scenes.cli",
    "tag-shards": "pipeline.cli",
    "retokenize": "pipeline.retokenize.cli",
    "vision-init": "trainer.cli_vision_init",
    "pretrain": "trainer.cli",
    "eval": "evaluation.cli_eval",
    "probe-scst": "captioning.scst.cli",
    "vizer": "captioning.vizer.cli",
    "report": "evaluation.cli_report",
    "study": "study.cli",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="posmask", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_entry=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, dispatch, and turn user errors into one clear line with a non-zero exit."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--"]:  # torchrun relaunches pass "--" so that torchrun does not parse our flags itself
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    args.argv = list(argv)  # what a torchrun relaunch passes on (trainer.engine.launch.launch_torchrun)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args._entry(args) or 0)
    except UserError as err:
        print(f"posmask {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"posmask {args.command}: {stop}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"posmask {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
