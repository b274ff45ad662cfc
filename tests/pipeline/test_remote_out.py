"""`--out` an fsspec URL: the output is made in a local stage folder and published file by file (each to a
temporary key, then renamed; the manifest last); the published files are the local output's; a re-run finds it
complete; another config for the same URL is refused in one line; readers read it where it lives."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolbox.errors import UserError


@pytest.fixture()
def memory():
    import fsspec

    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/published"):
        fs.rm("/published", recursive=True)


def published(fs, root: str) -> dict[str, bytes]:
    return {path.removeprefix(root + "/"): fs.cat_file(path) for path in fs.find(root)}


@pytest.mark.slow
def test_an_output_published_to_an_fsspec_url(accented_tags: Path, trained_tokenizers: dict[str, Path],
                                              tmp_path: Path, memory) -> None:
    from pipeline.orchestrate import PipelineConfig, run_pipeline
    from pipeline.retokenize.run import RetokenizeConfig, run_retokenize
    from shards.reader import iter_samples

    src = accented_tags.parent / "coco" / "captions_val.json"
    url = "memory://published/tags"
    manifest = run_pipeline(PipelineConfig(format="coco", src=src, out=url, text_only=True, workers=1,
                                           shard_size=150, progress=False, stage=tmp_path / "stage"))
    files = published(memory, "/published/tags")
    local = {p.relative_to(accented_tags).as_posix(): p.read_bytes() for p in accented_tags.rglob("*") if p.is_file()}
    assert set(files) == set(local) and not (tmp_path / "stage").exists()
    same = [name for name in local if name.startswith("shards/") or name.endswith(".parquet")]
    assert all(files[name] == local[name] for name in same) and len(same) == 5
    assert json.loads(files["manifest.json"])["shards"] == json.loads(local["manifest.json"])["shards"]
    assert 'OUT = "memory://published/tags"' in files["README.md"].decode()
    assert len(list(iter_samples(url))) == manifest["totals"]["written"] == 300

    again = run_pipeline(PipelineConfig(format="coco", src=src, out=url, text_only=True, workers=1, shard_size=150,
                                        progress=False, stage=tmp_path / "stage"))
    assert again["run"]["summary"].startswith("already complete")
    with pytest.raises(UserError, match=r"^--out memory://published/tags holds an output made with a different "
                                        r"config \(shard_size: 150 -> 100\); pass --overwrite"):
        run_pipeline(PipelineConfig(format="coco", src=src, out=url, text_only=True, workers=1, shard_size=100,
                                    progress=False, stage=tmp_path / "stage"))

    retokenized = run_retokenize(RetokenizeConfig(shards=url, tokenizer=str(trained_tokenizers["bert"]),
                                                  out="memory://published/bert", workers=1, progress=False,
                                                  stage=tmp_path / "stage-bert"))
    assert [s["sha256"] for s in retokenized["shards"]] == [s["sha256"] for s in manifest["shards"]]
    assert not [p for p in memory.find("/published") if ".tmp-" in p]  # no temporary key is left
