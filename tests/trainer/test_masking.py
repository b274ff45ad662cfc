"""The masking op's statistics (>=100k tokens) and the mask spec's parsing and errors."""
from __future__ import annotations

import math

import pytest
import torch

from toolbox.errors import UserError
from shards.upos import NOT_A_WORD, UPOS_ID, UPOS_NAMES
from trainer.model.losses import mlm_loss
from trainer.masking.masker import IGNORE_INDEX, Masker, parse_mask_spec

MASK_ID, VOCAB = 103, 30522


def fake_batch(rows: int = 2000, length: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """ids and pos like a padded batch: [CLS] words [SEP] padding, pos 255 on specials and padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, VOCAB, (rows, length), generator=g)
    pos = torch.randint(0, len(UPOS_NAMES), (rows, length), generator=g).to(torch.uint8)
    lengths = torch.randint(5, length, (rows,), generator=g)
    cols = torch.arange(length)[None]
    special = (cols == 0) | (cols == lengths[:, None] - 1)
    padding = cols >= lengths[:, None]
    ids[cols.expand_as(ids) == 0] = 101
    ids[special & (cols > 0)] = 102
    ids[padding] = 0
    pos[special | padding] = NOT_A_WORD
    return ids, pos


@pytest.mark.parametrize("pos_spec,ratio", [("DET", 0.7), ("NOUN,VERB", 1.0), ("ADV", 0.7), ("random", 0.15)])
def test_only_chosen_classes_masked_at_ratio(pos_spec: str, ratio: float) -> None:
    spec = parse_mask_spec(pos_spec, ratio)
    ids, pos = fake_batch()
    assert ids.numel() >= 100_000
    out = Masker(spec, MASK_ID, VOCAB)(ids, pos, generator=torch.Generator().manual_seed(1))
    masked = out.labels != IGNORE_INDEX
    chosen = torch.zeros_like(masked)
    for name in spec.classes:
        chosen |= pos == UPOS_ID[name]
    assert not (masked & ~chosen).any(), "a token outside the chosen classes was masked"
    assert not masked[pos == NOT_A_WORD].any(), "a special or padding token was masked"
    assert torch.equal(out.labels[masked], ids[masked])
    n = int(chosen.sum())
    assert int(out.n_candidates) == n
    share = masked.sum().item() / n
    sigma = math.sqrt(ratio * (1 - ratio) / n)
    assert abs(share - ratio) <= 3 * sigma + 1e-12, (share, ratio, sigma)


def test_80_10_10_split() -> None:
    spec = parse_mask_spec("random", 1.0)
    ids, pos = fake_batch(rows=4000, seed=2)
    out = Masker(spec, MASK_ID, VOCAB)(ids, pos, generator=torch.Generator().manual_seed(3))
    masked = out.labels != IGNORE_INDEX
    n = int(masked.sum())
    assert n >= 100_000
    as_mask = (out.input_ids[masked] == MASK_ID).sum().item() / n
    unchanged = (out.input_ids[masked] == ids[masked]).sum().item() / n
    randomised = 1 - as_mask - unchanged
    # a random token can equal the original (1/30522): a negligible shift of the unchanged share
    for share, p in ((as_mask, 0.8), (randomised, 0.1), (unchanged, 0.1)):
        assert abs(share - p) <= 3 * math.sqrt(p * (1 - p) / n) + 1e-4, (share, p)
    assert torch.equal(out.input_ids[~masked], ids[~masked]), "unmasked tokens must not change"


def test_replacement_probabilities_configurable() -> None:
    ids, pos = fake_batch(rows=500, seed=4)
    out = Masker(parse_mask_spec("random", 1.0), MASK_ID, VOCAB, probs=(1.0, 0.0))(ids, pos)
    masked = out.labels != IGNORE_INDEX
    assert (out.input_ids[masked] == MASK_ID).all()
    with pytest.raises(UserError):
        Masker(parse_mask_spec("DET"), MASK_ID, VOCAB, probs=(0.9, 0.2))


def test_zero_candidates_give_exact_zero_loss() -> None:
    ids, pos = fake_batch(rows=8, seed=5)
    pos[pos != NOT_A_WORD] = UPOS_ID["NOUN"]  # no INTJ anywhere
    out = Masker(parse_mask_spec("INTJ", 1.0), MASK_ID, VOCAB)(ids, pos)
    assert int(out.n_candidates) == 0 and int(out.n_masked) == 0
    logits = torch.randn(*ids.shape, 50, requires_grad=True)
    loss, count = mlm_loss(logits, out.labels)
    assert loss.item() == 0.0 and not torch.isnan(loss) and int(count) == 0
    loss.backward()  # still differentiable
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_table_is_256_and_never_marks_specials() -> None:
    table = parse_mask_spec("random").table()
    assert table.shape == (256,) and table.dtype == torch.float32
    assert table[NOT_A_WORD] == 0 and int((table > 0).sum()) == len(UPOS_NAMES)
    assert torch.all(table[table > 0] == 0.15)


@pytest.mark.parametrize("pos,ratio,name,expected", [
    ("DET", None, "DET", 0.7), ("det", "1.0", "DET", 1.0), ("VERB,NOUN", 0.7, "NOUN+VERB", 0.7),
    ("random", None, "random", 0.15), ("none", None, "none", 0.0), ("PUNCT", 0.5, "PUNCT", 0.5),
])
def test_parse_valid(pos: str, ratio: object, name: str, expected: float) -> None:
    spec = parse_mask_spec(pos, ratio)
    assert spec.name == name and spec.ratio == expected
    assert spec.mlm == (name != "none")


@pytest.mark.parametrize("pos,ratio,needle", [
    ("FOO", 0.7, "valid:"), ("DET,BAR", 0.7, "BAR"), ("DET", 0.0, "(0, 1]"), ("DET", 1.5, "(0, 1]"),
    ("DET", -0.1, "(0, 1]"), ("none", 0.7, "no RATIO"), ("", None, "valid:"), ("DET", "abc", "not a number"),
])
def test_parse_errors(pos: str, ratio: object, needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_mask_spec(pos, ratio)
    assert needle in str(err.value) and "\n" not in str(err.value)
