"""The CUDA lines, on a machine with a CUDA GPU (skipped without one): the device decodes and crops JPEGs as the
workers do, normalisation on the device equals the CPU's, a thesis-preset step under bf16 autocast, and
`posmask pretrain --decode gpu` end to end."""
from __future__ import annotations

import io
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.engine.metrics import read_metrics

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
              pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")]
REPO = Path(__file__).resolve().parents[2]
CUDA = torch.device("cuda")


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.resize((width, height), Image.BICUBIC).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_gpu_decode_gives_the_workers_crops() -> None:
    from trainer.data.device_decode import decode_crops, jpeg_box
    from trainer.data.transforms import train_crop

    images = [photo(341, 256, 0), photo(256, 341, 1), photo(300, 300, 2)]
    boxes = [jpeg_box(data, random.Random(i), (0.5, 1.0)) for i, data in enumerate(images)]
    crops = decode_crops([torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in images], torch.tensor(boxes),
                         224, CUDA)
    assert crops.device.type == "cuda" and crops.shape == (3, 224, 224, 3) and crops.dtype == torch.uint8
    for i, data in enumerate(images):
        worker = train_crop(Image.open(io.BytesIO(data)), 224, random.Random(i), (0.5, 1.0))
        assert (crops[i].cpu().float() - worker.float()).abs().mean() < 1.5  # nvjpeg's IDCT differs a little


def test_normalisation_on_the_device_equals_the_cpus() -> None:
    from trainer.data.transforms import normalize

    pixels = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert torch.allclose(normalize(pixels.to(CUDA)).cpu(), normalize(pixels), atol=1e-6)


def test_thesis_step_under_bf16() -> None:
    from trainer.config import preset_config
    from trainer.engine.engine import autocast
    from trainer.model.posmask import PosMaskModel
    from trainer.model.objective import Pretrainer

    cfg = preset_config("thesis")
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=False).to(CUDA).train()
    B, L = 8, cfg.model.max_text_len
    with autocast(CUDA, True):
        out = module(torch.randn(B, 3, 224, 224, device=CUDA), torch.randint(1000, 30000, (B, L), device=CUDA),
                     torch.ones(B, L, dtype=torch.long, device=CUDA), torch.arange(B, device=CUDA))
    out["loss"].backward()
    assert math.isfinite(float(out["loss"].detach())) and out["itc"].dtype == torch.float32  # float32 similarities


def test_pretrain_with_gpu_decode(tmp_path: Path) -> None:
    from synthetic_shards import write_synthetic_shards

    shards = write_synthetic_shards(tmp_path / "shards", n_images=64, image_px=96)
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", "--pos", "NOUN", "--preset", "tiny",
                             "--shards", str(shards), "--run", str(run), "--max-steps", "6", "--batch-size", "16",
                             "--workers", "2", "--log-every", "1", "--decode", "gpu"],
                            cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_metrics(run / "metrics.jsonl")
    assert len(records) == 6 and all(math.isfinite(r["loss"]) and r["peak_mem_mb"] > 0 for r in records)
