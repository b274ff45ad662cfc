"""Streaming: per-rank epoch length, rank/worker splits over uneven shards, exact resume (also past bad
images), corrupt samples, the word index in every batch and WHOLE_WORD's check of it."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from toolbox.errors import UserError
from shards.upos import NOT_A_WORD
from synthetic_shards import write_synthetic_shards
from trainer.data.stream import ShardStream, StreamSettings, image_id_hash, make_loader, open_shards, pair_up, steps_per_epoch


SETTINGS = StreamSettings(batch_size=8, image_size=32, max_len=30, seed=3, shuffle_buffer=50)


def stream(shards: Path, rank: int = 0, world: int = 1, skip: int = 0, epoch: int = 0,
           drawn: dict[int, int] | None = None) -> ShardStream:
    s = open_shards(shards)
    return ShardStream(s.urls, SETTINGS, rank, world, epoch=epoch, skip_batches=skip, drawn=drawn)


def test_sizes_and_epoch_length(uneven_shards: Path) -> None:
    s = open_shards(uneven_shards)
    assert s.sizes == (100, 60, 34) and s.total == 194  # 2 corrupt samples in the last tar
    assert steps_per_epoch(s.total, 2, 8) == 12 and steps_per_epoch(5, 4, 8) == 1


def test_batches_are_schema_shaped(uneven_shards: Path) -> None:
    batch = next(iter(stream(uneven_shards)))
    assert batch["pixels"].shape == (8, 32, 32, 3) and batch["pixels"].dtype == torch.uint8  # normalised on the device
    assert batch["ids"].dtype == torch.long
    L = batch["ids"].shape[1]
    assert batch["pos"].shape == (8, L) and batch["attention_mask"].shape == (8, L)
    assert (batch["ids"][:, 0] == 101).all()
    assert (batch["pos"][batch["attention_mask"] == 0] == NOT_A_WORD).all()
    assert image_id_hash("img1") == image_id_hash("img1") != image_id_hash("img2")


def share_keys(shards: Path, consumer: int, consumers: int, npass: int = 0) -> list[str]:
    return [sample.key for sample in stream(shards).one_pass(consumer, consumers, npass)]


def test_uneven_ranks_take_the_same_steps_by_cycling(uneven_shards: Path) -> None:
    # 3 shards of 100/60/34 samples over 2 ranks: the ranks' shares differ, but each takes
    # steps_per_epoch full batches; the smaller share is only enough by starting another pass.
    steps = steps_per_epoch(open_shards(uneven_shards).total, 2, 8)
    shares = [len(share_keys(uneven_shards, rank, 2)) for rank in (0, 1)]
    assert min(shares) < steps * 8 < sum(shares)
    for rank in (0, 1):
        batches = list(islice(iter(stream(uneven_shards, rank, 2)), steps))
        assert [len(b["ids"]) for b in batches] == [8] * steps
    first = [next(iter(stream(uneven_shards, rank, 2)))["image_ids"] for rank in (0, 1)]
    assert not torch.equal(first[0], first[1])


def test_rank_and_worker_shares_are_disjoint_and_cover_every_sample(uneven_shards: Path) -> None:
    everything = set(share_keys(uneven_shards, 0, 1))
    assert len(everything) == 192  # 194 samples, 2 of them corrupt
    for consumers in (2, 3, 4, 6):  # whole shards per consumer (2, 3), every n-th sample (4, 6)
        shares = [share_keys(uneven_shards, c, consumers) for c in range(consumers)]
        assert sum(len(keys) for keys in shares) == len(everything), consumers
        assert set().union(*shares) == everything, consumers


def test_resume_skips_to_the_same_batches(uneven_shards: Path) -> None:
    for workers in (0, 2):
        full = [b for b in islice(iter(make_loader(stream(uneven_shards), workers, False)), 7)]
        resumed = [b for b in islice(iter(make_loader(stream(uneven_shards, skip=4), workers, False)), 3)]
        for a, b in zip(full[4:], resumed):
            assert torch.equal(a["ids"], b["ids"]) and torch.equal(a["pixels"], b["pixels"])


def epoch_order(shards: Path, epoch: int) -> list[int]:
    """The image of every sample of one epoch's batches, in the order they were batched."""
    steps = steps_per_epoch(open_shards(shards).total, 1, SETTINGS.batch_size)
    return torch.cat([b["image_ids"] for b in islice(iter(stream(shards, epoch=epoch)), steps)]).tolist()


def test_epochs_reshuffle(uneven_shards: Path) -> None:
    a, b = epoch_order(uneven_shards, 0), epoch_order(uneven_shards, 1)
    assert len(a) == len(b) == 192 and a != b and epoch_order(uneven_shards, 0) == a
    # Two independent orders of 96 images x 2 captions agree at a position with probability ~2/192; a stream that
    # reshuffled only part of the epoch (its start, one shard, the shard order alone) would agree far more often.
    assert sum(x == y for x, y in zip(a, b)) < len(a) // 10


def test_resume_with_bad_images_in_the_consumed_part(tmp_path: Path) -> None:
    # Bad images are drawn from the stream but not batched: a resume must skip what was drawn,
    # not `batches x batch_size`, or every later batch shifts.
    shards = write_synthetic_shards(tmp_path / "bad", n_images=60, shard_sizes=[40, 40, 40], bad_images=6)
    for workers in (0, 2):
        full = list(islice(iter(make_loader(stream(shards), workers, False)), 7))
        roles = max(1, workers)
        drawn = {b % roles: int(full[b]["drawn"]) for b in range(4)}
        assert all(int(full[b]["corrupt"]) > 0 for b in range(4 - roles, 4))  # bad images among the first 4
        resumed = list(islice(iter(make_loader(stream(shards, skip=4, drawn=drawn), workers, False)), 3))
        for a, b in zip(full[4:], resumed):
            assert torch.equal(a["ids"], b["ids"]) and torch.equal(a["pixels"], b["pixels"])
        naive = next(iter(make_loader(stream(shards, skip=4), workers, False)))
        assert not torch.equal(naive["ids"], full[4]["ids"])  # what the old resume did


def test_corrupt_samples_skipped_and_counted(uneven_shards: Path) -> None:
    # Exactly one pass: 24 batches of 8 are the 192 good samples (a buffer of 1 holds back only the next one, the
    # first of the second pass), so the 2 corrupt samples planted in the last tar have been met once, and only once.
    s = open_shards(uneven_shards)
    one_pass = ShardStream(s.urls, replace(SETTINGS, shuffle_buffer=1))
    batches = list(islice(iter(one_pass), 24))
    assert int(batches[-1]["corrupt"]) == 2 and int(batches[-1]["drawn"]) == 192
    images = Counter(torch.cat([b["image_ids"] for b in batches]).tolist())
    assert len(images) == 96 and set(images.values()) == {2}  # every good sample batched once, none lost


def test_minimal_pairs_share_a_batch(tmp_path: Path) -> None:
    shards = write_synthetic_shards(tmp_path / "paired", n_images=40, pairs=True)
    partner = {image_id_hash(f"img{i:06d}"): image_id_hash(f"img{i ^ 1:06d}") for i in range(40)}
    batches = [set(b["image_ids"].tolist()) for b in islice(iter(stream(shards)), 20)]
    assert all(partner[i] in ids for ids in batches for i in ids)


def test_pair_up_keeps_every_sample_once() -> None:
    from shards.schema import Sample

    def sample(key: str, pair: str | None) -> Sample:
        empty = np.zeros(0, dtype=np.int32)
        return Sample(key, "", {} if pair is None else {"pair": pair}, empty, empty, empty)

    stream_ = [sample("a", "p"), sample("b", None), sample("c", "q"), sample("d", "p"), sample("e", "r"),
               sample("f", "s"), sample("g", "t")]
    units = [[s.key for s in unit] for unit in pair_up(iter(stream_), window=2)]
    # q and r wait too long (window 2) and go on alone; s and t are still waiting when the stream ends.
    assert units == [["b"], ["a", "d"], ["c"], ["e"], ["f"], ["g"]]


def test_word_index_is_batched_beside_pos(uneven_shards: Path) -> None:
    batch = next(iter(stream(uneven_shards)))
    word, pos = batch["word"], batch["pos"]
    assert word.shape == pos.shape and word.dtype == torch.int16
    assert torch.equal(word >= 0, pos != NOT_A_WORD), "word index -1 exactly on specials and padding"
    assert (word[:, 1:2] == 0).all()  # the first word follows [CLS]


def rewrite_first_tar(shards: Path, change) -> None:
    """Rewrite the first tar of `shards` with `change(sample)` applied to every raw sample."""
    import webdataset as wds

    tar = Path(open_shards(shards).urls[0])
    samples = [change(dict(raw)) for raw in wds.DataPipeline(wds.SimpleShardList([str(tar)]),
                                                            wds.tarfile_to_samples())]
    with wds.TarWriter(str(tar)) as writer:
        for raw in samples:
            writer.write({k: v for k, v in raw.items() if k != "__url__" and k != "__local_path__"})


def test_whole_word_refuses_shards_without_a_word_index(tmp_path: Path) -> None:
    from toolbox.errors import UserError
    from shards.schema import encode_array
    from trainer.data.stream import check_word_index

    good = write_synthetic_shards(tmp_path / "good", n_images=4)
    check_word_index(open_shards(good))
    lacking = write_synthetic_shards(tmp_path / "lacking", n_images=4)
    rewrite_first_tar(lacking, lambda raw: {k: v for k, v in raw.items() if k != "word.npy"})
    with pytest.raises(UserError, match="WHOLE_WORD needs the word index word.npy") as err:
        check_word_index(open_shards(lacking))
    assert "\n" not in str(err.value)
    blank = write_synthetic_shards(tmp_path / "blank", n_images=4)
    rewrite_first_tar(blank, lambda raw: {**raw, "word.npy": encode_array(np.full(5, -1), "word.npy")})
    with pytest.raises(UserError, match="does not mark the word tokens"):
        check_word_index(open_shards(blank))


def test_several_outputs_mix_and_must_match(uneven_shards: Path, tmp_path: Path) -> None:
    other = write_synthetic_shards(tmp_path / "other", n_images=10, shard_sizes=[20])
    both = open_shards(f"{uneven_shards},{other}")
    assert both.total == 194 + 20 and len(both.urls) == 4 and both.root == f"{uneven_shards},{other}"
    drawn = [s.key for s in stream(uneven_shards).one_pass(0, 1, 0)]
    mixed = ShardStream(both.urls, SETTINGS)
    keys = [s.key for s in mixed.one_pass(0, 1, 0)]
    assert len(keys) == len(drawn) + 20 and set(drawn) <= set(keys)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["tagger"] = {"model": "another_model"}
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="another tagger model"):
        open_shards(f"{uneven_shards},{other}")
