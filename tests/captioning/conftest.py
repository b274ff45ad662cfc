"""Fixtures for the captioner commands' tests (probe-scst, vizer): tiny shards, a random run and its encoder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """Tiny synthetic shards (24 images, with captions.parquet), a random tiny run on them and its image encoder
    as a vision-init file: what the captioner commands (probe-scst, vizer) need."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from safetensors.torch import save_file

    from shards.reader import iter_samples
    from synthetic_shards import write_synthetic_shards
    from trainer.config import preset_config
    from trainer.masking.masker import parse_mask_spec
    from trainer.model.posmask import PosMaskModel, save_pretrained

    root = tmp_path_factory.mktemp("scst")
    shards = write_synthetic_shards(root / "shards", n_images=24, captions_per_image=2)
    rows = [{"image_id": s.meta["image_id"], "caption": s.caption, "ids": s.ids.tolist()}
            for s in iter_samples(shards)]
    pq.write_table(pa.Table.from_pylist(rows), shards / "captions.parquet")
    torch.manual_seed(0)
    config = preset_config("tiny", mask=parse_mask_spec("NOUN", 0.7), shards=str(shards), run=str(root / "run"))
    model = PosMaskModel(config.model, vision_weights="random")
    save_pretrained(model, root / "run")
    (root / "run" / "run_config.json").write_text(json.dumps(config.to_dict()))
    save_file({k: v.contiguous() for k, v in model.vision.state_dict().items()}, str(root / "vision.safetensors"))
    return {"root": root, "shards": shards, "run": root / "run", "vision": root / "vision.safetensors"}
