"""Statistics of every masking variant, each with 3-sigma bounds over >= 100k tokens: per-class rates,
the budget's expected share and its cap, whole words never split, the fallback, curriculum stage
boundaries; and the counters the op reports for metrics.jsonl."""
from __future__ import annotations

import math

import pytest
import torch

from shards.upos import NOT_A_WORD, UPOS_ID, UPOS_NAMES
from trainer.masking.spec import parse_mask_spec
from trainer.masking.masker import IGNORE_INDEX, MaskedBatch, Masker

MASK_ID, VOCAB = 103, 30522


def worded_batch(rows: int = 6000, length: int = 48, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """ids, pos, word like a padded batch of captions whose words have 1-3 wordpieces (one UPOS per word)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(rows, length, dtype=torch.long)
    pos = torch.full((rows, length), NOT_A_WORD, dtype=torch.uint8)
    word = torch.full((rows, length), -1, dtype=torch.int16)
    sizes = torch.randint(1, 4, (rows, length), generator=g).tolist()
    tags = torch.randint(0, len(UPOS_NAMES), (rows, length), generator=g).tolist()
    ends = torch.randint(6, length, (rows,), generator=g).tolist()
    for r in range(rows):
        ids[r, 0], col, w = 101, 1, 0
        while col + sizes[r][w] < ends[r]:
            pos[r, col:col + sizes[r][w]] = tags[r][w]
            word[r, col:col + sizes[r][w]] = w
            col, w = col + sizes[r][w], w + 1
        ids[r, col] = 102
    ids[:, 1:] += torch.randint(1000, VOCAB, (rows, length - 1), generator=g) * (pos[:, 1:] != NOT_A_WORD)
    return ids, pos, word


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, ...]:
    ids, pos, word = worded_batch()
    assert int((pos != NOT_A_WORD).sum()) >= 100_000
    return ids, pos, word


def run(spec_args: dict, ids: torch.Tensor, pos: torch.Tensor, word: torch.Tensor, step: int = 0,
        total: int = 1, seed: int = 1) -> tuple[MaskedBatch, torch.Tensor]:
    spec = parse_mask_spec(**spec_args)
    out = Masker(spec, MASK_ID, VOCAB, total_steps=total)(ids, pos, word, step, torch.Generator().manual_seed(seed))
    return out, out.labels != IGNORE_INDEX


def within(hits: int | float, n: int, p: float) -> bool:
    """hits / n is within 3 sigma of p."""
    return abs(hits / n - p) <= 3 * math.sqrt(p * (1 - p) / n) + 1e-12


def of(pos: torch.Tensor, *names: str) -> torch.Tensor:
    return torch.isin(pos.long(), torch.tensor([UPOS_ID[n] for n in names]))


def test_per_class_rates(batch) -> None:
    ids, pos, word = batch
    out, masked = run({"pos": "NOUN:0.5,DET:0.3,VERB"}, ids, pos, word)  # VERB: the default 0.7
    for name, p in (("NOUN", 0.5), ("DET", 0.3), ("VERB", 0.7)):
        here = of(pos, name)
        assert int(here.sum()) >= 5000 and within(int(masked[here].sum()), int(here.sum()), p), name
    assert not (masked & ~of(pos, "NOUN", "DET", "VERB")).any()
    counted = {UPOS_NAMES[i]: int(n) for i, n in enumerate(out.masked_by_pos) if n}
    assert counted == {n: int((masked & of(pos, n)).sum()) for n in ("DET", "NOUN", "VERB")}
    assert int(out.candidates_by_pos[UPOS_ID["DET"]]) == int(of(pos, "DET").sum())


def test_budget_spreads_the_expected_share_over_the_candidates(batch) -> None:
    ids, pos, word = batch
    out, masked = run({"pos": "NOUN,VERB,ADJ,DET", "budget": 0.15}, ids, pos, word)
    cand = of(pos, "NOUN", "VERB", "ADJ", "DET")
    n_cand, n_words = cand.sum(1).double(), (pos != NOT_A_WORD).sum(1).double()
    want = 0.15 * n_words
    p = (want / n_cand.clamp(min=1)).clamp(max=1)
    expected, var = float((p * n_cand).sum()), float((p * (1 - p) * n_cand).sum())
    assert float(n_words.sum()) >= 100_000
    assert abs(int(masked.sum()) - expected) <= 3 * math.sqrt(var), (int(masked.sum()), expected)
    assert not (masked & ~cand).any()
    free = want <= n_cand  # where the cap does not bind, each caption masks 15 % of its words in expectation
    assert within(int(masked[free].sum()), int(n_words[free].sum()), 0.15)
    capped = (want > n_cand) & (n_cand > 0)
    assert int(out.capped_captions) == int(capped.sum()) > 0
    assert torch.equal(masked[capped].sum(1), cand[capped].sum(1)), "a capped caption masks all its candidates"


def test_budget_matches_classes_of_different_frequency(batch) -> None:
    """A rare class and a frequent set mask the same share of uncapped captions."""
    ids, pos, word = batch
    n_words = (pos != NOT_A_WORD).sum(1)
    for classes in ("DET", "NOUN,VERB,ADJ,ADV,DET,ADP"):
        _, masked = run({"pos": classes, "budget": 0.05}, ids, pos, word)
        free = (0.05 * n_words <= of(pos, *classes.split(",")).sum(1))
        assert int(n_words[free].sum()) >= 20_000
        assert within(int(masked[free].sum()), int(n_words[free].sum()), 0.05), classes


def per_word(values: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over the wordpieces of each word (one slot per (caption, word index); 0 for no word)."""
    key = (torch.arange(word.shape[0])[:, None] * word.shape[1] + word.long())[word >= 0]
    return torch.zeros(word.numel(), dtype=torch.long).index_add_(0, key, values[word >= 0].long())


def split_words(masked: torch.Tensor, word: torch.Tensor) -> int:
    """Words with some but not all of their wordpieces masked, counted from the output alone."""
    hit, size = per_word(masked, word), per_word(torch.ones_like(masked), word)
    return int(((hit > 0) & (hit < size)).sum())


@pytest.mark.parametrize("pos_spec,ratio", [("random", 0.15), ("NOUN", 0.7)])
def test_whole_words_are_never_split(batch, pos_spec: str, ratio: float) -> None:
    ids, pos, word = batch
    out, masked = run({"pos": pos_spec, "whole_word": True}, ids, pos, word)
    firsts = (word >= 0) & (word != torch.nn.functional.pad(word, (1, 0), value=-1)[:, :-1])
    words = firsts & (of(pos, pos_spec) if pos_spec != "random" else pos != NOT_A_WORD)
    assert int(words.sum()) >= 3000 and within(int(masked[words].sum()), int(words.sum()), ratio)
    assert split_words(masked, word) == int(out.partial_words) == 0
    assert not (masked & (pos == NOT_A_WORD)).any()
    if pos_spec != "random":
        assert not (masked & ~of(pos, pos_spec)).any()


def test_wordpiece_draws_do_split_words(batch) -> None:
    """The split-word check above can fail: per-wordpiece masking splits words as often as independent draws do."""
    ids, pos, word = batch
    p = 0.5
    _, masked = run({"pos": "random", "ratio": p}, ids, pos, word)
    size = per_word(torch.ones_like(word, dtype=torch.bool), word)
    size = size[size > 0].double()
    split = 1 - p ** size - (1 - p) ** size  # a word of k pieces is split unless all k draws agree
    expected, sigma = float(split.sum()), math.sqrt(float((split * (1 - split)).sum()))
    assert expected >= 10_000 and abs(split_words(masked, word) - expected) <= 3 * sigma, expected


def test_fallback_gives_captions_without_candidates_random_15(batch) -> None:
    ids, pos, word = batch
    pos = pos.clone()
    half = (torch.arange(pos.shape[0]) % 2 == 1)[:, None]
    pos[half & (pos == UPOS_ID["NOUN"])] = UPOS_ID["ADJ"]  # every odd caption has no NOUN
    out, masked = run({"pos": "NOUN", "fallback": "random"}, ids, pos, word)
    words = pos != NOT_A_WORD
    empty = ~of(pos, "NOUN").any(1) & words.any(1)
    assert int(out.fallback_captions) == int(empty.sum()) >= pos.shape[0] // 2
    assert int(words[empty].sum()) >= 50_000 and within(int(masked[empty].sum()), int(words[empty].sum()), 0.15)
    nouns = of(pos, "NOUN")
    assert within(int(masked[nouns].sum()), int(nouns.sum()), 0.7)
    assert not (masked[~empty] & ~nouns[~empty]).any()
    # the class's counts hold the class's candidates only; the fallback's tokens are counted apart
    assert out.candidates_by_pos.nonzero().flatten().tolist() == [UPOS_ID["NOUN"]]
    assert int(out.candidates_by_pos.sum()) == int(nouns.sum())
    assert int(out.masked_by_pos.sum()) == int(masked[nouns].sum())
    assert int(out.fallback_tokens) == int(words[empty].sum())
    assert int(out.fallback_masked) == int(masked[empty].sum()) == int(out.n_masked) - int(out.masked_by_pos.sum())
    _, without = run({"pos": "NOUN"}, ids, pos, word)
    assert not without[empty].any(), "without FALLBACK those captions carry no MLM target"


def test_curriculum_stage_boundaries(batch) -> None:
    ids, pos, word = batch
    spec = parse_mask_spec(None, curriculum="DET@0.3>DET+NOUN>DET+NOUN+VERB")
    masker = Masker(spec, MASK_ID, VOCAB, total_steps=100)
    assert [masker.stage_at(s) for s in (0, 29, 30, 64, 65, 99)] == [0, 0, 1, 1, 2, 2]
    assert Masker(spec, MASK_ID, VOCAB, total_steps=100).bounds == masker.bounds  # a function of the step only
    for step, classes in ((29, ("DET",)), (30, ("DET", "NOUN")), (99, ("DET", "NOUN", "VERB"))):
        _, masked = run({"pos": None, "curriculum": "DET@0.3>DET+NOUN>DET+NOUN+VERB"}, ids, pos, word, step, 100)
        chosen = of(pos, *classes)
        assert not (masked & ~chosen).any(), step
        assert within(int(masked[chosen].sum()), int(chosen.sum()), 0.7), step
    equal = Masker(parse_mask_spec(None, curriculum="DET>NOUN>VERB"), MASK_ID, VOCAB, total_steps=90)
    assert [equal.stage_at(s) for s in (29, 30, 59, 60, 89)] == [0, 1, 1, 2, 2]


def test_counters_match_the_output(batch) -> None:
    ids, pos, word = batch
    out, masked = run({"pos": "ADV", "ratio": 0.3}, ids, pos, word)
    assert int(out.captions) == ids.shape[0]
    assert int(out.mlm_captions) == int(masked.any(1).sum()) < ids.shape[0]
    assert int(out.n_words) == int((pos != NOT_A_WORD).sum())
    assert int(out.n_candidates) == int(of(pos, "ADV").sum()) == int(out.candidates_by_pos.sum())
    assert int(out.n_masked) == int(masked.sum()) == int(out.masked_by_pos.sum())
    assert int(out.capped_captions) == int(out.fallback_captions) == 0


def test_window_sums_the_counters_into_metrics_fields(batch) -> None:
    from trainer.masking.counts import TOTALS, mask_fields, step_counts
    from trainer.engine.metrics import MetricsWindow

    ids, pos, word = batch
    spec = parse_mask_spec("NOUN", budget=0.1, whole_word=True, fallback="random")
    window = MetricsWindow(torch.device("cpu"), (), tuple(TOTALS), TOTALS)
    outs = [Masker(spec, MASK_ID, VOCAB)(ids[k::2], pos[k::2], word[k::2]) for k in range(2)]
    for out, k in zip(outs, range(2)):
        window.add(ids.shape[0] // 2, {}, step_counts(out, pos[k::2]))
    window.add(5, {}, step_counts(None, pos[:5]))  # a step without MLM adds words and captions only
    values = window.summary(world=1)
    fields = mask_fields(values, spec)
    masked = sum(int(o.n_masked) for o in outs)
    words = int((pos != NOT_A_WORD).sum()) + int((pos[:5] != NOT_A_WORD).sum())
    assert fields["masked_tokens"] == masked and fields["masked_share"] == masked / words
    for key in ("masked_by_pos", "candidates_by_pos"):
        summed = sum(getattr(o, key) for o in outs)
        assert fields[key] == {UPOS_NAMES[i]: int(n) for i, n in enumerate(summed) if n}
    assert set(fields["masked_by_pos"]) == set(fields["candidates_by_pos"]) == {"NOUN"}  # the fallback's apart
    assert fields["fallback_masked_tokens"] == masked - fields["masked_by_pos"]["NOUN"] > 0
    assert fields["fallback_tokens"] == sum(int(o.fallback_tokens) for o in outs) > fields["fallback_masked_tokens"]
    captions = ids.shape[0] + 5
    assert fields["mlm_caption_share"] == sum(int(o.mlm_captions) for o in outs) / captions
    assert fields["budget_capped_share"] == sum(int(o.capped_captions) for o in outs) / captions
    assert fields["fallback_caption_share"] == sum(int(o.fallback_captions) for o in outs) / captions > 0
    assert fields["partial_words"] == 0 and values == {"empty_mlm": 0, "samples_per_s": values["samples_per_s"],
                                                      "data_wait_share": values["data_wait_share"]}
