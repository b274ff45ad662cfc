"""`posmask retokenize`: another tokenizer's ids.npy, pos.npy and word.npy for a tag-shards output, without spaCy."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import add_runner_arguments, require

HELP = "re-make a tag-shards output's tokens with any Hugging Face fast tokenizer, exact UPOS kept, without tagging"

EPILOG = """\
The words, their UPOS and their character spans in each sample's json give every token of the new tokenizer its
UPOS (that of the word holding its first character). Images, txt and json are copied unchanged. OUT is a full
tag-shards output (manifest.json with the tokenizer recorded, shards/, captions.parquet, README.md, ...); re-running
resumes. `posmask pretrain` trains BERT's uncased wordpieces and refuses an output made with another vocabulary.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the retokenize flags."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--shards", default=None, help="required: a tag-shards output (a folder or a URL of one)")
    parser.add_argument("--tokenizer", default=None,
                        help="required: a Hugging Face fast tokenizer, a local folder or a name in the local cache")
    parser.add_argument("--out", default=None, help="required: output folder, or an fsspec URL to publish to")
    parser.add_argument("--stage", type=Path, default=None, help="with a URL --out: where the output is made first")
    parser.add_argument("--workers", type=int, default=2, help="local Ray worker processes (default 2; 1: no Ray)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="maximum tokens per caption incl. special tokens (default: the input's --max-len)")
    add_runner_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Retokenize and print the one-line summary."""
    require(args, "retokenize", "shards", "tokenizer", "out")
    from pipeline.orchestrate import command_line
    from pipeline.retokenize.run import RetokenizeConfig, run_retokenize

    cfg = RetokenizeConfig(shards=args.shards, tokenizer=args.tokenizer, out=args.out, workers=args.workers,
                           max_len=args.max_len, ray_address=args.ray_address, overwrite=args.overwrite,
                           progress=args.progress, stage=args.stage, command=command_line(args))
    manifest = run_retokenize(cfg)
    print(f"retokenize: {manifest['run']['summary']}", flush=True)
    return 0
