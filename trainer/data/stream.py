"""Streaming the shards: shard shuffle per epoch, split by rank and worker, a sample shuffle buffer,
images decoded last, batches collated in the worker as uint8 crops and normalised on the device (`to_device`;
with `--decode gpu` the device decodes too: trainer.data.device_decode). Per-rank epoch length comes from
sizes.json, and every stream cycles, so ranks with uneven shards still take the same number of steps and never hang.
Minimal pairs (samples sharing a json `pair` label) leave the shuffle buffer together, so both are
(nearly always) in one batch: then only the words that differ tell their captions apart.

Data position is (epoch, batch index, samples drawn per worker role): worker w of n yields batches
w, w+n, ...; each batch reports how many samples its worker has drawn so far (a sample with a bad image
is drawn but not batched). A resumed run skips exactly the samples already drawn, without decoding
their images, and crops are seeded per sample, so the resumed stream is the uninterrupted one even
when the consumed part held corrupt samples.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from toolbox.errors import UserError
from shards.manifest import read_histogram, read_manifest, read_output_sizes, shard_urls
from shards.reader import decode_image, tar_samples
from shards.schema import Sample, decode_array, decode_sample
from shards.verify import check_shards
from shards.upos import NOT_A_WORD
from trainer.data.device_decode import decode_crops, jpeg_box
from trainer.data.transforms import normalize, train_crop

log = logging.getLogger(__name__)
PAIR_WINDOW = 64
"""Samples a minimal-pair member waits for its partner (the scenes write a pair 5 captions apart)."""


def image_id_hash(image_id: Any) -> int:
    """A stable non-negative int64 for an image id string (equal ids, equal hashes; across ranks too)."""
    digest = hashlib.blake2b(str(image_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@dataclass(frozen=True)
class ShardSet:
    """The tars of one or several finished tag-shards outputs, their sample counts and manifest entries."""

    root: str  # the output(s) as given (comma-separated when several)
    manifest: dict[str, Any]  # the first output's (all agree on schema, tokenizer and tagger)
    urls: tuple[str, ...]
    sizes: tuple[int, ...]
    entries: tuple[dict[str, Any], ...] = ()  # each tar's manifest entry: file, samples, bytes, sha256
    histograms: tuple[dict[str, Any] | None, ...] = ()  # each output's pos_histogram.json (None where it has none)

    @property
    def total(self) -> int:
        return sum(self.sizes)


TAGGER_IDENTITY = ("model", "model_version", "spacy_version", "pipes")


def _open_output(root: str) -> ShardSet:
    """One output, wherever it lives (a folder, http(s)://, an fsspec URL, pipe:): check the manifest (schema),
    list the tars and their sizes (sizes.json, else the manifest)."""
    manifest = read_manifest(root)
    urls = shard_urls(root, manifest)
    if not urls:
        raise UserError(f"{root}: the manifest lists no shards")
    sizes_json = read_output_sizes(root) or {}
    entries = tuple(dict(e) for e in manifest["shards"])
    sizes = tuple(int(sizes_json.get(e["file"], e.get("samples", 0))) for e in entries)
    if sum(sizes) == 0:
        raise UserError(f"{root}: the shards hold no samples")
    return ShardSet(root=root, manifest=manifest, urls=tuple(urls), sizes=sizes, entries=entries,
                    histograms=(read_histogram(root),))


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    tagger = manifest.get("tagger") or {}
    return {"schema": manifest.get("schema_version"), "vocab_sha256": (manifest.get("tokenizer") or {}).get(
        "vocab_sha256"), **{f"tagger {k}": tagger.get(k) for k in TAGGER_IDENTITY}}


def split_outputs(spec: str) -> list[str]:
    """The outputs a `--shards` value names: separated by `::` (open_clip's way to mix sources) or, without
    `::`, by commas outside braces; each brace-expanded (`s3://bucket/{cc3m,coco}` names two)."""
    from braceexpand import braceexpand

    if "::" in spec:
        parts = spec.split("::")
    else:
        parts, depth, start = [], 0, 0
        for i, char in enumerate(spec):
            depth += (char == "{") - (char == "}")
            if char == "," and depth == 0:
                parts.append(spec[start:i])
                start = i + 1
        parts.append(spec[start:])
    return [out for part in parts if part.strip() for out in braceexpand(part.strip())]


def open_shards(spec: str | os.PathLike[str]) -> ShardSet:
    """A tag-shards output, or several (`split_outputs`: e.g. CC3M and COCO), each a local folder or a URL of one:
    their tars are streamed together, so samples mix in proportion to the outputs' sizes. Outputs made with
    another schema, tokenizer vocabulary or tagger are refused."""
    parts = [_open_output(p) for p in split_outputs(str(spec))]
    if not parts:
        raise UserError(f"--shards {spec!r}: no tag-shards output given")
    first = _identity(parts[0].manifest)
    for part in parts[1:]:
        other = _identity(part.manifest)
        diff = [k for k in first if first[k] != other[k]]
        if diff:
            raise UserError(f"{part.root} was made with another {diff[0]} than {parts[0].root} "
                            f"({other[diff[0]]!r} vs {first[diff[0]]!r}); re-tag one of them so that they match")
    return ShardSet(root=",".join(p.root for p in parts), manifest=parts[0].manifest,
                    urls=tuple(u for p in parts for u in p.urls), sizes=tuple(n for p in parts for n in p.sizes),
                    entries=tuple(e for p in parts for e in p.entries),
                    histograms=tuple(h for p in parts for h in p.histograms))


def check_shard_files(shards: ShardSet, allow_damaged: bool = False, verify: bool = False) -> None:
    """Refuse, in one line naming the shard and both sizes (or sha256s), a shard that is not the file its manifest
    lists (a truncated copy, a failed download), unless `allow_damaged` (then one warning per shard). `verify`
    checks every shard's sha256 too (reads each once)."""
    found = check_shards(shards.urls, shards.entries, hashes=verify)
    if found.unchecked:
        log.info("%d shards live where their size cannot be read without reading them (%s); pass --verify-shards "
                 "to check them before training (samples read per shard are counted while training)",
                 len(found.unchecked), found.unchecked[0])
    if not found.damaged:
        return
    more = f" (and {len(found.damaged) - 1} more damaged shards)" if len(found.damaged) > 1 else ""
    if not allow_damaged:
        raise UserError(f"damaged shard: {found.damaged[0]}{more}; copy it again, or pass --allow-damaged-shards "
                        "to train on what it holds")
    for line in found.damaged:
        log.warning("damaged shard (--allow-damaged-shards): %s", line)


def steps_per_epoch(total: int, world_size: int, batch_size: int) -> int:
    """Steps every rank takes per epoch: the same number on all ranks, whatever their shards hold."""
    return max(1, total // (world_size * batch_size))


def truncate(sample: Sample, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, pos, word) cut to max_len, keeping the final [SEP]."""
    arrays = (sample.ids, sample.pos, sample.word)
    if len(sample.ids) > max_len:
        arrays = tuple(np.concatenate([a[: max_len - 1], a[-1:]]) for a in arrays)
    return arrays  # type: ignore[return-value]


def collate(items: list[dict[str, Any]], pad_id: int, pad_to: int | None, image_size: int) -> dict[str, torch.Tensor]:
    """Stack the uint8 crops; pad ids (pad_id), pos (255), word index (-1) and the attention mask to the longest
    caption or `pad_to`. Items holding a JPEG for the device (`--decode gpu`) go into the `jpeg*` fields, and
    `pixels` holds the other rows only (see `to_device`)."""
    length = pad_to or max(len(it["ids"]) for it in items)
    ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    pos = torch.full((len(items), length), NOT_A_WORD, dtype=torch.uint8)
    word = torch.full((len(items), length), -1, dtype=torch.int16)
    mask = torch.zeros((len(items), length), dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it["ids"])
        ids[row, :n] = torch.from_numpy(it["ids"].astype(np.int64))
        pos[row, :n] = torch.from_numpy(it["pos"])
        word[row, :n] = torch.from_numpy(it["word"])
        mask[row, :n] = 1
    batch = {"ids": ids, "pos": pos, "word": word, "attention_mask": mask,
             "image_ids": torch.tensor([it["image_id"] for it in items], dtype=torch.long)}
    crops = [it["pixels"] for it in items if "pixels" in it]
    batch["pixels"] = torch.stack(crops) if crops else torch.empty((0, image_size, image_size, 3), dtype=torch.uint8)
    jpegs = [(row, it) for row, it in enumerate(items) if "jpeg" in it]
    if jpegs:
        batch["jpeg"] = torch.frombuffer(bytearray(b"".join(it["jpeg"] for _, it in jpegs)), dtype=torch.uint8)
        batch["jpeg_sizes"] = torch.tensor([len(it["jpeg"]) for _, it in jpegs], dtype=torch.long)
        batch["jpeg_boxes"] = torch.tensor([it["box"] for _, it in jpegs], dtype=torch.long)
        batch["jpeg_rows"] = torch.tensor([row for row, _ in jpegs], dtype=torch.long)
    return batch


JPEG_FIELDS = ("jpeg", "jpeg_sizes", "jpeg_boxes", "jpeg_rows")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on the device, its images decoded there when the loader left JPEGs (`--decode gpu`) and
    normalised there (the loader hands over uint8 crops)."""
    jpeg = {name: batch.pop(name) for name in JPEG_FIELDS if name in batch}
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    pixels = batch["pixels"]
    if jpeg:  # the rows are known on the host: place them with integer indices (no boolean index, no sync)
        cpu_rows = jpeg["jpeg_rows"]
        n = len(cpu_rows) + len(pixels)
        kept = torch.ones(n, dtype=torch.bool)
        kept[cpu_rows] = False
        rows = cpu_rows.to(device, non_blocking=True)
        full = torch.empty((n, *pixels.shape[1:]), dtype=torch.uint8, device=device)
        full[torch.arange(n)[kept].to(device, non_blocking=True)] = pixels
        full[rows] = decode_crops(list(jpeg["jpeg"].split(jpeg["jpeg_sizes"].tolist())), jpeg["jpeg_boxes"],
                                  pixels.shape[1], device)
        pixels = full
    batch["pixels"] = normalize(pixels)
    return batch


def check_word_index(shards: ShardSet) -> None:
    """Whole-word masking reads word.npy: refuse, in one line, shards whose first sample has none or one
    that does not mark exactly the word tokens (>= 0 where pos != 255)."""
    import webdataset as wds

    raw = next(iter(tar_samples([shards.urls[0]], wds.reraise_exception)), None)
    fix = "re-tag them with `posmask tag-shards`, or drop WHOLE_WORD"
    if raw is None or "word.npy" not in raw:
        raise UserError(f"{shards.root}: WHOLE_WORD needs the word index word.npy, which the first sample of "
                        f"{Path(shards.urls[0]).name} lacks; {fix}")
    try:
        word, pos = decode_array(raw["word.npy"], "word.npy"), decode_array(raw["pos.npy"], "pos.npy")
    except (KeyError, ValueError) as err:
        raise UserError(f"{shards.root}: WHOLE_WORD needs a readable word.npy and pos.npy ({err}); {fix}") from None
    if word.shape != pos.shape or not np.array_equal(word >= 0, pos != NOT_A_WORD):
        raise UserError(f"{shards.root}: word.npy of sample {raw.get('__key__')} does not mark the word tokens "
                        f"(>= 0 exactly where pos.npy is not 255); WHOLE_WORD cannot use it; {fix}")


def pair_up(samples: Iterator[Sample], window: int = PAIR_WINDOW) -> Iterator[list[Sample]]:
    """Group a stream into units: `[a, b]` for two samples with the same json `pair` label, `[s]` otherwise.

    A sample waits for its partner among the next `window` samples and then goes on alone (its partner
    is on another rank or worker, or was rejected): nothing is dropped, and without labels the units
    are the samples in their order.
    """
    waiting: dict[str, Sample] = {}
    for sample in samples:
        label = sample.meta.get("pair")
        if label is None:
            yield [sample]
        elif label in waiting:
            yield [waiting.pop(label), sample]
        else:
            waiting[label] = sample
            if len(waiting) > window:
                yield [waiting.pop(next(iter(waiting)))]
    yield from ([sample] for sample in waiting.values())


@dataclass(frozen=True)
class StreamSettings:
    """What a run's streams make of the samples, the same for every rank and epoch: batches of `batch_size`
    crops of `image_size` px (`crop_scale`, `augment`: trainer.data.transforms) or JPEGs for the device
    (`device_decode`), captions cut to `max_len` and padded with `pad_id` to the longest or to `pad_to`, drawn
    through a shuffle buffer of `shuffle_buffer` samples seeded by `seed`."""

    batch_size: int
    image_size: int
    max_len: int
    seed: int = 0
    pad_id: int = 0
    shuffle_buffer: int = 2000
    crop_scale: tuple[float, float] = (0.5, 1.0)
    augment: str = "crop"
    device_decode: bool = False
    pad_to: int | None = None


class ShardStream(IterableDataset):
    """An endless stream of collated batches for one rank and one epoch (see module doc). `skip_batches` and
    `drawn` place a resumed stream: the samples each worker role had drawn (None: assume full batches).

    With `sizes` (the samples each tar holds, as the manifest says), every shard a consumer finishes reading is
    counted: batches carry `shards_read`, `{"PASS:URL": (samples read, samples expected)}` for the shards finished
    since the worker's previous batch (each shard of a pass is counted by one consumer)."""

    def __init__(self, urls: tuple[str, ...], settings: StreamSettings, rank: int = 0, world_size: int = 1,
                 epoch: int = 0, skip_batches: int = 0, drawn: Mapping[int, int] | None = None,
                 sizes: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.urls, self.settings, self.rank, self.world_size, self.epoch = urls, settings, rank, world_size, epoch
        self.skip_batches, self.drawn = skip_batches, drawn
        self.expected = dict(zip(urls, sizes)) if sizes is not None else None
        self.corrupt = 0
        self.finished: dict[str, tuple[int, int]] = {}

    def _raw_samples(self, consumer: int, consumers: int) -> Iterator[Sample]:
        """Decoded text of this consumer's samples, pass after pass over freshly shuffled shards."""
        npass = 0
        while True:
            yield from self.one_pass(consumer, consumers, npass)
            npass += 1

    def one_pass(self, consumer: int, consumers: int, npass: int) -> Iterator[Sample]:
        """Consumer `consumer`'s share of one pass: whole shards when there are at least as many shards
        as consumers, else every `consumers`-th sample of every shard. Corrupt samples are counted and skipped;
        each shard's samples are counted once it is read to its end (or to where it breaks off)."""
        order = list(self.urls)
        random.Random(f"{self.settings.seed}-{self.epoch}-{npass}").shuffle(order)
        split_by_shard = len(order) >= consumers
        mine = order[consumer::consumers] if split_by_shard else order
        counts = split_by_shard or consumer == 0  # in a sample split every consumer reads every shard: one counts
        queue, read = list(mine), {url: 0 for url in mine}
        for index, raw in enumerate(tar_samples(mine, self._bad_tar)):
            url = raw.get("__url__")
            while queue and queue[0] != url:  # the shards before this one are read
                self._shard_done(npass, queue.pop(0), read, counts)
            read[url] = read.get(url, 0) + 1
            if not split_by_shard and index % consumers != consumer:
                continue
            try:
                yield decode_sample(raw)
            except (ValueError, KeyError, UnicodeDecodeError) as err:
                self.corrupt += 1
                log.warning("skipping corrupt sample %s: %s", raw.get("__key__"), err)
        while queue:
            self._shard_done(npass, queue.pop(0), read, counts)

    def _shard_done(self, npass: int, url: str, read: dict[str, int], counts: bool) -> None:
        if self.expected is not None and counts:
            self.finished[f"{npass}:{url}"] = (read.get(url, 0), self.expected.get(url, 0))

    def _bad_tar(self, exn: Exception) -> bool:
        """webdataset handler: an unreadable tar member is counted and skipped."""
        self.corrupt += 1
        log.warning("skipping unreadable tar data: %s", exn)
        return True

    def _shuffled(self, samples: Iterator[Sample], rng: random.Random) -> Iterator[Sample]:
        """A shuffle buffer over minimal pairs and single samples (text decoded, images still bytes);
        the two samples of a pair leave it one after the other."""
        buffer: list[list[Sample]] = []
        for unit in pair_up(samples):
            if len(buffer) < self.settings.shuffle_buffer:
                buffer.append(unit)
                continue
            i = rng.randrange(len(buffer))
            buffer[i], unit = unit, buffer[i]
            yield from unit

    def _image(self, sample: Sample, rng: random.Random) -> dict[str, Any]:
        """`pixels`: the uint8 crop, decoded here; or, for the device, the `jpeg` and its crop `box`."""
        s = self.settings
        if s.device_decode and sample.image_bytes is not None:
            box = jpeg_box(sample.image_bytes, rng, s.crop_scale)
            if box is not None:
                return {"jpeg": sample.image_bytes, "box": box}
        return {"pixels": train_crop(decode_image(sample), s.image_size, rng, s.crop_scale, s.augment)}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        # The loader takes batch j from worker j % n; after skipping K batches, worker w plays the role
        # of the uninterrupted run's worker (w + K) % n, which had made the batches role, role + n, ... < K.
        role = (wid + self.skip_batches) % nworkers
        if self.drawn is not None:
            count = self.drawn.get(role, 0)
        else:
            count = self.settings.batch_size * max(0, (self.skip_batches - role + nworkers - 1) // nworkers)
        consumer, consumers = self.rank * nworkers + role, self.world_size * nworkers
        tag = f"{self.settings.seed}-{self.epoch}-{self.rank}-{role}"
        samples = self._shuffled(self._raw_samples(consumer, consumers), random.Random(tag))
        for _ in range(count):
            next(samples)
        while True:
            items: list[dict[str, Any]] = []
            while len(items) < self.settings.batch_size:
                sample = next(samples)
                count += 1
                try:  # decode the image last, with a crop seeded by the sample's place in the stream
                    image = self._image(sample, random.Random(f"{tag}-{count}"))
                except (OSError, ValueError) as err:
                    self.corrupt += 1
                    log.warning("skipping sample %s with a bad image: %s", sample.key, err)
                    continue
                ids, pos, word = truncate(sample, self.settings.max_len)
                items.append({**image, "ids": ids, "pos": pos, "word": word,
                              "image_id": image_id_hash(sample.meta.get("image_id", sample.key))})
            batch = collate(items, self.settings.pad_id, self.settings.pad_to, self.settings.image_size)
            batch["corrupt"] = torch.tensor(self.corrupt)  # cumulative, per worker
            batch["drawn"] = torch.tensor(count)  # samples this worker role has drawn in this epoch
            if self.expected is not None:
                batch["shards_read"], self.finished = self.finished, {}
            yield batch


def make_loader(stream: ShardStream, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over the stream (batches are made in the workers)."""
    # Its own generator: creating an iterator must not draw from the global RNG (exact resume).
    return DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      prefetch_factor=4 if workers > 0 else None, persistent_workers=False,
                      generator=torch.Generator().manual_seed(stream.settings.seed + stream.epoch))
