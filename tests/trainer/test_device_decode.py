"""`--decode gpu`, checked on the CPU: without CUDA it falls back to the loader workers (the same crops, bit for
bit); its device code (batched decode_jpeg, crop, antialiased bicubic resize), run here on CPU tensors, gives the
workers' crops up to resampling rounding, for the same boxes; batches mixing device and worker rows assemble in
order; exact resume holds; and the loader hands over uint8 crops whose normalisation equals the old float path."""
from __future__ import annotations

import io
import logging
import random
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from toolbox.errors import UserError
from synthetic_shards import write_synthetic_shards
from trainer.data.stream import ShardStream, StreamSettings, collate, make_loader, open_shards, to_device
from trainer.data.device_decode import decode_crops, device_decode, jpeg_box
from trainer.data.transforms import crop_box, normalize, train_crop, train_transform

CPU = torch.device("cpu")
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")  # torchvision 0.29


def jpeg(width: int, height: int, mode: str = "RGB", seed: int = 0) -> bytes:
    """A textured JPEG (a wrong crop box shows in the pixels)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height // 6 + 1, width // 6 + 1, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.resize((width, height), Image.BICUBIC).convert(mode).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def test_device_crops_match_the_workers_crops_for_the_same_boxes() -> None:
    images = [jpeg(341, 256), jpeg(256, 384, "L", 1), jpeg(300, 300, seed=2), jpeg(120, 90, seed=3)]
    boxes = [jpeg_box(data, random.Random(f"s-{i}"), (0.5, 1.0)) for i, data in enumerate(images)]
    device = decode_crops([as_tensor(d) for d in images], torch.tensor(boxes), 224, CPU)
    assert device.shape == (4, 224, 224, 3) and device.dtype == torch.uint8
    for i, data in enumerate(images):
        worker = train_crop(Image.open(io.BytesIO(data)), 224, random.Random(f"s-{i}"), (0.5, 1.0))
        assert (device[i].float() - worker.float()).abs().mean() < 0.6  # rounding between PIL's two passes
        left, top, right, bottom = boxes[i]
        shifted = decode_crops([as_tensor(data)], torch.tensor([[left + 3, top, right + 3, bottom]]), 224, CPU)
        assert (shifted[0].float() - worker.float()).abs().mean() > 3  # the check sees a box off by 3 pixels


def test_a_jpeg_the_device_cannot_decode_becomes_grey_and_the_batch_goes_on(caplog) -> None:
    flat = io.BytesIO()
    Image.new("RGB", (60, 50), (90, 90, 90)).save(flat, format="JPEG")
    good = flat.getvalue()
    broken = good[:20] + b"\0" * 280 + good[300:]  # its tables zeroed; the end marker is intact
    with caplog.at_level(logging.WARNING, logger="trainer.data.device_decode"):
        crops = decode_crops([as_tensor(good), as_tensor(broken)], torch.tensor([[0, 0, 60, 50], [7, 5, 40, 30]]),
                             16, CPU)
    assert torch.equal(crops[0], decode_crops([as_tensor(good)], torch.tensor([[0, 0, 60, 50]]), 16, CPU)[0])
    assert (crops[1] == 128).all() and "grey image" in caplog.text


def test_jpeg_box_draws_the_cpu_paths_box_and_leaves_other_images_to_the_workers() -> None:
    data = jpeg(341, 256)
    assert jpeg_box(data, random.Random("k"), (0.5, 1.0)) == crop_box(341, 256, random.Random("k"), (0.5, 1.0))
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, format="PNG")
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30)).save(cmyk, format="JPEG")
    assert jpeg_box(png.getvalue(), random.Random(0), (0.5, 1.0)) is None
    assert jpeg_box(cmyk.getvalue(), random.Random(0), (0.5, 1.0)) is None
    assert jpeg_box(data[: len(data) // 2], random.Random(0), (0.5, 1.0)) is None  # truncated: as --decode cpu
    assert jpeg_box(data + b"camera trailer", random.Random(0), (0.5, 1.0)) is None  # PIL decodes it in the worker


def test_gpu_decode_falls_back_to_the_workers_without_cuda(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="trainer.data.device_decode"):
        assert device_decode("gpu", CPU, "crop") is False
    assert "no CUDA device" in caplog.text
    assert device_decode("cpu", torch.device("cuda"), "albef") is False
    with pytest.raises(UserError, match="--augment albef needs --decode cpu"):
        device_decode("gpu", torch.device("cuda"), "albef")
    with pytest.raises(UserError, match="valid: cpu, gpu"):
        device_decode("nvjpeg", CPU, "crop")


def stream(shards: Path, on_device: bool, skip: int = 0, drawn: dict[int, int] | None = None) -> ShardStream:
    s = open_shards(shards)
    settings = StreamSettings(batch_size=8, image_size=48, max_len=30, seed=3, shuffle_buffer=50,
                              device_decode=on_device)
    return ShardStream(s.urls, settings, skip_batches=skip, drawn=drawn)


def test_device_batches_equal_worker_batches_and_resume_exactly(tmp_path: Path) -> None:
    shards = write_synthetic_shards(tmp_path / "s", n_images=40, shard_sizes=[40, 40], image_px=96, bad_images=3)
    for workers in (0, 2):
        cpu = list(islice(iter(make_loader(stream(shards, False), workers, False)), 6))
        gpu = list(islice(iter(make_loader(stream(shards, True), workers, False)), 6))
        assert all("jpeg" in b and len(b["pixels"]) == 0 for b in gpu)  # every image left for the device
        for a, b in zip(cpu, gpu):
            assert torch.equal(a["ids"], b["ids"]) and int(a["drawn"]) == int(b["drawn"])
            assert int(a["corrupt"]) == int(b["corrupt"])  # the bad images are skipped alike
            pa, pb = to_device(dict(a), CPU)["pixels"], to_device(dict(b), CPU)["pixels"]
            assert pa.shape == pb.shape == (8, 3, 48, 48) and (pa - pb).abs().mean() < 0.01
        drawn = {b % max(1, workers): int(gpu[b]["drawn"]) for b in range(3)}
        resumed = list(islice(iter(make_loader(stream(shards, True, skip=3, drawn=drawn), workers, False)), 3))
        for a, b in zip(gpu[3:], resumed):
            assert torch.equal(a["ids"], b["ids"]) and torch.equal(a["jpeg_boxes"], b["jpeg_boxes"])


def test_mixed_batches_put_every_row_in_its_place() -> None:
    rows = [{"jpeg": jpeg(64, 64, seed=i), "box": (0, 0, 64, 64)} if i % 3 else
            {"pixels": torch.full((32, 32, 3), i, dtype=torch.uint8)} for i in range(7)]
    items = [{**row, "ids": np.array([101, 7, 102], dtype=np.int32), "pos": np.array([255, 7, 255], dtype=np.uint8),
              "word": np.array([-1, 0, -1], dtype=np.int16), "image_id": i} for i, row in enumerate(rows)]
    batch = to_device(collate(items, 0, None, 32), CPU)
    expected = [normalize(torch.from_numpy(np.array(Image.open(io.BytesIO(r["jpeg"])).resize((32, 32), Image.BICUBIC))))
                if "jpeg" in r else normalize(r["pixels"]) for r in rows]
    for got, want in zip(batch["pixels"], expected):
        assert (got - want).abs().mean() < 0.02


def test_uint8_handover_normalises_to_the_old_float_values() -> None:
    image = Image.open(io.BytesIO(jpeg(90, 70)))
    crop = train_crop(image, 32, random.Random(5), (0.5, 1.0))
    assert crop.dtype == torch.uint8 and crop.shape == (32, 32, 3)
    old = (crop.permute(2, 0, 1).float().div_(255.0) - 0.5) / 0.5  # what the workers made before, per sample
    assert torch.equal(normalize(crop[None])[0], old) and torch.equal(train_transform(image, 32, random.Random(5)), old)
    assert normalize(crop[None]).is_contiguous()
