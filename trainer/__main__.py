"""`python -m trainer ARGS` = `posmask pretrain ARGS`, without importing the other subcommands
(what the torchrun relaunch runs in every worker)."""
from __future__ import annotations

import argparse
import logging
import sys

from shards.errors import UserError
from trainer import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="posmask pretrain", description=cli.HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    cli.add_arguments(parser)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv[1:] if argv[:1] == ["--"] else argv)  # torchrun passes "--" through
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(cli.run(args) or 0)
    except UserError as err:
        print(f"posmask pretrain: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("posmask pretrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
