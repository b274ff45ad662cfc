"""Every metric against hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.retrieval.metric import metrics_from_hits, recall_at_k, retrieval_hits
from evaluation.valse.metric import entry_outcomes, valse_scores
from evaluation.vqa.metric import (normalize_answer, process_digit_article, process_punctuation,
                                   question_accuracy, soft_score, vqa_accuracy)


# ---------------------------------------------------------------- recall@k
def test_recall_simple_ranks():
    # query 0: positive at rank 1; query 1: rank 3; query 2: rank 6
    scores = np.array([
        [0.9, 0.1, 0.2, 0.3, 0.0, 0.05],
        [0.9, 0.8, 0.7, 0.1, 0.2, 0.0],
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    ])
    r = recall_at_k(scores, [[0], [2], [5]], ks=(1, 3, 5, 6))
    assert r == pytest.approx({1: 100 / 3, 3: 200 / 3, 5: 200 / 3, 6: 100.0})


def test_recall_constant_scores_is_not_perfect():
    scores = np.zeros((4, 4))
    positives = [[i] for i in range(4)]
    assert recall_at_k(scores, positives, ks=(1,))[1] == 0.0
    assert recall_at_k(scores, positives, ks=(1,), ties="optimistic")[1] == 100.0
    # random tie-breaking among 4 candidates with 1 positive: P(top-1) = 1/4, P(top-2) = 1/2
    r = recall_at_k(scores, positives, ks=(1, 2, 4), ties="expected")
    assert r == pytest.approx({1: 25.0, 2: 50.0, 4: 100.0})


def test_recall_ties_with_multiple_positives():
    # candidates: positives {0,1} tied with negatives {2,3} at 0.5; one negative above
    row = np.array([[0.5, 0.5, 0.5, 0.5, 0.9]])
    assert recall_at_k(row, [[0, 1]], ks=(1, 2, 3, 4))[1] == 0.0
    r = recall_at_k(row, [[0, 1]], ks=(1, 2, 3, 4))
    assert r == {1: 0.0, 2: 0.0, 3: 0.0, 4: 100.0}  # pessimistic: both tied negatives first
    e = recall_at_k(row, [[0, 1]], ks=(2, 3), ties="expected")
    # 1 slot left at k=2: P(first of {n,n,p,p} is p) = 1/2; k=3: 1 - P(first two are negatives) = 1 - 1/6
    assert e[2] == pytest.approx(50.0)
    assert e[3] == pytest.approx(100 * (1 - 1 / 6))


def test_other_positive_never_pushes_down():
    # two positives tied at the top: a hit at R@1 in every tie mode
    row = np.array([[0.7, 0.7, 0.1]])
    for ties in ("pessimistic", "optimistic", "expected"):
        assert recall_at_k(row, [[0, 1]], ks=(1,), ties=ties)[1] == 100.0


def test_retrieval_metrics_both_directions():
    # 2 images, 4 texts (2 each); i2t perfect, t2i: text 3 ranks image 0 first
    i2t = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.9, 0.8]])
    t2i = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3]])
    m = metrics_from_hits(*retrieval_hits(i2t, t2i, txt2img=[0, 0, 1, 1], img2txt=[[0, 1], [2, 3]]))
    assert m["tr_r1"] == 100.0 and m["ir_r1"] == 75.0 and m["ir_r5"] == 100.0
    assert m["tr_mean"] == 100.0
    assert m["ir_mean"] == pytest.approx((75 + 100 + 100) / 3)
    assert m["r_mean"] == pytest.approx((100 + m["ir_mean"]) / 2)


# ---------------------------------------------------------------- VALSE
def logits(probs):
    """[n,2] ITM logits (no match 0, match log-odds) with the given match probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return np.stack([np.zeros_like(p), np.log(p) - np.log1p(-p)], axis=1)


def test_valse_scores_hand_case():
    cap = logits([0.9, 0.6, 0.4, 0.5, 0.7])
    foil = logits([0.1, 0.7, 0.3, 0.5, 0.2])
    s = valse_scores(cap, foil)
    # acc_r: 0.9>0.1, 0.6<0.7, 0.4>0.3, tie, 0.7>0.2 -> 3/5
    assert s["acc_r"] == pytest.approx(60.0)
    # p_c: caption prob > .5 -> 0.9, 0.6, 0.7 -> 3/5 ; p_f: foil prob < .5 -> .1, .3, .2 -> 3/5
    assert s["p_c"] == pytest.approx(60.0) and s["p_f"] == pytest.approx(60.0)
    assert s["acc"] == pytest.approx(60.0) and s["n"] == 5
    assert s["ties_skipped"] == 0  # posmask keeps the tie: acc_r lost, its foil (p 0.5) not detected
    # the VALSE authors' script skips the tied entry (caption and foil logits equal) and counts it
    v = valse_scores(cap, foil, "valse")
    assert (v["acc_r"], v["p_c"], v["p_f"], v["n"], v["ties_skipped"]) == (
        pytest.approx(75.0), pytest.approx(75.0), pytest.approx(75.0), 4, 1)


def test_valse_conventions_differ_where_the_no_match_logit_moves():
    # caption: match logit 3, no-match 2 (p 0.73); foil: match logit 2, no-match -2 (p 0.98)
    cap, foil = [[2.0, 3.0]], [[-2.0, 2.0]]
    assert valse_scores(cap, foil)["acc_r"] == 0.0  # probabilities: the foil wins
    assert valse_scores(cap, foil, "valse")["acc_r"] == 100.0  # raw match logits: the caption wins
    outcome = entry_outcomes([[2.0, 3.0], [1.0, 1.0]], [[0.0, 0.0], [5.0, 1.0]], "valse")
    assert outcome["foil_detected"].tolist() == [True, True] and outcome["caption_fits"].tolist() == [True, False]
    assert entry_outcomes([[2.0, 3.0]], [[0.0, 0.0]])["foil_detected"].tolist() == [False]  # posmask: p < 0.5
    with pytest.raises(ValueError, match="valid: posmask, valse"):
        valse_scores(cap, foil, "lxmert")


def test_valse_scores_keep_order_where_probabilities_round_to_one():
    s = valse_scores([[0.0, 40.0]], [[0.0, 39.0]])  # both float32 sigmoids are 1.0
    assert s["acc_r"] == 100.0


def test_valse_scores_asymmetric_and_empty():
    s = valse_scores(logits([0.8, 0.8]), logits([0.9, 0.9]))  # says "match" to everything
    assert (s["acc_r"], s["p_c"], s["p_f"], s["acc"]) == (0.0, 100.0, 0.0, 50.0)
    assert math.isnan(valse_scores(np.zeros((0, 2)), np.zeros((0, 2)))["acc_r"])


# ---------------------------------------------------------------- VQA
def test_normalisation_cases():
    assert process_digit_article("Two") == "2"
    assert process_digit_article("the dog") == "dog"
    assert process_digit_article("an apple a day") == "apple day"
    assert process_digit_article("none") == "0"
    assert process_digit_article("dont") == "don't"
    assert process_digit_article("isnt it") == "isn't it"
    assert process_punctuation("yes!") == "yes "
    assert process_punctuation("hot dog, fries") == "hot dog fries"  # ', ' -> removed
    assert process_punctuation("1,000") == "1000"  # digit comma digit -> all punctuation removed
    assert process_punctuation("t-shirt") == "t shirt"
    assert process_punctuation("3.5") == "3.5"  # a decimal point stays
    assert normalize_answer("The Two Dogs.") == "2 dogs"
    assert normalize_answer("  yes\n") == "yes"


def test_soft_scores_table():
    assert [round(soft_score(c), 6) for c in range(5)] == [0.0, 0.3, 0.6, 0.9, 1.0]


def test_question_accuracy_leave_one_out():
    gts = ["2"] * 2 + ["3"] * 8
    assert question_accuracy("2", gts) == pytest.approx(0.6)  # (2*1/3 + 8*2/3)/10
    assert question_accuracy("3", gts) == pytest.approx(1.0)
    assert question_accuracy("4", gts) == 0.0
    one = ["red"] + ["blue"] * 9
    assert question_accuracy("red", one) == pytest.approx(0.3)


def test_question_accuracy_normalises_when_answers_differ():
    gts = ["two"] * 3 + ["2 "] + ["three"] * 6  # differ -> normalised: 4x "2", 6x "3"
    assert question_accuracy("Two", gts) == pytest.approx(1.0)
    assert question_accuracy("the 2", gts) == pytest.approx(1.0)
    # the official quirk: identical human answers are compared verbatim (after strip)
    assert question_accuracy("2", ["two"] * 10) == 0.0
    assert question_accuracy("two ", ["two"] * 10) == 1.0


def test_vqa_accuracy_per_type_and_missing():
    anns = [
        {"question_id": 1, "answer_type": "yes/no", "answers": [{"answer": "yes"}] * 10},
        {"question_id": 2, "answer_type": "number", "answers": [{"answer": "2"}] * 1 + [{"answer": "3"}] * 9},
        {"question_id": 3, "answer_type": "other", "answers": [{"answer": "red"}] * 10},
    ]
    r = vqa_accuracy({1: "yes", 2: "2"}, anns)
    assert r["per_answer_type"] == {"number": 30.0, "other": 0.0, "yes/no": 100.0}
    assert r["overall"] == pytest.approx(round(100 * 1.3 / 3, 2))
    assert r["missing"] == 1 and r["n"] == 3


def test_a_tie_skipped_by_the_valse_convention_is_flagged_and_left_out_of_the_items():
    from evaluation.core.items import valse_items
    from evaluation.valse.evaluate import ValseEntry, entry_row

    entry = ValseEntry(sample_id="a", caption="a dog", foil="a cat", image_file="x.jpg", source="coco")
    tie, won = np.array([0.0, 1.0]), np.array([0.0, 2.0])
    rows = [entry_row("existence", entry, tie, tie, "valse"), entry_row("existence", entry, won, tie, "valse")]
    assert rows[0]["skipped"] == "tie" and "skipped" not in rows[1]
    assert "skipped" not in entry_row("existence", entry, tie, tie, "posmask")
    scores = valse_items(rows)["valse/existence"]
    assert len(scores.ids) == 1 and scores.values.tolist() == [1.0]
