"""Tokenizers made offline for the retokenize tests, trained with the `tokenizers` library on given captions and
saved as Hugging Face fast tokenizers: a byte-level BPE (offsets that start on the space a token carries, no
normaliser) and a WordPiece that lower-cases and strips accents; and posmask's own BERT vocabulary, saved."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def byte_level_bpe(captions: Sequence[str], folder: Path, vocab_size: int = 400) -> Path:
    """`<s> ... </s>` around byte-level BPE tokens (GPT-2's `Ġ` marks a leading space; offsets include it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(captions, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tokenizer.token_to_id("<s>")),
                                              ("</s>", tokenizer.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>")
    fast.save_pretrained(folder)
    return folder


def lowercase_wordpiece(captions: Sequence[str], folder: Path, vocab_size: int = 300) -> Path:
    """`[CLS] ... [SEP]` around WordPiece tokens of the lower-cased, accent-stripped text (offsets: the original)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(captions, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")),
                                                 ("[SEP]", tokenizer.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(folder)
    return folder


def bert(folder: Path) -> Path:
    """posmask's BERT uncased tokenizer (its shipped vocabulary), saved as a tokenizer folder."""
    from shards.tokenizer import load_tokenizer

    load_tokenizer()[0].save_pretrained(folder)
    return folder
