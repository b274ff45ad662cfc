"""Builders of small test inputs for the pipeline tests: captions, images, COCO / img2dataset / table."""
from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

SUBJECTS = ["a man", "the woman", "two dogs", "a small child", "several people", "an old bus", "Maria",
            "a brown horse", "three birds", "the red car", "John", "a café owner"]
VERBS = ["is riding", "walks quickly past", "sits on", "looks at", "stands next to", "is eating near",
         "runs across", "was parked beside", "jumps over", "holds"]
OBJECTS = ["a bench", "the wooden table", "a big tree", "his bicycle", "the river", "a pizza", "an umbrella",
           "the snowy mountains", "some colourful flowers", "a naïve painting"]
TAILS = ["", " in the park", " at night", " near Paris", " with her friends", " very slowly", " and smiles",
         ", while it rains", " on a sunny day"]


def synthetic_captions(n: int, seed: int = 0) -> list[str]:
    """`n` varied English captions from a small grammar (deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        caption = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}."
        out.append(caption[0].upper() + caption[1:])
    return out


def jpeg_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGB", color: Any = (200, 30, 40)) -> bytes:
    """A small solid-colour JPEG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def png_bytes(size: tuple[int, int] = (40, 30), mode: str = "RGBA", color: Any = (0, 128, 255, 128)) -> bytes:
    """A small PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""
    data = png_bytes((8, 8), "L", 0)
    ihdr = data.find(b"IHDR")
    body = struct.pack(">II", width, height) + data[ihdr + 12 : ihdr + 17]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF)
    return data[: ihdr + 4] + body + crc + data[ihdr + 21 :]


def write_coco(root: Path, captions: list[Any], images: dict[int, bytes | None],
               annotations: list[dict[str, Any]] | None = None) -> Path:
    """COCO captions JSON + image folder: caption i belongs to image i % len(images)."""
    folder = root / "val"
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(images)
    for image_id, data in images.items():
        if data is not None:
            (folder / f"{image_id:012d}.jpg").write_bytes(data)
    anns = annotations if annotations is not None else [
        {"image_id": ids[i % len(ids)], "id": i, "caption": c} for i, c in enumerate(captions)]
    path = root / "captions_val.json"
    path.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in ids],
                                "annotations": anns}), encoding="utf-8")
    return path


def write_tar(path: Path, members: list[tuple[str, bytes]], cut: int | None = None) -> Path:
    """A tar with the given (name, bytes) members; `cut` truncates the file to that many bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw if cut is None else raw[:cut])
    return path


def run_cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m posmask_cli tag-shards ARGS` through the real dispatcher (only this subcommand registered,
    so the test does not depend on other packages' CLIs being importable)."""
    code = ("import sys, posmask_cli; posmask_cli.COMMANDS = {'tag-shards': 'pipeline.cli'}; "
            "sys.exit(posmask_cli.main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, "tag-shards", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def cli_command(*args: str) -> list[str]:
    """The argv of `run_cli` (for Popen)."""
    code = ("import sys, posmask_cli; posmask_cli.COMMANDS = {'tag-shards': 'pipeline.cli'}; "
            "sys.exit(posmask_cli.main(sys.argv[1:]))")
    return [sys.executable, "-c", code, "tag-shards", *args]


def shard_digests(out: Path) -> dict[str, str]:
    """{tar name: sha256} of every shard in OUT/shards, computed from the files."""
    from toolbox.atomic import sha256_file

    return {p.name: sha256_file(p) for p in sorted((out / "shards").glob("*.tar"))}


def rejects_of(out: Path) -> dict[str, str]:
    """{key: reason} from OUT/rejects.parquet."""
    import pyarrow.parquet as pq

    table = pq.read_table(out / "rejects.parquet").to_pydict()
    return dict(zip(table["key"], table["reason"]))
