"""The official VQA v2 accuracy: answer normalisation and leave-one-out min(matches / 3, 1).

Follows the official evaluation code (GT-Vision-Lab/VQA, `vqaEval.py`) rule for rule, quirks
included, so that numbers compare with published ones: ground-truth answers and the prediction are
normalised (punctuation, number words -> digits, articles dropped, contractions restored) only when
the ten human answers are not all identical, exactly as the official script does.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})
PUNCT: tuple[str, ...] = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
                          ">", "<", "@", "`", ",", "?", "!")
# Both regexes verbatim from the official script (the period one is a known no-op lookahead).
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def process_punctuation(text: str) -> str:
    """Official punctuation handling: drop or space out punctuation, strip sentence periods."""
    out = text
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out)


def process_digit_article(text: str) -> str:
    """Official word handling: lowercase, number words to digits, drop articles, restore contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
    return " ".join(words)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(text: str) -> str:
    """Full normalisation of one answer (used to build answer vocabularies and training targets)."""
    return process_digit_article(process_punctuation(_clean(text)))


def question_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Official accuracy of one prediction against the (usually 10) human answers, in [0, 1]."""
    gts = [_clean(a) for a in gt_answers]
    pred = _clean(prediction)
    if len(set(gts)) > 1:
        gts = [process_digit_article(process_punctuation(a)) for a in gts]
        pred = process_digit_article(process_punctuation(pred))
    if not gts:
        return 0.0
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, a in enumerate(gts) if j != i and a == pred)
        accs.append(min(1.0, matches / 3.0))
    return sum(accs) / len(accs)


def soft_score(count: int, n_answers: int = 10) -> float:
    """Leave-one-out accuracy of an answer given by `count` of `n_answers` humans (0.3, 0.6, 0.9, 1 for 10)."""
    if count <= 0 or n_answers <= 0:
        return 0.0
    hit = count * min(1.0, (count - 1) / 3.0)
    miss = (n_answers - count) * min(1.0, count / 3.0)
    return (hit + miss) / n_answers


def question_scores(
    predictions: Mapping[int, str],
    annotations: Iterable[Mapping],
) -> list[dict[str, object]]:
    """Per question: `question_id`, `image_id` (when annotated: the cluster key), `answer_type` and its accuracy
    (0-1; 0 without a prediction)."""
    rows = []
    for ann in annotations:
        qid = int(ann["question_id"])
        acc = question_accuracy(predictions[qid], [a["answer"] for a in ann["answers"]]) if qid in predictions else 0.0
        row = {"question_id": qid, "answer_type": str(ann.get("answer_type", "other")), "accuracy": acc}
        if ann.get("image_id") is not None:
            row["image_id"] = str(ann["image_id"])
        rows.append(row)
    return rows


def vqa_accuracy(
    predictions: Mapping[int, str],
    annotations: Iterable[Mapping],
) -> dict[str, float | int | dict[str, float]]:
    """Overall and per-answer-type accuracy in percent (2 decimals like the official script).

    `annotations` are official VQA v2 annotation dicts (`question_id`, `answer_type`, `answers`);
    a question without a prediction scores 0 and is counted in `missing`.
    """
    rows = question_scores(predictions, annotations)
    per_type: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        per_type[str(row["answer_type"])].append(float(row["accuracy"]))

    def pct(values: list[float]) -> float:
        return round(100.0 * sum(values) / len(values), 2) if values else float("nan")

    return {
        "overall": pct([float(r["accuracy"]) for r in rows]),
        "per_answer_type": {t: pct(v) for t, v in sorted(per_type.items())},
        "n": len(rows),
        "missing": sum(int(r["question_id"]) not in predictions for r in rows),
    }
