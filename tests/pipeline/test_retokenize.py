"""`posmask retokenize`: another tokenizer's tokens with exact UPOS, from the words and spans the shards keep.

The property test checks every token of 3,400 captions (the scenes' 3,100 and 300 with capitals, accents and names)
under a byte-level BPE and a lower-casing, accent-stripping WordPiece, both trained here: its UPOS is that of the word
holding its first character, found here from the tokenizer's own offsets. Retokenizing with BERT's own vocabulary
gives back the original tars byte for byte; Ray's two workers write what one in-process worker writes; a killed run
resumes; images, txt and json pass through; `posmask pretrain` refuses another vocabulary in one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline_testdata import REPO, shard_digests
from waiting import wait_until


def retokenize(shards: Path, tokenizer: Path, out: Path | str, workers: int = 1) -> dict:
    from pipeline.retokenize.run import RetokenizeConfig, run_retokenize

    return run_retokenize(RetokenizeConfig(shards=str(shards), tokenizer=str(tokenizer), out=out, workers=workers,
                                           progress=False))


def raw_members(out: Path) -> dict[str, dict[str, bytes]]:
    """{key: {member: bytes}} of every sample of an output, read with tarfile alone."""
    import tarfile

    samples: dict[str, dict[str, bytes]] = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive:
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = archive.extractfile(member).read()  # type: ignore[union-attr]
    return samples


def check_tokens(caption: str, meta: dict, ids: np.ndarray, pos: np.ndarray, word: np.ndarray, tokenizer,
                 seen: dict[str, int]) -> None:
    """The property, from the tokenizer's own offsets: each token's UPOS is that of the word holding its first
    (non-space) character; a token of spaces only goes with the next word; special tokens are 255 / -1; a caption
    too long loses its last tokens, cut between two words."""
    enc = tokenizer(caption, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    special, spans, upos = enc["special_tokens_mask"], meta["spans"], meta["upos"]

    def holder(j: int) -> int:
        a, b = enc["offset_mapping"][j]
        first = next((a + k for k, char in enumerate(caption[a:b]) if not char.isspace()), None)
        if first is None:
            seen["space_only"] += 1
            return next(i for i, (start, _) in enumerate(spans) if start >= b)
        found = [i for i, (start, end) in enumerate(spans) if start <= first < end]
        assert len(found) == 1, (caption, caption[a:b])
        seen["leading_space"] += caption[a].isspace()
        return found[0]

    content = [j for j, s in enumerate(special) if not s]
    kept = content[:len(ids) - (len(special) - len(content))]
    if len(kept) < len(content):
        seen["cut"] += 1
        assert holder(kept[-1]) != holder(content[len(kept)]), caption  # the cut falls between two words
    positions = [j for j in range(len(special)) if special[j] or j in set(kept)]
    assert ids.tolist() == [enc["input_ids"][j] for j in positions], caption
    for row, j in enumerate(positions):
        if special[j]:
            assert word[row] == -1 and pos[row] == 255
            continue
        w = holder(j)
        assert word[row] == w and pos[row] == upos[w], (caption, row)
        seen["tokens"] += 1


@pytest.mark.slow
def test_every_token_takes_the_upos_of_the_word_holding_its_first_character(
        scenes_tags: Path, accented_tags: Path, trained_tokenizers: dict[str, Path], tmp_path: Path) -> None:
    from pipeline.retokenize.pieces import load_fast_tokenizer
    from shards.reader import iter_samples

    for name in ("bpe", "wordpiece"):
        tokenizer = load_fast_tokenizer(str(trained_tokenizers[name]))
        seen = {"captions": 0, "tokens": 0, "leading_space": 0, "space_only": 0, "changed_text": 0, "cut": 0}
        for source in (scenes_tags, accented_tags):
            out = tmp_path / f"{name}-{source.parent.name}"
            manifest = retokenize(source, trained_tokenizers[name], out)
            assert manifest["tokenizer"]["vocab_sha256"] != json.loads(
                (source / "manifest.json").read_text())["tokenizer"]["vocab_sha256"]
            assert manifest["totals"]["rejected"] == 0
            before, after = raw_members(source), raw_members(out)
            assert before.keys() == after.keys()
            for key, members in after.items():  # everything but the three arrays passes through unchanged
                assert {m: v for m, v in members.items() if not m.endswith(".npy")} == \
                    {m: v for m, v in before[key].items() if not m.endswith(".npy")}
            for sample in iter_samples(out):
                check_tokens(sample.caption, sample.meta, sample.ids, sample.pos, sample.word, tokenizer, seen)
                seen["captions"] += 1
                normal = tokenizer.backend_tokenizer.normalizer
                seen["changed_text"] += normal is not None and normal.normalize_str(sample.caption) != sample.caption
        assert seen["captions"] >= 3_400 and seen["tokens"] > 30_000, seen
        if name == "bpe":
            assert seen["leading_space"] > 10_000, seen  # the `Ġ` tokens whose offsets start on their space
        else:
            assert seen["changed_text"] >= 3_000, seen  # lower-cased or accent-stripped text, original offsets


@pytest.mark.slow
def test_bert_vocabulary_gives_back_the_original_tars_byte_for_byte(scenes_tags: Path, accented_tags: Path,
                                                                    trained_tokenizers: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    for source in (scenes_tags, accented_tags):
        out = tmp_path / source.parent.name
        manifest = retokenize(source, trained_tokenizers["bert"], out)
        assert shard_digests(out) == shard_digests(source)
        original = json.loads((source / "manifest.json").read_text())
        assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in original["shards"]]
        assert (out / "captions.parquet").read_bytes() == (source / "captions.parquet").read_bytes()
        assert manifest["tokenizer"]["vocab_sha256"] == original["tokenizer"]["vocab_sha256"]
        assert manifest["tokenizer"]["special_tokens"]["cls"] == "[CLS]" and manifest["tagger"] == original["tagger"]


def posmask(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posmask_cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_ray_workers_resume_and_the_refusal_of_pretrain(scenes_tags: Path, trained_tokenizers: dict[str, Path],
                                                        tmp_path: Path) -> None:
    bpe = trained_tokenizers["bpe"]
    alone = tmp_path / "alone"
    retokenize(scenes_tags, bpe, alone)
    ray = posmask("retokenize", "--shards", str(scenes_tags), "--tokenizer", str(bpe), "--out", str(tmp_path / "ray"),
                  "--workers", "2", "--no-progress")
    assert ray.returncode == 0, ray.stderr[-2000:]
    assert shard_digests(tmp_path / "ray") == shard_digests(alone) and "Token authentication" not in ray.stderr
    card = (tmp_path / "ray" / "README.md").read_text()
    assert "name `bpe`" in card and "posmask retokenize --shards" in card

    killed = tmp_path / "killed"  # stopped after its first shard, then run again
    command = [sys.executable, "-m", "posmask_cli", "retokenize", "--shards", str(scenes_tags), "--tokenizer",
               str(bpe), "--out", str(killed), "--workers", "1", "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: any((killed / ".work" / "parts").glob("*.json")), 120, "a finished shard", process=process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    again = posmask(*command[3:])
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming:" in again.stderr and shard_digests(killed) == shard_digests(alone)

    refused = posmask("pretrain", "--pos", "DET", "--preset", "tiny", "--shards", str(alone), "--run",
                      str(tmp_path / "run"), "--max-steps", "1")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len([line for line in lines if "error" in line]) == 1, refused.stderr[-2000:]
    assert "vocabulary mismatch" in lines[-1] and "tokenized with bpe" in lines[-1]
