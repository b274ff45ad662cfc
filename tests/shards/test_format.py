"""The shard format contract: encode/decode round trip, schema refusal, manifest and atomic writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import webdataset as wds

from toolbox.atomic import atomic_path, atomic_write_json, sha256_file
from shards.schema import SchemaVersionError
from toolbox.errors import UserError
from shards.manifest import read_manifest, read_sizes, shard_paths, write_manifest, write_sizes
from shards.reader import iter_samples
from shards.schema import SCHEMA_VERSION, TaggedCaption, decode_sample, encode_array, encode_sample
from shards.upos import NOT_A_WORD, STUDIED_CLASSES, UPOS_ID, UPOS_NAMES, upos_id


def tagged_example() -> TaggedCaption:
    """'A red cube.' with [CLS] a red cube . [SEP]."""
    return TaggedCaption(
        caption="A red cube.",
        words=["A", "red", "cube", "."],
        upos=[UPOS_ID["DET"], UPOS_ID["ADJ"], UPOS_ID["NOUN"], UPOS_ID["PUNCT"]],
        spans=[(0, 1), (2, 5), (6, 10), (10, 11)],
        ids=np.array([101, 1037, 2417, 14291, 1012, 102], dtype=np.int32),
        pos=np.array([255, 5, 0, 7, 12, 255], dtype=np.uint8),
        word=np.array([-1, 0, 1, 2, 3, -1], dtype=np.int16),
    )


def write_tiny_output(out, n: int = 3, schema_version: int = SCHEMA_VERSION) -> None:
    """A finished output directory with one shard of `n` samples."""
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True)
    with wds.TarWriter(str(shard_dir / "t-000000.tar"), mtime=0) as sink:
        for i in range(n):
            sink.write(encode_sample(f"t-{i}", tagged_example(), "test", str(i), b"\xff\xd8fake", "jpg"))
    write_sizes(shard_dir, {"t-000000.tar": n})
    write_manifest(out, {"schema_version": schema_version, "shards": [{"file": "t-000000.tar", "samples": n}]})


def test_upos_table_is_schema_1() -> None:
    assert UPOS_NAMES[0] == "ADJ" and UPOS_ID["DET"] == 5 and UPOS_ID["VERB"] == 15 and UPOS_ID["SPACE"] == 17
    assert len(UPOS_NAMES) == 18 and NOT_A_WORD == 255
    assert set(STUDIED_CLASSES) <= set(UPOS_NAMES)
    assert upos_id("det") == 5
    with pytest.raises(UserError, match="unknown UPOS class 'DETT'"):
        upos_id("DETT")


def test_encode_decode_round_trip() -> None:
    tagged = tagged_example()
    tagged.validate()
    raw = encode_sample("k-1", tagged, "coco", "391895", b"imagebytes", "png")
    sample = decode_sample(raw)
    assert sample.key == "k-1" and sample.caption == "A red cube."
    assert sample.meta == {"source": "coco", "image_id": "391895", "words": tagged.words,
                           "upos": tagged.upos, "spans": [list(s) for s in tagged.spans]}
    assert sample.ids.dtype == np.int32 and sample.pos.dtype == np.uint8 and sample.word.dtype == np.int16
    np.testing.assert_array_equal(sample.ids, tagged.ids)
    assert sample.image_bytes == b"imagebytes" and sample.image_ext == "png"
    assert encode_sample("k-1", tagged, "coco", "391895", b"imagebytes", "png") == raw  # deterministic bytes
    assert decode_sample(encode_sample("k-2", tagged, "scenes", "7", None, pair="6-0")).meta["pair"] == "6-0"


def test_validate_rejects_broken_alignment() -> None:
    tagged = tagged_example()
    tagged.pos = tagged.pos.copy()
    tagged.pos[0] = 7  # [CLS] must carry 255
    with pytest.raises(ValueError, match="special tokens"):
        tagged.validate()


def test_decode_rejects_missing_members_and_wrong_dtype() -> None:
    raw = encode_sample("k", tagged_example(), "s", "1", None)
    del raw["pos.npy"]
    with pytest.raises(ValueError, match="missing members"):
        decode_sample(raw)
    raw = encode_sample("k", tagged_example(), "s", "1", None)
    raw["ids.npy"] = raw["word.npy"]
    with pytest.raises(ValueError, match="ids.npy: expected"):
        decode_sample(raw)


def test_reader_yields_samples_of_finished_output(tmp_path) -> None:
    write_tiny_output(tmp_path, n=3)
    samples = list(iter_samples(tmp_path))
    assert [s.key for s in samples] == ["t-0", "t-1", "t-2"]
    assert read_sizes(tmp_path / "shards") == {"t-000000.tar": 3}
    assert [p.name for p in shard_paths(tmp_path)] == ["t-000000.tar"]


def test_reader_refuses_unknown_schema(tmp_path) -> None:
    write_tiny_output(tmp_path, schema_version=99)
    with pytest.raises(SchemaVersionError, match="schema version 99 is not supported"):
        list(iter_samples(tmp_path))


def test_missing_manifest_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(UserError, match="no manifest.json"):
        read_manifest(tmp_path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    atomic_write_json(target, {"b": 1, "a": 2})
    assert json.loads(target.read_text()) == {"a": 2, "b": 1}
    assert len(sha256_file(target)) == 64


def test_encode_array_matches_np_save_for_every_length() -> None:
    import io

    rng = np.random.default_rng(0)
    for member, dtype in (("ids.npy", np.int32), ("pos.npy", np.uint8), ("word.npy", np.int16)):
        for n in (0, 1, 5, 64, 300):
            array = rng.integers(0, 100, n).astype(dtype)
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            assert encode_array(array, member) == buffer.getvalue()
    with pytest.raises(ValueError, match="1-d"):
        encode_array(np.zeros((2, 2), dtype=np.int32), "ids.npy")
