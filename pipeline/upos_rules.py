"""spaCy's attribute_ruler as an exact UPOS lookup, compiled from the loaded model's own rules.

With the parser excluded, the ruler's POS rules in English models test one token's TAG and lower-case
form (LOWER), sometimes IS_SPACE; rules that test DEP never fire (no parser sets it). The ruler matches
every rule on the tagger's output, then applies the matches in rule order, so the last matching rule
decides. `compile_upos_rules` replays exactly that over every (tag, lower-case form, is-space) class the
rules can tell apart, giving a table that numpy applies to whole batches. A model whose rules need more
(several tokens, other attributes, operators) or whose pipes set POS elsewhere is refused with the
reason, and the tagger runs the pipe instead.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shards.upos import UPOS_ID

RULER = "attribute_ruler"
TAGGER_ONLY = ("tok2vec", "tagger")  # factories that may run before the ruler (neither sets POS nor DEP)
TESTED = ("TAG", "LOWER", "IS_SPACE", "DEP")  # attributes a compilable rule may test
OTHER = "\x00other"  # stands for every value no rule names
UNSET = UPOS_ID["X"]  # what a token no rule matches gets: POS 0, which the pipe path maps to X


class NotCompilable(ValueError):
    """The model's rules or pipes cannot be replaced by the lookup exactly; the message says why."""


@dataclass(frozen=True)
class UposLookup:
    """UPOS id (schema) of each (tag, lower-case form, is-space) class; hashes are spaCy string ids."""

    tag_hashes: np.ndarray  # sorted uint64
    tag_rows: np.ndarray  # row of table for each sorted hash
    lower_hashes: np.ndarray
    lower_cols: np.ndarray
    table: np.ndarray  # uint8 [tags + 1, lowers + 1, 2]; the last row / column: any other value
    rules: int  # POS-setting rules compiled

    def __call__(self, tags: np.ndarray, lowers: np.ndarray, is_space: np.ndarray) -> np.ndarray:
        """UPOS ids of tokens given their TAG hashes, LOWER hashes and IS_SPACE flags (1-d arrays)."""
        rows = _index(self.tag_hashes, self.tag_rows, tags, self.table.shape[0] - 1)
        cols = _index(self.lower_hashes, self.lower_cols, lowers, self.table.shape[1] - 1)
        return self.table[rows, cols, is_space.astype(np.intp)]


def _index(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, missing: int) -> np.ndarray:
    """values[k] where queries == keys[k], else `missing` (keys sorted)."""
    if len(keys) == 0:
        return np.full(len(queries), missing, dtype=np.intp)
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[at] == queries, values[at], missing)


def _test(constraint: Any, value: Any) -> bool:
    """One attribute test of a Matcher token pattern: a value, or a dict of IN / NOT_IN lists."""
    if isinstance(constraint, dict):
        unknown = set(constraint) - {"IN", "NOT_IN"}
        if unknown:
            raise NotCompilable(f"a POS rule uses the predicate {sorted(unknown)[0]}")
        return value in constraint.get("IN", (value,)) and value not in constraint.get("NOT_IN", ())
    return constraint == value


def _never_fires(tokens: list[dict[str, Any]]) -> bool:
    """True when a token of the pattern tests DEP for a value it cannot have (no parser: DEP is empty)."""
    return any("DEP" in t and not _test(t["DEP"], "") for t in tokens)


def _pos_name(value: Any) -> str:
    if isinstance(value, str):
        return value
    from spacy.parts_of_speech import NAMES

    return NAMES.get(int(value), "")


def _upos_rules(patterns: Iterable[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], int]]:
    """(single-token alternatives, UPOS id) of each rule that sets POS and can fire, in rule order."""
    rules = []
    for number, rule in enumerate(patterns):
        if "POS" not in rule["attrs"]:
            continue
        alternatives = []
        for tokens in rule["patterns"]:
            tokens = [{k.upper(): v for k, v in t.items()} for t in tokens]
            if _never_fires(tokens):
                continue
            if len(tokens) != 1:
                raise NotCompilable(f"POS rule {number} spans {len(tokens)} tokens")
            unknown = set(tokens[0]) - set(TESTED)
            if unknown:
                raise NotCompilable(f"POS rule {number} tests {sorted(unknown)[0]}")
            alternatives.append(tokens[0])
        if alternatives:
            rules.append((alternatives, UPOS_ID.get(_pos_name(rule["attrs"]["POS"]), UNSET)))
    return rules


def _named(rules: list[tuple[list[dict[str, Any]], int]], attr: str) -> list[str]:
    """Every value of `attr` the rules name (in a test or an IN / NOT_IN list), in first-seen order."""
    names: dict[str, None] = {}
    for alternatives, _ in rules:
        for token in alternatives:
            test = token.get(attr)
            lists = test.values() if isinstance(test, dict) else ([test] if test is not None else [])
            for value in lists:
                names.update(dict.fromkeys([value] if isinstance(value, str) else value))
    return list(names)


def check_pipes(factories: list[str]) -> None:
    """The pipeline must be tok2vec/tagger then the ruler, last: nothing else sets POS or DEP."""
    if factories.count(RULER) != 1 or factories[-1] != RULER or "tagger" not in factories \
            or any(f not in TAGGER_ONLY for f in factories[:-1]):
        raise NotCompilable(f"pipes {factories}: only tok2vec + tagger + {RULER} compile")


def compile_upos_rules(nlp: Any) -> UposLookup:
    """The lookup equal to the loaded pipeline's UPOS (raises NotCompilable with the reason)."""
    check_pipes([nlp.get_pipe_meta(name).factory for name in nlp.pipe_names])
    ruler_name = nlp.pipe_names[-1]
    tagger_name = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "tagger")
    rules = _upos_rules(nlp.get_pipe(ruler_name).patterns)
    tags = list(dict.fromkeys([*nlp.get_pipe(tagger_name).labels, *_named(rules, "TAG")]))
    lowers = _named(rules, "LOWER")
    axes = {"TAG": [*tags, OTHER], "LOWER": [*lowers, OTHER], "IS_SPACE": [False, True]}
    table = np.full((len(tags) + 1, len(lowers) + 1, 2), UNSET, dtype=np.uint8)
    for alternatives, upos in rules:  # later rules overwrite earlier ones, as the ruler applies them
        hit = np.zeros(table.shape, dtype=bool)
        for token in alternatives:
            masks = [np.array([attr not in token or _test(token[attr], v) for v in values])
                     for attr, values in axes.items()]
            hit |= masks[0][:, None, None] & masks[1][None, :, None] & masks[2][None, None, :]
        table[hit] = upos
    strings = nlp.vocab.strings
    tag_keys = np.array([strings.add(t) for t in tags], dtype=np.uint64)
    lower_keys = np.array([strings.add(w) for w in lowers], dtype=np.uint64)
    tag_order, lower_order = np.argsort(tag_keys), np.argsort(lower_keys)
    return UposLookup(tag_keys[tag_order], tag_order, lower_keys[lower_order], lower_order, table, len(rules))
