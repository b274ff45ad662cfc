"""Tagged outputs shared by the retokenize and card tests (spaCy runs once per session): the scenes sample's
3,100 training captions, and captions with capitals, accents and names; and tokenizers trained on them."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_testdata import synthetic_captions, write_coco
from tokenizers_testdata import bert, byte_level_bpe, lowercase_wordpiece

SCENES_IMAGES = 620  # x 5 captions: 3,100 real captions for the retokenize property test


@pytest.fixture(scope="session")
def scenes_tags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenes' training captions tagged text-only, in 4 shards (in process, no Ray)."""
    from pipeline.orchestrate import PipelineConfig, run_pipeline
    from scenes import ensure_scenes

    root = tmp_path_factory.mktemp("scenes-tags")
    ensure_scenes(root / "scenes", 0, train_images=SCENES_IMAGES, eval_images=4, vqa_train_images=4)
    out = root / "tags"
    run_pipeline(PipelineConfig(format="scenes", src=root / "scenes", out=out, text_only=True, workers=1,
                                shard_size=1000, progress=False, command="posmask tag-shards --format scenes"))
    return out


@pytest.fixture(scope="session")
def accented_tags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 captions with capitals, accents (café, naïve) and names, tagged text-only."""
    from pipeline.orchestrate import PipelineConfig, run_pipeline

    root = tmp_path_factory.mktemp("accented-tags")
    src = write_coco(root / "coco", synthetic_captions(300, seed=5), {i: None for i in range(10)})
    run_pipeline(PipelineConfig(format="coco", src=src, out=root / "tags", text_only=True, workers=1,
                                shard_size=150, progress=False))
    return root / "tags"


@pytest.fixture(scope="session")
def trained_tokenizers(tmp_path_factory: pytest.TempPathFactory, scenes_tags: Path) -> dict[str, Path]:
    """{"bpe": byte-level BPE, "wordpiece": lower-casing WordPiece, "bert": posmask's}, trained on the scenes
    captions (the accented ones fall back to short pieces and [UNK])."""
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("tokenizers")
    captions = pq.read_table(scenes_tags / "captions.parquet", columns=["caption"]).column(0).to_pylist()
    return {"bpe": byte_level_bpe(captions, root / "bpe"), "wordpiece": lowercase_wordpiece(captions, root / "wp"),
            "bert": bert(root / "bert")}
