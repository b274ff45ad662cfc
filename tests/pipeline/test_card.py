"""The card (README.md beside manifest.json) of every output: counts and rejects, the UPOS table, the members,
tagger, tokenizer and command; its Hugging Face `datasets` and webdataset snippets run as written on the output."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shards.card import DATASETS_HEADING


def snippet(card: str, heading: str) -> str:
    """The Python block under `heading`."""
    found = re.search(re.escape(heading) + r"\n\n```python\n(.*?)```", card, re.S)
    assert found, heading
    return found.group(1)


def run_python(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf"),
           "HF_HOME": str(tmp_path / "hf-home")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_the_card_says_what_the_output_holds_and_its_snippets_run(scenes_tags: Path, tmp_path: Path) -> None:
    card = (scenes_tags / "README.md").read_text(encoding="utf-8")
    manifest = json.loads((scenes_tags / "manifest.json").read_text())
    hist = json.loads((scenes_tags / "pos_histogram.json").read_text())
    assert card.startswith("---\npretty_name:") and "size_categories:\n- 1K<n<10K" in card
    assert f"| samples written | {manifest['totals']['written']:,} |" in card and "No input was rejected." in card
    assert f"| NOUN | {hist['word']['NOUN']:,} |" in card and "| `word.npy` |" in card
    assert f"model_version `{manifest['tagger']['model_version']}`" in card and "name `bert-base-uncased`" in card
    assert "posmask tag-shards --format scenes" in card

    printed = run_python(snippet(card, DATASETS_HEADING), tmp_path)
    first = json.loads((scenes_tags / "shards" / "sizes.json").read_text())
    assert printed.split()[0].startswith("scenes-") and len(first) == 4
    from shards.reader import iter_samples

    keys = {s.key: s for s in iter_samples(scenes_tags)}
    key = printed.split()[0]
    assert key in keys and keys[key].caption in printed
    run_python(snippet(card, "### webdataset + numpy") + "\nprint(len(words := meta['words']), pos[1])", tmp_path)
