"""The BERT uncased WordPiece tokenizer, from the vocabulary shipped in `shards/vocab/`; never downloads.

The vocabulary file is `bert-base-uncased`'s own `vocab.txt` (30,522 entries); its sha256 is checked
at load time and recorded in the manifest, so shards and models always agree on the ids.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolbox.errors import UserError

TOKENIZER_NAME = "bert-base-uncased"
BERT_VOCAB_SIZE = 30522
VOCAB_PATH = Path(__file__).resolve().parent / "vocab" / "bert-base-uncased-vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


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


def read_vocab(path: Path = VOCAB_PATH, sha256: str = VOCAB_SHA256) -> list[str]:
    """The vocabulary's entries, one per line; a clear UserError when the file is missing or altered."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"BERT vocabulary {path} is unreadable ({err.strerror or err}); reinstall posmask") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise UserError(f"BERT vocabulary {path} was altered (sha256 {digest}, expected {sha256}); "
                        "restore it from the repository or reinstall posmask")
    return data.decode("utf-8").split("\n")[:-1]


@functools.lru_cache(maxsize=1)
def load_tokenizer():  # -> tuple[transformers.PreTrainedTokenizerFast, TokenizerInfo]
    """The fast BERT uncased tokenizer (offsets map to the original text) and its TokenizerInfo."""
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab={entry: i for i, entry in enumerate(read_vocab())}, do_lower_case=True)
    info = TokenizerInfo(
        name=TOKENIZER_NAME,
        vocab_path=str(VOCAB_PATH),
        vocab_sha256=VOCAB_SHA256,
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
    """Refuse to train or evaluate with a vocabulary other than the one that made the shards (one line: a
    `posmask retokenize` output names its tokenizer)."""
    entry = manifest.get("tokenizer", {}) or {}
    recorded = entry.get("vocab_sha256")
    if recorded != info.vocab_sha256:
        size = entry.get("vocab_size", "?")
        made = f"{entry.get('name', '?')} (vocab sha256 {str(recorded)[:12]}..., {size} entries)"
        raise UserError(
            f"tokenizer vocabulary mismatch: the shards were tokenized with {made}, the model reads "
            f"{info.name} (vocab sha256 {info.vocab_sha256[:12]}..., {info.vocab_path}); train on a tag-shards "
            "output, or one retokenized with that vocabulary"
        )
