"""End to end with real Ray (2 workers) and real spaCy: the bad-input corpus for every source,
reconciled counts, readable shards, resume/refusal of an existing OUT, real COCO captions."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline import items as R
from pipeline.orchestrate import PipelineConfig, init_ray, output_config, resolve_source, run_pipeline
from pipeline.sources import img2dataset
from pipeline.state import prepare_out
from pipeline.worker import TaskConfig, process_shard
from pipeline_testdata import bomb_png, jpeg_bytes, png_bytes, rejects_of, shard_digests, write_coco, write_tar
from toolbox.errors import UserError
from shards.reader import iter_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One local Ray with 2 workers for the module (workers keep spaCy loaded between runs)."""
    import ray

    started = init_ray(2, None)
    yield
    if started:
        ray.shutdown()


def check_output(out: Path, read: int) -> tuple[dict, dict, dict]:
    """(manifest, samples by key, rejects by key) after checking that everything reconciles."""
    manifest = json.loads((out / "manifest.json").read_text())
    totals = manifest["totals"]
    samples = {s.key: s for s in iter_samples(out)}
    rejects = rejects_of(out)
    assert totals["read"] == read == totals["written"] + totals["rejected"]
    assert totals["written"] == len(samples) == sum(json.loads((out / "shards" / "sizes.json").read_text()).values())
    n_rejects = pq.read_table(out / "rejects.parquet").num_rows
    assert totals["rejected"] == n_rejects == sum(totals["rejected_by_reason"].values())
    assert all(rejects[k] == R.DUPLICATE_KEY for k in set(samples) & set(rejects))
    captions = pq.read_table(out / "captions.parquet").to_pydict()
    assert captions["key"] == [s.key for s in iter_samples(out)]
    for s in samples.values():
        assert len(s.ids) == len(s.pos) == len(s.word) <= manifest["config"]["max_len"]
        assert s.pos[0] == 255 and s.word[0] == -1 and len(s.meta["words"]) == len(s.meta["upos"])
    hist = json.loads((out / "pos_histogram.json").read_text())
    assert sum(hist["word"].values()) == sum(len(s.meta["words"]) for s in samples.values())
    assert (out / "pos_histogram.png").stat().st_size > 1000 and not (out / ".work").exists()
    for shard in manifest["shards"]:  # fixed member metadata: the same input gives the same bytes
        with tarfile.open(out / "shards" / shard["file"]) as tar:
            for member in tar:
                assert (member.mtime, member.mode, member.uid, member.uname, member.pax_headers) == (
                    0, 0o444, 0, "posmask", {})
    return manifest, samples, rejects


def test_coco_bad_input_corpus(tmp_path: Path) -> None:
    cmyk = jpeg_bytes((300, 200), "CMYK", (10, 200, 30, 0))
    images = {
        1: jpeg_bytes((640, 480)), 2: cmyk, 3: jpeg_bytes((90, 70), "L", 128), 4: png_bytes((300, 300), "RGBA"),
        5: png_bytes((100, 60), "RGB", (1, 2, 3)), 6: b"", 7: jpeg_bytes((400, 400))[:500],
        8: b"GIF89a but not really an image", 9: bomb_png(), 10: None,  # 10: file missing
    }
    long_caption = ("A dog runs after a red ball in the green park " * 250)[:10_000]
    anns = [
        {"image_id": 1, "id": 1, "caption": "A man riding a horse on the beach."},
        {"image_id": 1, "id": 2, "caption": ""},
        {"image_id": 1, "id": 3, "caption": "   \t\n  "},
        {"image_id": 1, "id": 4, "caption": long_caption},
        {"image_id": 1, "id": 5, "caption": "A 🐶 dog and 東京 tower, שלום and مرحبا 😀"},
        {"image_id": 1, "id": 6, "caption": "<b>A cat</b> &amp; a <i>dog</i> <br/>"},
        {"image_id": 1, "id": 6, "caption": "Duplicate annotation id."},
        {"image_id": 1, "id": 7, "caption": "bad \ud800 surrogate"},
        {"image_id": 1, "id": 8, "caption": None},
        {"image_id": 1, "id": 9, "caption": "\u200b\u200b"},
        {"image_id": 42, "id": 10, "caption": "Unknown image."},
        *({"image_id": i, "id": 100 + i, "caption": f"Picture number {i} of a tree."} for i in range(2, 11)),
    ]
    src = write_coco(tmp_path / "src", [], images, anns)
    out = tmp_path / "out"
    run_pipeline(PipelineConfig(format="coco", src=src, out=out, shard_size=8, progress=False))
    manifest, samples, rejects = check_output(out, len(anns))
    assert rejects == {
        "coco-000000000001-2": R.EMPTY_CAPTION, "coco-000000000001-3": R.EMPTY_CAPTION,
        "coco-000000000001-6": R.DUPLICATE_KEY, "coco-000000000001-7": R.INVALID_UTF8,
        "coco-000000000001-8": R.MISSING_CAPTION, "coco-000000000001-9": R.NO_TOKENS,
        "coco-000000000042-10": R.UNKNOWN_IMAGE_ID, "coco-000000000006-106": R.EMPTY_IMAGE,
        "coco-000000000007-107": R.CORRUPT_IMAGE, "coco-000000000008-108": R.NOT_AN_IMAGE,
        "coco-000000000009-109": R.IMAGE_TOO_LARGE, "coco-000000000010-110": R.MISSING_IMAGE,
    }
    assert manifest["totals"]["truncated"] == 1 and len(manifest["shards"]) == 3
    long = samples["coco-000000000001-4"]
    assert len(long.ids) <= 64 and long.caption == " ".join(long.meta["words"])
    assert long_caption.startswith(long.caption)
    odd = samples["coco-000000000001-5"]
    assert "東京" in odd.meta["words"] and "🐶" in odd.meta["words"] and 100 in odd.ids  # [UNK]
    assert samples["coco-000000000001-6"].caption == "<b>A cat</b> &amp; a <i>dog</i> <br/>"
    for key, size in (("coco-000000000001-1", (341, 256)), ("coco-000000000002-102", (300, 200)),
                      ("coco-000000000003-103", (90, 70)), ("coco-000000000004-104", (256, 256)),
                      ("coco-000000000005-105", (100, 60))):
        image = Image.open(io.BytesIO(samples[key].image_bytes))
        assert samples[key].image_ext == "jpg" and image.mode == "RGB" and image.size == size, key
    assert manifest["tagger"]["pipes"] == ["tok2vec", "tagger", "attribute_ruler"]
    assert manifest["tokenizer"]["vocab_size"] == 30522 and manifest["config"]["image_size"] == 256

    # Re-running the same command is a no-op; another config is refused; --overwrite replaces it.
    before = (out / "manifest.json").read_bytes()
    run_pipeline(PipelineConfig(format="coco", src=src, out=out, shard_size=8))
    assert (out / "manifest.json").read_bytes() == before
    with pytest.raises(UserError, match="different config.*image_size"):
        run_pipeline(PipelineConfig(format="coco", src=src, out=out, shard_size=8, image_size=128))
    run_pipeline(PipelineConfig(format="coco", src=src, out=out, shard_size=8, image_size=0, overwrite=True,
                                progress=False))
    _, samples, _ = check_output(out, len(anns))
    assert samples["coco-000000000002-102"].image_bytes == cmyk  # 0: bytes passed through untouched
    src.write_text(src.read_text().replace("A man riding", "A woman riding"))  # the input changed
    with pytest.raises(UserError, match="different config.*input"):
        run_pipeline(PipelineConfig(format="coco", src=src, out=out, shard_size=8, image_size=0))


def test_img2dataset_bad_input_corpus(tmp_path: Path) -> None:
    jpg = jpeg_bytes((500, 300))
    members = [
        ("00000/000000000.jpg", jpg), ("00000/000000000.txt", b"A red bus on a street."),
        ("00000/000000000.json", b'{"url": "http://x"}'),
        ("00000/000000001.jpg", jpg), ("00000/000000001.txt", b"Invalid \xff\xfe UTF-8."),
        ("00000/000000002.txt", b"A caption without an image."),
        ("00000/000000003.jpg", b""), ("00000/000000003.txt", b"Zero-byte image."),
        ("00000/000000004.png", png_bytes((64, 64), "LA", (10, 200))), ("00000/000000004.txt", "Ein Café.".encode()),
        ("00000/000000005.jpg", jpg), ("00000/000000005.json", b'{"caption": "Caption from the json."}'),
        ("00000/000000006.jpg", jpg),
        ("00000/000000000.txt", b"The same key again."),
    ]
    write_tar(tmp_path / "src" / "00000.tar", members)
    small = jpeg_bytes((64, 48))
    assert len(small) <= 1024  # so that the cut below falls inside the second sample
    write_tar(tmp_path / "src" / "00001.tar", [("00001/000010000.jpg", small), ("00001/000010000.txt", b"A plane.")]
              + [(f"00001/00001{i:04d}.{e}", d) for i in range(1, 4) for e, d in (("jpg", small), ("txt", b"Sky."))],
              cut=3000)
    out = tmp_path / "out"
    run_pipeline(PipelineConfig(format="img2dataset", src=tmp_path / "src", out=out, source_name="cc3m",
                                progress=False))
    manifest, samples, rejects = check_output(out, 10)
    assert rejects == {"cc3m-000000001": R.INVALID_UTF8, "cc3m-000000002": R.MISSING_IMAGE,
                       "cc3m-000000003": R.EMPTY_IMAGE, "cc3m-000000006": R.MISSING_CAPTION,
                       "cc3m-000000000": R.DUPLICATE_KEY, "cc3m-00001_tar-rest": R.CORRUPT_INPUT}
    assert sorted(samples) == ["cc3m-000000000", "cc3m-000000004", "cc3m-000000005", "cc3m-000010000"]
    assert [s["file"] for s in manifest["shards"]] == ["cc3m-000000.tar", "cc3m-000001.tar"]
    assert samples["cc3m-000000005"].caption == "Caption from the json."
    assert Image.open(io.BytesIO(samples["cc3m-000000004"].image_bytes)).mode == "RGB"


def test_img2dataset_keys_unique_across_tars_and_resume(tmp_path: Path) -> None:
    jpg = jpeg_bytes((80, 60))
    for tar, keys in (("00000", ["a", "b"]), ("00001", ["c", "b", "d"]), ("00002", ["d", "a", "e"])):
        write_tar(tmp_path / "src" / f"{tar}.tar",
                  [(f"{tar}/{k}.{ext}", data) for k in keys for ext, data in (("jpg", jpg), ("txt", b"A dog."))])
    cfg = PipelineConfig(format="img2dataset", src=tmp_path / "src", out=tmp_path / "out", progress=False)
    run_pipeline(cfg)
    manifest, samples, _ = check_output(cfg.out, 8)
    assert sorted(samples) == ["img2dataset-a", "img2dataset-b", "img2dataset-c", "img2dataset-d", "img2dataset-e"]
    assert sum(1 for _ in iter_samples(cfg.out)) == 5  # no key written twice
    rejects = pq.read_table(cfg.out / "rejects.parquet").to_pylist()
    assert [(r["key"], r["reason"], r["detail"]) for r in rejects] == [
        ("img2dataset-b", R.DUPLICATE_KEY, "00001.tar: 00001/b, key first in 00000.tar"),
        ("img2dataset-d", R.DUPLICATE_KEY, "00002.tar: 00002/d, key first in 00001.tar"),
        ("img2dataset-a", R.DUPLICATE_KEY, "00002.tar: 00002/a, key first in 00000.tar")]

    # Interrupted after the middle shard, then resumed: the same bytes.
    resumed = PipelineConfig(format="img2dataset", src=tmp_path / "src", out=tmp_path / "resumed", progress=False)
    src, images, seed = resolve_source(resumed)
    prepare_out(resumed.out, output_config(resumed, src, images, seed), "new")
    specs = img2dataset.chunks(src, "img2dataset")
    img2dataset.plan(specs, [img2dataset.tar_keys(s.path, s.source) for s in specs])
    process_shard(specs[1], TaskConfig(out=str(resumed.out)))
    assert run_pipeline(resumed)["run"]["resumed_shards"] == 1
    assert shard_digests(resumed.out) == shard_digests(cfg.out)
    assert pq.read_table(resumed.out / "rejects.parquet").to_pylist() == rejects


def test_table_sources(tmp_path: Path) -> None:
    import pyarrow as pa

    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    (src / "img" / "a.jpg").write_bytes(jpeg_bytes())
    (src / "t.csv").write_bytes(b'image,caption\nimg/a.jpg,"A dog, in a park."\nimg/a.jpg,bad \xc3\x28 utf8\n'
                                b"img/missing.jpg,Gone.\nimg/a.jpg,x,y,z\n")
    out = tmp_path / "csv"
    run_pipeline(PipelineConfig(format="table", src=src / "t.csv", out=out, progress=False))
    _, samples, rejects = check_output(out, 4)
    assert list(samples) == ["table-000000000"]
    assert sorted(rejects.values()) == sorted([R.INVALID_UTF8, R.MISSING_IMAGE, R.MALFORMED_ROW])
    pq.write_table(pa.table({"url": ["img/a.jpg"] * 3, "text": ["One.", "Two.", None], "id": ["k1", "k2", "k1"]}),
                   src / "t.parquet")
    out = tmp_path / "parquet"
    run_pipeline(PipelineConfig(format="table", src=src / "t.parquet", out=out, image_column="url", key_column="id",
                                progress=False))
    _, samples, rejects = check_output(out, 3)
    assert list(samples) == ["table-k1", "table-k2"] and rejects == {"table-k1": R.DUPLICATE_KEY}


def test_real_coco_captions_text_only(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "coco" / "captions_val2017.json"
    out = tmp_path / "coco"
    run_pipeline(PipelineConfig(format="coco", src=src, out=out, text_only=True, limit=3000, shard_size=1000,
                                progress=False))
    manifest, samples, _ = check_output(out, 3000)
    assert manifest["totals"]["written"] >= 2995 and len(manifest["shards"]) == 3
    hist = json.loads((out / "pos_histogram.json").read_text())["word"]
    assert list(hist)[0] == "NOUN" and all(hist[c] > 0 for c in ("NOUN", "VERB", "ADJ", "DET", "ADP", "PRON"))
    sample = next(iter(samples.values()))
    assert sample.image_bytes is None and sample.meta["image_id"].isdigit()
    ids = np.concatenate([s.ids for s in samples.values()])
    assert (ids == 100).mean() < 0.001  # hardly any [UNK] in real English captions


def test_scenes_format_runs_the_coco_source(tmp_path: Path) -> None:
    scenes = pytest.importorskip("scenes")
    root = tmp_path / "scenes"
    train_json, _ = scenes.ensure_scenes(root, seed=0, train_images=40, eval_images=4, vqa_train_images=4)
    out = tmp_path / "out"
    run_pipeline(PipelineConfig(format="scenes", src=root, out=out, progress=False))
    captions_json = json.loads(Path(train_json).read_text(encoding="utf-8"))
    manifest, samples, _ = check_output(out, len(captions_json["annotations"]))
    assert manifest["totals"]["written"] == len(captions_json["annotations"])
    assert manifest["config"]["source"] == "scenes"
    assert all(key.startswith("scenes-") for key in samples)
    pairs = {ann["pair"] for ann in captions_json["annotations"] if "pair" in ann}
    assert pairs and pairs == {s.meta["pair"] for s in samples.values() if "pair" in s.meta}
    hist = json.loads((out / "pos_histogram.json").read_text())["word"]
    assert all(hist[c] > 0 for c in ("NOUN", "VERB", "ADJ", "DET", "ADP", "AUX", "PRON", "NUM", "CCONJ", "PUNCT"))
