"""Tagging benchmark helpers (used by tests/benchmarks/test_bench_tagging.py): the captions, the text path,
bare `nlp.pipe`, the naive way, the stage end to end as a user runs it, Ray scaling and worker memory."""
from __future__ import annotations

import glob
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_doc import REPO, SHARED


def coco_captions() -> list[str] | None:
    """Every caption of COCO val2017 (../shared/data), or None."""
    coco = SHARED / "coco" / "captions_val2017.json"
    if not coco.is_file():
        return None
    return [a["caption"] for a in json.loads(coco.read_text(encoding="utf-8"))["annotations"]]


def real_captions() -> tuple[list[str], str] | None:
    """Distinct real captions from ../shared/data: COCO val2017, Flickr30K test + val, VALSE captions and foils."""
    captions = coco_captions()
    if captions is None:
        return None
    for split in ("test", "val"):
        path = SHARED / "flickr30k" / f"flickr30k_{split}.json"
        if path.is_file():
            captions += [c for entry in json.loads(path.read_text(encoding="utf-8")) for c in entry["caption"]]
    for path in sorted(glob.glob(str(SHARED / "valse" / "*.json"))):
        for entry in json.loads(Path(path).read_text(encoding="utf-8")).values():
            captions += [entry["caption"], entry["foil"]]
    return distinct(captions), "distinct captions of COCO val2017, Flickr30K test + val and VALSE (../shared/data)"


def distinct(captions: list[str]) -> list[str]:
    return list(dict.fromkeys(c.strip() for c in captions if isinstance(c, str) and c.strip()))


def scenes_captions(tmp: Path) -> list[str]:
    """The scenes training captions: data/scenes when made, else a fresh sample (training split only needed)."""
    from scenes import ensure_scenes

    made = REPO / "data" / "scenes" / "train" / "captions.json"
    path = made if made.is_file() else Path(ensure_scenes(tmp / "scenes")[0])
    return [a["caption"] for a in json.loads(path.read_text(encoding="utf-8"))["annotations"]]


def synthetic_distinct(n: int, seed: int = 0) -> list[str]:
    """`n` distinct captions from a small grammar (numbers make them distinct), when ../shared/data is absent."""
    rng = np.random.default_rng(seed)
    words = ("a man|the woman|two dogs|a child|an old bus|Maria|a horse|three birds|the red car".split("|"),
             "rides|walks past|sits on|looks at|stands next to|eats near|runs across|jumps over".split("|"),
             "a bench|the table|a big tree|his bicycle|the river|a pizza|the snowy hills".split("|"))
    return [" ".join(str(rng.choice(w)) for w in words).capitalize() + f" at {i} pm." for i in range(n)]


def clean(captions: list[str]) -> tuple[list[str], list[bool]]:
    """Normalised captions and their cut flags (rejected ones dropped)."""
    from pipeline.normalize import CaptionRejected, clean_caption

    texts, cuts = [], []
    for raw in captions:
        try:
            text, cut = clean_caption(raw)
        except CaptionRejected:
            continue
        texts.append(text)
        cuts.append(cut)
    return texts, cuts


def text_path(tagger, captions: list[str]) -> list[list[int]]:
    """Normalise + tag + align + serialise; returns each serialised caption's word UPOS."""
    from shards.schema import encode_sample

    texts, cuts = clean(captions)
    out = []
    for i, tc in enumerate(tagger.tag(texts, cuts)):
        if tc is not None:
            encode_sample(f"bench-{i}", tc, "coco", str(i), None)
            out.append(tc.upos)
    return out


def bare(nlp, captions: list[str]) -> None:
    """Bare `nlp.pipe`, the pipeline's batch size, documents discarded."""
    with nlp.memory_zone():
        for _ in nlp.pipe(captions, batch_size=512):
            pass


def naive(nlp_full, tokenizer, info, captions: list[str]) -> None:
    """The naive way: the full default pipeline called once per caption, then aligned and serialised."""
    from spacy.attrs import IDX, LENGTH, POS

    from pipeline.align import align_caption
    from pipeline.tagger import _pos_lookup
    from shards.schema import encode_sample

    table = _pos_lookup()
    for i, caption in enumerate(captions):
        doc = nlp_full(caption.strip())
        arr = doc.to_array([IDX, LENGTH, POS])
        enc = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)
        tc = align_caption(doc.text, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), table[arr[:, 2]],
                           enc["input_ids"], [s for s, _ in enc["offset_mapping"]], 64, info.cls_id, info.sep_id)
        if tc is not None:
            encode_sample(f"naive-{i}", tc, "coco", str(i), None)


def write_table(path: Path, captions: list[str]) -> Path:
    """A one-column Parquet table of captions (the `table` format, text only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": captions}), path)
    return path


def end_to_end(table: Path, out: Path) -> dict[str, Any]:
    """`posmask tag-shards --format table --text-only --workers 1` as a user runs it: wall seconds of the whole
    process, and the manifest's split (the run inside the process; the shards' own seconds)."""
    command = [sys.executable, "-m", "posmask_cli", "tag-shards", "--format", "table", "--src", str(table),
               "--out", str(out), "--text-only", "--workers", "1", "--no-progress"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    shards = sum(s["seconds"] for s in manifest["run"]["shards"])
    return {"wall": wall, "run": manifest["run"]["seconds"], "shards": shards, "manifest": manifest}


def coco_json(path: Path, captions: list[str]) -> Path:
    """A text-only COCO captions file (5 captions per image id)."""
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(len(captions) // 5 + 1)],
        "annotations": [{"image_id": i // 5, "id": i, "caption": c} for i, c in enumerate(captions)],
    }), encoding="utf-8")
    return path


def ray_run(src: Path, out: Path, workers: int, shard_size: int) -> tuple[float, dict[str, Any]]:
    """(seconds, manifest) of a text-only run on an already started Ray."""
    from pipeline.orchestrate import PipelineConfig, run_pipeline

    t0 = time.perf_counter()
    manifest = run_pipeline(PipelineConfig(format="coco", src=src, out=out, workers=workers, text_only=True,
                                           shard_size=shard_size, progress=False, overwrite=True))
    return time.perf_counter() - t0, manifest


def ray_scaling(tmp: Path, captions: list[str]) -> dict[str, float]:
    """Steady-state seconds for the same captions and shards with 1 and 2 local Ray workers."""
    import ray

    from pipeline.orchestrate import init_ray

    src = coco_json(tmp / "captions_bench.json", captions)
    warm = coco_json(tmp / "captions_warm.json", captions[:400])
    shard_size = max(1, len(captions) // 16)
    out: dict[str, float] = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        init_ray(workers, None)
        try:
            ray_run(warm, tmp / f"warm{workers}", workers, 100)  # loads spaCy in every worker
            out[f"cold_{workers}"] = time.perf_counter() - t0
            seconds, manifest = ray_run(src, tmp / f"ray{workers}", workers, shard_size)
            out[f"steady_{workers}"] = seconds
            out[f"written_{workers}"] = manifest["totals"]["written"]
        finally:
            ray.shutdown()
    return out


def memory_run(tmp: Path, captions: list[str], total: int) -> dict[str, Any]:
    """`total` captions (the base captions repeated, each repetition with new number tokens), 2 Ray workers."""
    import ray

    from pipeline.orchestrate import init_ray

    varied = [f"{c.strip().rstrip('.')} number {r * len(captions) + i}."
              for r in range(-(-total // len(captions))) for i, c in enumerate(captions)][:total]
    src = coco_json(tmp / "captions_memory.json", varied)
    init_ray(2, None)
    try:
        seconds, manifest = ray_run(src, tmp / "memory", 2, max(1, total // 40))
    finally:
        ray.shutdown()
    shards = sorted(manifest["run"]["shards"], key=lambda s: s["finished"])
    tenth = max(1, len(shards) // 10)
    first = float(np.mean([s["worker_rss_mb"] for s in shards[:tenth]]))
    last = float(np.mean([s["worker_rss_mb"] for s in shards[-tenth:]]))
    return {"seconds": seconds, "captions": len(varied), "first_mb": first, "last_mb": last,
            "growth": last / first - 1.0, "shards": len(shards), "written": manifest["totals"]["written"]}


def image_cost(repeat: int) -> float:
    """Seconds per image to check + downscale a 640x480 photo-like JPEG to 256 px (one process)."""
    from PIL import Image

    from pipeline.images import ImagePolicy, prepare_image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 12, (480, 640, 3))
    image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int64) + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    data, policy = buffer.getvalue(), ImagePolicy(image_size=256)
    prepare_image(data, policy)
    t0 = time.perf_counter()
    for _ in range(repeat):
        prepare_image(data, policy)
    return (time.perf_counter() - t0) / repeat
