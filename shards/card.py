"""The dataset card (`README.md` beside `manifest.json`), in the style of a Hugging Face dataset card: what the output
holds (counts, rejects, the UPOS histogram, the members of a sample), what made it (tagger, tokenizer, the command)
and three ways to read it (webdataset + numpy, Hugging Face `datasets`, posmask's reader), written for the place
it lives (a folder, an http(s):// or an fsspec URL)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from toolbox.urls import FSSPEC, HTTP, kind
from shards.schema import SCHEMA_VERSION

MEMBERS: tuple[tuple[str, str], ...] = (
    ("`jpg` / `png` / `webp`", "image bytes (absent in a text-only output)"),
    ("`txt`", "the normalised caption, UTF-8"),
    ("`json`", "`source`, `image_id`, `words`, `upos` (ids), `spans` (`[start, end)` character offsets into `txt`); "
               "optional `pair`"),
    ("`ids.npy`", "int32 `[L]` token ids of the tokenizer below, its special tokens included"),
    ("`pos.npy`", "uint8 `[L]` UPOS id of each token (the word holding its first character); 255 for special tokens"),
    ("`word.npy`", "int16 `[L]` index into `words` of each token; -1 for special tokens"),
)
SIZE_CATEGORIES: tuple[tuple[int, str], ...] = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                                               (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))
DATASETS_HEADING = "### Hugging Face `datasets`"


def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "10M<n<100M")


def files_expression(names: Sequence[str]) -> str:
    """A Python expression for the list of tar names: the names, or a range when they are NAME-000000.tar ..."""
    match = re.fullmatch(r"(.+)-(\d{6})\.tar", names[0]) if names else None
    if match and len(names) > 4 and list(names) == [f"{match.group(1)}-{i:06d}.tar" for i in range(len(names))]:
        return f'[f"{match.group(1)}-{{i:06d}}.tar" for i in range({len(names)})]'
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def reading_webdataset(where: str) -> str:
    """The webdataset + numpy snippet for an output at `where`."""
    place = kind(where)
    if place == HTTP:
        opening = ("import urllib.request\n", 'manifest = json.load(urllib.request.urlopen(f"{OUT}/manifest.json"))',
                   'urls = [f"{OUT}/shards/{s[\'file\']}" for s in manifest["shards"]]  # webdataset: curl')
    elif place == FSSPEC:
        cat = ("python -c 'import fsspec, shutil, sys; "
               "shutil.copyfileobj(fsspec.open(sys.argv[1]).open(), sys.stdout.buffer)'")
        opening = ("import fsspec\n", 'manifest = json.load(fsspec.open(f"{OUT}/manifest.json").open())',
                   f'urls = [f"pipe:{cat} {{OUT}}/shards/{{s[\'file\']}}"\n        for s in manifest["shards"]]')
    else:
        opening = ("", 'manifest = json.load(open(f"{OUT}/manifest.json"))',
                   'urls = [f"{OUT}/shards/{s[\'file\']}" for s in manifest["shards"]]')
    imports, manifest, urls = opening
    return f'''```python
import io, json
{imports}import numpy as np
import webdataset as wds

OUT = "{where}"
{manifest}
assert manifest["schema_version"] == {SCHEMA_VERSION}, "unknown shard schema"
{urls}
for sample in wds.WebDataset(urls, shardshuffle=False):
    ids = np.load(io.BytesIO(sample["ids.npy"]))    # token ids, special tokens included
    pos = np.load(io.BytesIO(sample["pos.npy"]))    # UPOS id per token, 255 = special token
    word = np.load(io.BytesIO(sample["word.npy"]))  # word index per token, -1 = special token
    meta = json.loads(sample["json"])               # words, upos, spans, source, image_id
    caption = sample["txt"].decode("utf-8")
```'''


def reading_datasets(where: str, names: Sequence[str]) -> str:
    """The Hugging Face `datasets` snippet (its `webdataset` loader decodes `.npy`, `.json`, `.txt` and images)."""
    return f'''```python
from datasets import load_dataset

OUT = "{where}"
files = [f"{{OUT}}/shards/{{name}}" for name in {files_expression(names)}]
ds = load_dataset("webdataset", data_files={{"train": files}}, split="train", streaming=True)
sample = next(iter(ds))
print(sample["__key__"], sample["txt"], sample["json"]["words"], sample["ids.npy"][:8], sample["pos.npy"][:8])
```'''


def histogram_table(hist: Mapping[str, Any]) -> str:
    words: Mapping[str, int] = hist.get("word") or {}
    pieces: Mapping[str, int] = hist.get("wordpiece") or {}
    total_w, total_p = max(1, sum(words.values())), max(1, sum(pieces.values()))
    rows = ["| UPOS | words | share | tokens | share |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {name} | {n:,} | {100 * n / total_w:.1f}% | {pieces.get(name, 0):,} | "
             f"{100 * pieces.get(name, 0) / total_p:.1f}% |" for name, n in words.items() if n or pieces.get(name)]
    return "\n".join(rows)


def _described(entry: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k} `{entry[k]}`" for k in keys if entry.get(k) not in (None, "", [], {}))


def render_card(manifest: Mapping[str, Any], hist: Mapping[str, Any], where: str, command: str | None) -> str:
    """The card's Markdown for an output whose manifest is `manifest`, living at `where`."""
    totals, name = manifest.get("totals") or {}, (manifest.get("config") or {}).get("name") or "posmask"
    names = [s["file"] for s in manifest.get("shards", [])]
    tokenizer, tagger = manifest.get("tokenizer") or {}, manifest.get("tagger") or {}
    rejects = totals.get("rejected_by_reason") or {}
    reject_rows = "\n".join(f"| `{reason}` | {n:,} |"
                            for reason, n in sorted(rejects.items(), key=lambda kv: -kv[1]))
    reject_table = f"| reject reason | inputs |\n|---|---:|\n{reject_rows}" if reject_rows else "No input was rejected."
    specials = tokenizer.get("special_tokens") or {k[:-3]: v for k, v in tokenizer.items() if k.endswith("_id")}
    return f'''---
pretty_name: "{name}: captions tagged with universal parts of speech (posmask)"
language:
- en
tags:
- webdataset
- part-of-speech
- posmask
size_categories:
- {size_category(int(totals.get("written", 0)))}
configs:
- config_name: default
  data_files:
  - split: train
    path: shards/*.tar
---

# {name}: tagged shards (posmask schema {manifest.get("schema_version")})

Image-caption pairs in WebDataset tars, each caption's words tagged with spaCy's universal POS and aligned to the
tokens of one tokenizer: a token takes the UPOS of the word that holds its first character. `manifest.json` beside
this card lists every shard with its samples, bytes and sha256; `shards/sizes.json` the samples per tar.

## Counts

| | |
|---|---:|
| inputs read | {totals.get("read", 0):,} |
| samples written | {totals.get("written", 0):,} |
| rejected | {totals.get("rejected", 0):,} |
| truncated to the maximum length | {totals.get("truncated", 0):,} |
| shards | {len(names):,} |

{reject_table}

## Parts of speech

{histogram_table(hist)}

## Members of each sample

| member | content |
|---|---|
{chr(10).join(f"| {m} | {c} |" for m, c in MEMBERS)}

## What made it

- tagger: {_described(tagger, ("model", "model_version", "spacy_version", "pipes")) or tagger.get("name", "?")}
- tokenizer: {_described(tokenizer, ("name", "vocab_size", "vocab_sha256", "lowercase")) or "?"}
- special token ids: {", ".join(f"{k} {v}" for k, v in specials.items() if v is not None) or "none"}

```
{command or "(not recorded)"}
```

## Reading it

### webdataset + numpy

{reading_webdataset(where)}

{DATASETS_HEADING}

{reading_datasets(where, names)}

### posmask

```python
from shards.reader import iter_samples  # posmask's reader: checks the schema, decodes the arrays

for sample in iter_samples("{where}"):
    sample.ids, sample.pos, sample.word, sample.meta["words"], sample.caption, sample.image_bytes
```

Train on it with `posmask pretrain --shards {where}`.
'''


__all__ = ["DATASETS_HEADING", "render_card"]
