"""The seed's five templates render exactly as written in its Table 7, and the count curve's captions."""
from __future__ import annotations

import pytest

from evaluation.probe.templates import TEMPLATES, count_captions, render, templates, union_nouns

N = ["dog", "frisbee", "grass", "tree", "sky", "cloud", "ball"]
EXPECTED = {
    "UNITER": ("a dog", "a dog of the frisbee grass", "a dog of the frisbee grass tree sky cloud ball"),
    "ROSITA": ("a image image that is a a dog", "a image image that is a a dog but a a frisbee but a a grass",
               "a image image that is a a dog but a a frisbee but a a grass but a a tree but a a sky but a a cloud "
               "but a a ball"),
    "ViLBERT": ("a dog", "a dog that the frisbee at the grass",
                "a dog that the frisbee at the grass at the tree at the sky at the cloud at the ball"),
    "CLIP": ("a image image of dog", "a image image of dog near a frisbee near a grass",
             "a image image of dog near a frisbee near a grass near a tree near a sky near a cloud near a ball"),
    "LXMERT": ("a dog", "a dog of a frisbee of a grass",
               "a dog of a frisbee of a grass of a tree of a sky of a cloud of a ball"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_renders_exactly_for_1_3_and_7_nouns(name):
    assert tuple(render(name, N[:k]) for k in (1, 3, 7)) == EXPECTED[name]


def test_every_template_is_tested_and_none_renders_without_nouns():
    assert set(TEMPLATES) == set(EXPECTED)
    assert render("LXMERT", []) is None
    assert templates(N[:3])["tpl_CLIP"] == EXPECTED["CLIP"][1]


def test_count_captions_are_nested_draws_of_the_image_nouns():
    nouns = union_nouns([["dog", "grass"], ["dog", "frisbee", "tree"], ["sky", "cloud", "ball", "grass"]])
    assert nouns == N[:1] + ["grass", "frisbee", "tree", "sky", "cloud", "ball"]
    out = count_captions(nouns, seed=3)
    assert out == count_captions(nouns, seed=3)
    previous: set[str] = set()
    for k in (3, 4, 5, 6, 7):
        words = out[f"count_{k}"].split()
        drawn = words[1::3]  # a N of a N ...: every third word from the second
        assert len(drawn) == k and set(drawn) > previous and drawn == [n for n in nouns if n in drawn]
        previous = set(drawn)
    assert count_captions(nouns[:4], seed=3)["count_5"] is None  # fewer nouns than k: skipped
