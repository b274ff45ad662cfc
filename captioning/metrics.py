"""Caption quality and style for the SCST probe: BLEU-4 and CIDEr against the references (pycocoevalcap's
pure-Python scorers; its Java tokenizer is not used), perplexity under a trigram language model of reference
captions (nltk.lm, Kneser-Ney), and, from the project's spaCy tagger, length, nouns, unique nouns, the
commonest prefixes and POS patterns, summarised as the seed does (noun phrases merged; REL = ADP or VERB)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shards.upos import UPOS_ID, UPOS_NAMES

WORD = re.compile(r"[a-z0-9]+")
NP_PARTS: frozenset[int] = frozenset(UPOS_ID[c] for c in ("DET", "NUM", "ADJ", "NOUN", "PROPN", "PRON"))
HEADS: frozenset[int] = frozenset(UPOS_ID[c] for c in ("NOUN", "PROPN", "PRON"))
STARTS: frozenset[int] = frozenset({UPOS_ID["DET"], UPOS_ID["NUM"]})
REL: frozenset[int] = frozenset({UPOS_ID["ADP"], UPOS_ID["VERB"]})
DROPPED: frozenset[int] = frozenset(UPOS_ID[c] for c in ("PUNCT", "SPACE", "SYM"))


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), the tokenisation of BLEU, CIDEr and the LM."""
    return WORD.findall(text.lower())


def coco_scores(references: Sequence[Sequence[str]], captions: Sequence[str]) -> dict[str, object]:
    """Corpus BLEU-4 and CIDEr (x 100) of one caption per image against its references, and CIDEr per image."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    refs = {i: [" ".join(words(r)) for r in rs] for i, rs in enumerate(references)}
    hyps = {i: [" ".join(words(c)) or "empty"] for i, c in enumerate(captions)}
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    cider, per_image = Cider().compute_score(refs, hyps)
    return {"bleu4": 100.0 * bleu[3], "cider": 100.0 * float(cider),
            "cider_per_image": [100.0 * float(c) for c in per_image]}


class TrigramLM:
    """A Kneser-Ney trigram model of tokenised sentences (words seen once become <UNK>)."""

    def __init__(self, sentences: Iterable[Sequence[str]], order: int = 3) -> None:
        from nltk.lm import KneserNeyInterpolated, Vocabulary
        from nltk.lm.preprocessing import pad_both_ends
        from nltk.util import everygrams

        padded = [list(pad_both_ends(s, order)) for s in sentences if s]
        self.order = order
        self.vocab = Vocabulary((w for s in padded for w in s), unk_cutoff=2)
        self.model = KneserNeyInterpolated(order, vocabulary=self.vocab)
        self.model.fit(everygrams(s, max_len=order) for s in padded)  # nltk maps words to the vocabulary

    def known(self, sentence: Sequence[str]) -> bool:
        """Whether the model can score it (a word it never saw has no probability when no rare word was seen)."""
        return all(self.model.score(w) > 0 for w in sentence)

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Corpus perplexity (per token, one end of sentence included) of the sentences."""
        from nltk.util import ngrams

        # left context of <s>, one </s> to predict (nltk's pad_both_ends would add a second, near-certain one)
        grams = [g for s in sentences for g in ngrams(["<s>"] * (self.order - 1) + list(s) + ["</s>"], self.order)]
        return float(self.model.perplexity(grams)) if grams else float("nan")


def tag(texts: Sequence[str]) -> list[tuple[list[str], list[int]]]:
    """Each text's words and UPOS ids from the project's spaCy tagger (pipeline.tagger)."""
    from pipeline.tagger import Tagger

    tagger = Tagger()
    return [([t[s:s + n] for s, n in zip(starts.tolist(), lengths.tolist())], [int(u) for u in upos])
            for t, (starts, lengths, upos) in zip(texts, tagger.word_arrays(list(texts)))]


def pos_pattern(upos: Sequence[int]) -> str:
    """The caption's shape: each noun phrase (a DET/NUM/ADJ/NOUN/PROPN/PRON run with a noun or pronoun, ended by
    punctuation or a new determiner or number) one NP, ADP and VERB runs one REL, other classes by name (CCONJ,
    AUX, ...), punctuation dropped."""
    out: list[str] = []
    run: list[int] = []

    def close() -> None:
        if run:
            out.append("NP" if HEADS & set(run) else " ".join(UPOS_NAMES[u] for u in run))
            run.clear()

    for u in upos:
        if u in DROPPED or (u in STARTS and HEADS & set(run)):  # a comma, or a new determiner, ends a phrase
            close()
            if u in DROPPED:
                continue
        if u in NP_PARTS:
            run.append(u)
            continue
        close()
        label = "REL" if u in REL else UPOS_NAMES[u]
        if not (label == "REL" and out and out[-1] == "REL"):
            out.append(label)
    close()
    return " ".join(out)


@dataclass
class Style:
    """Table 4's row: perplexity, length (words), nouns and unique nouns per caption."""

    perplexity: float
    length: float
    nouns: float
    unique_nouns: float
    unscored: int  # captions with a word the LM never saw (left out of the perplexity)


def style(tagged: Sequence[tuple[list[str], list[int]]], texts: Sequence[str], lm: TrigramLM) -> Style:
    """Table 4's figures of a set of captions."""
    tokens = [words(t) for t in texts]
    scored = [t for t in tokens if lm.known(t)]
    nouns = [[w.lower() for w, u in zip(ws, us) if u == UPOS_ID["NOUN"]] for ws, us in tagged]
    return Style(lm.perplexity(scored), float(np.mean([len(t) for t in tokens])), float(np.mean([len(n) for n in nouns])),
                 float(np.mean([len(set(n)) for n in nouns])), len(tokens) - len(scored))


def top(values: Iterable[str], k: int = 5) -> list[tuple[str, float]]:
    """The k commonest values with their share (%)."""
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return [(v, 100.0 * n / total) for v, n in counts.most_common(k)]


def prefix(text: str, n: int = 3) -> str:
    """The caption's first n words."""
    return " ".join(words(text)[:n])
