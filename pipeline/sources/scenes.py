"""`scenes` source: the training split of a `posmask make-scenes` folder, read as COCO captions.

The layout is the generator's documented output (the README.md it writes into the folder):
`train/captions.json` + `train/images/`, complete once `scenes_manifest.json` exists. Tagging never
generates the sample (the pipeline imports only `shards`); `posmask make-scenes --out DIR` does.
"""
from __future__ import annotations

import json
from pathlib import Path

from toolbox.errors import UserError

MANIFEST = "scenes_manifest.json"


def locate(root: Path) -> tuple[Path, Path, int]:
    """(captions JSON, image folder, generator seed) of the complete scenes sample in `root`."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        seed = manifest["config"]["seed"] if manifest.get("format") == "posmask-scenes" else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        seed = None
    if not isinstance(seed, int):
        raise UserError(f"--src {root}: not a complete scenes sample (no readable {MANIFEST}); "
                        f"generate it first with `posmask make-scenes --out {root}` (make make-scenes SRC={root})")
    return root / "train" / "captions.json", root / "train" / "images", seed
