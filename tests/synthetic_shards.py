"""Synthetic tagged shards for tests and benchmarks: coloured shapes with captions that describe them.

Schema-valid (the real tokenizer, hand-written UPOS tags, no spaCy), small, and learnable: the caption
names the colour, shape and side of the one shape drawn, so ITC/ITM/MLM can all go down.
"""
from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path

import numpy as np

from toolbox.atomic import atomic_write_json, sha256_file
from shards.manifest import HISTOGRAM_NAME, SHARDS_DIR, write_manifest, write_sizes
from shards.schema import SCHEMA_VERSION, TaggedCaption, encode_sample
from shards.upos import NOT_A_WORD, UPOS_ID, UPOS_NAMES

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220), "yellow": (230, 220, 30),
           "white": (245, 245, 245), "purple": (150, 40, 170)}
SHAPES = ("circle", "square", "triangle", "bar")
SIDES = ("left", "right")
SIZES = ("big", "small")
TEMPLATES = (  # (word, UPOS) with {slots}
    [("a", "DET"), ("{size}", "ADJ"), ("{colour}", "ADJ"), ("{shape}", "NOUN"), ("sits", "VERB"), ("on", "ADP"),
     ("the", "DET"), ("{side}", "NOUN"), ("of", "ADP"), ("the", "DET"), ("picture", "NOUN"), (".", "PUNCT")],
    [("there", "PRON"), ("is", "VERB"), ("clearly", "ADV"), ("one", "NUM"), ("{colour}", "ADJ"),
     ("{shape}", "NOUN"), ("on", "ADP"), ("the", "DET"), ("{side}", "NOUN"), (".", "PUNCT")],
    [("the", "DET"), ("{shape}", "NOUN"), ("is", "AUX"), ("{colour}", "ADJ"), ("and", "CCONJ"), ("{size}", "ADJ")],
)


def tag_caption(words: list[str], upos: list[str], tokenizer) -> TaggedCaption:
    """Wordpieces of pre-split words with [CLS]/[SEP], each carrying its word's UPOS."""
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=True)
    word_ids = enc.word_ids()
    ids = np.asarray(enc["input_ids"], dtype=np.int32)
    word = np.asarray([-1 if w is None else w for w in word_ids], dtype=np.int16)
    pos = np.asarray([NOT_A_WORD if w is None else UPOS_ID[upos[w]] for w in word_ids], dtype=np.uint8)
    caption, spans, at = " ".join(words), [], 0
    for w in words:
        spans.append((at, at + len(w)))
        at += len(w) + 1
    tagged = TaggedCaption(caption=caption, words=words, upos=[UPOS_ID[u] for u in upos], spans=spans,
                           ids=ids, pos=pos, word=word)
    tagged.validate()
    return tagged


def draw(colour: str, shape: str, side: str, size: str, px: int, rng: random.Random) -> bytes:
    """JPEG bytes of one shape on a grey background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (px, px), (128 + rng.randint(-20, 20),) * 3)
    canvas = ImageDraw.Draw(image)
    r = px * (0.22 if size == "big" else 0.13)
    cx = px * (0.28 if side == "left" else 0.72) + rng.uniform(-3, 3)
    cy = px * 0.5 + rng.uniform(-px * 0.15, px * 0.15)
    box = (cx - r, cy - r, cx + r, cy + r)
    fill = COLOURS[colour]
    if shape == "circle":
        canvas.ellipse(box, fill=fill)
    elif shape == "square":
        canvas.rectangle(box, fill=fill)
    elif shape == "triangle":
        canvas.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        canvas.rectangle((cx - r, cy - r / 3, cx + r, cy + r / 3), fill=fill)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_synthetic_shards(out: str | Path, n_images: int = 200, captions_per_image: int = 2,
                           shard_sizes: list[int] | None = None, image_px: int = 72, seed: int = 0,
                           corrupt: int = 0, pairs: bool = False, bad_images: int = 0, histogram: bool = False) -> Path:
    """A finished shard directory (manifest, tars, sizes.json) of n_images x captions_per_image samples.

    `shard_sizes` splits the samples unevenly (default: one shard); `corrupt` appends that many samples
    with a broken pos.npy to the last shard, and `bad_images` gives that many samples of every shard
    undecodable image bytes (both are skipped and counted by the trainer). With `pairs`, caption c of
    images 2k and 2k+1 share the minimal-pair label `2k-c`. With `histogram`, pos_histogram.json holds the
    captions' UPOS counts at word and wordpiece level, as tag-shards writes it.
    """
    import webdataset as wds

    from shards.tokenizer import load_tokenizer

    tokenizer, info = load_tokenizer()
    rng = random.Random(seed)
    samples, words_hist, pieces_hist = [], Counter(), Counter()
    for i in range(n_images):
        slots = {"colour": rng.choice(list(COLOURS)), "shape": rng.choice(SHAPES), "side": rng.choice(SIDES),
                 "size": rng.choice(SIZES)}
        jpg = draw(slots["colour"], slots["shape"], slots["side"], slots["size"], image_px, rng)
        for c in range(captions_per_image):
            template = TEMPLATES[(i + c) % len(TEMPLATES)]
            words = [w.format(**slots) for w, _ in template]
            tagged = tag_caption(words, [u for _, u in template], tokenizer)
            words_hist.update(u for _, u in template)
            pieces_hist.update(UPOS_NAMES[p] for p in tagged.pos.tolist() if p != NOT_A_WORD)
            pair = f"{i - i % 2}-{c}" if pairs else None
            samples.append(encode_sample(f"synth-{i:06d}-{c}", tagged, "synthetic", f"img{i:06d}", jpg, pair=pair))
    total = len(samples)
    shard_sizes = shard_sizes or [total]
    if sum(shard_sizes) != total:
        raise ValueError(f"shard_sizes sum to {sum(shard_sizes)}, not {total}")
    root = Path(out)
    (root / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    entries, sizes, start = [], {}, 0
    for s, count in enumerate(shard_sizes):
        name = f"synth-{s:06d}.tar"
        chunk = samples[start:start + count]
        start += count
        chunk = [dict(sample, jpg=b"\xff\xd8 not a jpeg") if k < bad_images else sample
                 for k, sample in enumerate(chunk)]
        if s == len(shard_sizes) - 1:
            for k in range(corrupt):
                bad = dict(chunk[k % len(chunk)], __key__=f"corrupt-{k}")
                bad["pos.npy"] = b"not an npy file"
                chunk = chunk + [bad]
        with wds.TarWriter(str(root / SHARDS_DIR / name)) as writer:
            for sample in chunk:
                writer.write(sample)
        sizes[name] = len(chunk)
        tar = root / SHARDS_DIR / name
        entries.append({"file": name, "samples": len(chunk), "bytes": tar.stat().st_size, "sha256": sha256_file(tar)})
    write_sizes(root / SHARDS_DIR, sizes)
    if histogram:
        atomic_write_json(root / f"{HISTOGRAM_NAME}.json", {"word": dict(words_hist), "wordpiece": dict(pieces_hist)})
    write_manifest(root, {
        "schema_version": SCHEMA_VERSION, "tokenizer": info.to_manifest(),
        "tagger": {"name": "synthetic (hand-written UPOS)"}, "shards": entries,
        "totals": {"read": total, "written": total, "rejected": {}}, "config": {"seed": seed},
    })
    return root
