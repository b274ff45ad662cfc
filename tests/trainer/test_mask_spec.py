"""The mask spec's variants as parsed from the flags: canonical forms, folder and report labels, the
structured record (and resumption's identity), and one clear line for every bad value; loss weights."""
from __future__ import annotations

import pytest
import torch

from toolbox.errors import UserError
from trainer.config import TrainConfig, preset_config
from trainer.masking.loss_weights import LossWeights, parse_loss_weights
from trainer.masking.spec import MaskSpec, parse_mask_spec


@pytest.mark.parametrize("kwargs,label,report", [
    ({"pos": "DET", "ratio": 0.7}, "DET-0.7", "DET-0.7"),
    ({"pos": "NOUN:0.5,DET:0.3"}, "DET0.3+NOUN0.5", "DET0.3+NOUN0.5"),
    ({"pos": "NOUN,DET", "whole_word": True}, "DET+NOUN-0.7-w", "DET+NOUN-0.7-w"),
    ({"pos": "random", "whole_word": True}, "random-0.15-w", "random-0.15-w"),
    ({"pos": "DET", "budget": 0.15}, "DET-b0.15", "DET-b0.15"),
    ({"pos": "PROPN", "fallback": "random"}, "PROPN-0.7-fb", "PROPN-0.7-fb"),
    ({"pos": None, "curriculum": "DET>NOUN"}, "cur-DET_NOUN-0.7", "cur-DET>NOUN-0.7"),
    ({"pos": None, "curriculum": "DET@0.3>DET+NOUN", "budget": "0.15"}, "cur-DET@0.3_DET+NOUN-b0.15",
     "cur-DET@0.3>DET+NOUN-b0.15"),
    ({"pos": None, "curriculum": "none>random>NOUN"}, "cur-none_random-0.15_NOUN-0.7", "cur-none>random-0.15>NOUN-0.7"),
    ({"pos": "none"}, "none", "none"),
])
def test_labels(kwargs: dict, label: str, report: str) -> None:
    spec = parse_mask_spec(**kwargs)
    assert (spec.label, spec.report_label) == (label, report)
    assert MaskSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("a,b", [
    ({"pos": "NOUN:0.5,DET:0.5"}, {"pos": "det,noun", "ratio": "0.5"}),
    ({"pos": "NOUN:0.5,DET"}, {"pos": "DET:0.7+NOUN:0.5"}),
    ({"pos": None, "curriculum": "DET@0.5>NOUN"}, {"pos": "", "curriculum": " det > noun "}),
    ({"pos": None, "curriculum": "DET@0.2>NOUN>VERB"}, {"pos": None, "curriculum": "DET@0.2>NOUN@0.6>VERB"}),
])
def test_one_spec_however_typed(a: dict, b: dict) -> None:
    assert parse_mask_spec(**a) == parse_mask_spec(**b)


def test_the_record_is_structured_and_resumption_compares_it() -> None:
    spec = parse_mask_spec(None, curriculum="DET>DET+NOUN", whole_word=True, budget=0.15, fallback="random")
    record = spec.to_dict()
    assert record["ends"] == [0.5] and record["whole_word"] and record["budget"] == 0.15
    assert [s["classes"] for s in record["stages"]] == [["DET"], ["DET", "NOUN"]]
    assert parse_mask_spec("DET").to_dict() == {"classes": ["DET"], "ratio": 0.7, "name": "DET"}  # old records
    cfg = preset_config("tiny", mask=spec, loss_weights=parse_loss_weights("mlm=0.2~1"))
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again.mask == spec and again.loss_weights == cfg.loss_weights and again.identity() == cfg.identity()
    assert cfg.run == "runs/tiny-cur-DET_DET+NOUN-b0.15-w-fb-lw-mlm0.2to1"
    for other in (parse_mask_spec(None, curriculum="DET>DET+NOUN", budget=0.15, fallback="random"),
                  parse_mask_spec(None, curriculum="DET@0.4>DET+NOUN", whole_word=True, budget=0.15,
                                  fallback="random")):
        assert preset_config("tiny", mask=other).identity()["mask"] != cfg.identity()["mask"]
    plain = preset_config("tiny", mask=parse_mask_spec("DET"))
    assert "loss_weights" not in plain.identity()  # runs from before loss weights still resume
    assert plain.identity() != preset_config("tiny", mask=parse_mask_spec("DET"),
                                             loss_weights=parse_loss_weights("itm=2")).identity()


@pytest.mark.parametrize("kwargs,needle", [
    ({"pos": "FOO"}, "valid:"),
    ({"pos": "NOUN:1.5"}, "(0, 1]"),
    ({"pos": "NOUN:0"}, "(0, 1]"),
    ({"pos": "NOUN:x"}, "not a number"),
    ({"pos": "NOUN:0.5,NOUN:0.3"}, "twice"),
    ({"pos": "DET", "ratio": 0.7, "budget": 0.15}, "drop RATIO"),
    ({"pos": "DET", "budget": 1.5}, "(0, 1]"),
    ({"pos": "NOUN:0.5", "budget": 0.1}, "per-class ratios"),
    ({"pos": "none", "whole_word": True}, "MLM off"),
    ({"pos": "none", "budget": 0.15}, "MLM off"),
    ({"pos": "DET", "fallback": "bert"}, "valid: none, random"),
    ({"pos": "random", "fallback": "random"}, "adds nothing"),
    ({"pos": None, "curriculum": "DET>>NOUN"}, "stage 2 is empty"),
    ({"pos": None, "curriculum": "DET>"}, "stage 2 is empty"),
    ({"pos": None, "curriculum": "DET"}, "one stage"),
    ({"pos": None, "curriculum": "DET@0.7>NOUN@0.5>VERB"}, "increase"),
    ({"pos": None, "curriculum": "DET>NOUN@0.5"}, "last stage"),
    ({"pos": None, "curriculum": "DET@1.0>NOUN"}, "increase"),
    ({"pos": None, "curriculum": "DET>FOO"}, "stage 2 (FOO): unknown POS"),
    ({"pos": None, "curriculum": "none>none"}, "masks nothing"),
    ({"pos": "DET", "curriculum": "DET>NOUN"}, "give one of them"),
    ({"pos": None}, "empty POS"),
])
def test_bad_values_are_one_line_saying_what_is_valid(kwargs: dict, needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_mask_spec(**kwargs)
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert "valid" in message or "drop" in message or "give one" in message


def test_loss_weights_ramp_linearly_over_the_run() -> None:
    weights = parse_loss_weights("mlm=0.2~1.0, itc=0.5")
    assert weights == LossWeights(mlm=(0.2, 1.0), itc=(0.5, 0.5))
    total = 101
    values = [weights.at(step, total) for step in range(total)]
    assert values[0] == (0.2, 0.5, 1.0) and values[-1] == pytest.approx((1.0, 0.5, 1.0))
    assert all(v[0] == pytest.approx(0.2 + 0.8 * k / 100) for k, v in enumerate(values))
    assert weights.label == "mlm0.2to1+itc0.5" and LossWeights.from_dict(weights.to_dict()) == weights
    assert parse_loss_weights("") == LossWeights() and LossWeights().is_default


@pytest.mark.parametrize("text,needle", [
    ("mlm", "not valid"), ("foo=1", "not valid"), ("mlm=-1", "negative"), ("mlm=a~1", "not a number"),
    ("mlm=1,mlm=2", "twice"), ("mlm=0,itc=0,itm=0", "every loss 0"),
])
def test_bad_loss_weights(text: str, needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_loss_weights(text)
    assert needle in str(err.value) and "valid:" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="no MLM loss"):
        parse_loss_weights("mlm=0.5", mlm=False)


def test_pretrainer_weighs_the_losses() -> None:
    from trainer.masking.masker import Masker
    from trainer.model.posmask import PosMaskModel
    from trainer.model.objective import Pretrainer

    cfg = preset_config("tiny")
    torch.manual_seed(0)
    module = Pretrainer(PosMaskModel(cfg.model, vision_weights="random"), mlm=True).eval()
    ids = torch.randint(1000, 30000, (4, 12))
    pos = torch.full((4, 12), 7, dtype=torch.uint8)
    pos[:, 0] = pos[:, -1] = 255
    masked = Masker(parse_mask_spec("NOUN", 0.5), 103, cfg.model.vocab_size)(ids, pos)
    inputs = dict(pixels=torch.randn(4, 3, 64, 64), ids=ids, attention_mask=torch.ones_like(ids),
                  image_ids=torch.arange(4), mlm_ids=masked.input_ids, mlm_labels=masked.labels)
    torch.manual_seed(1)
    plain = module(**inputs)
    torch.manual_seed(1)
    weighted = module(**inputs, loss_weights=torch.tensor([0.2, 0.5, 2.0]))
    assert plain["loss"].item() == pytest.approx((plain["mlm"] + plain["itc"] + plain["itm"]).item(), rel=1e-6)
    expected = 0.2 * weighted["mlm"] + 0.5 * weighted["itc"] + 2.0 * weighted["itm"]
    assert weighted["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert weighted["loss"].item() != pytest.approx(plain["loss"].item(), rel=1e-3)


def test_extensions_grid_entries_parse_and_are_named_by_their_label() -> None:
    import tomllib
    from pathlib import Path

    grid = Path(__file__).resolve().parents[2] / "grids" / "extensions.toml"
    runs = tomllib.loads(grid.read_text(encoding="utf-8"))["run"]
    labels = set()
    for run in runs:
        spec = parse_mask_spec(run.get("pos"), run.get("ratio"), whole_word=run.get("whole_word", False),
                               budget=run.get("budget"), fallback=run.get("fallback"),
                               curriculum=run.get("curriculum"))
        weights = parse_loss_weights(run.get("loss_weights"), spec.mlm)
        cfg = preset_config("tiny", mask=spec, loss_weights=weights)
        assert cfg.run == f"runs/tiny-{run['name']}", run
        labels.add(cfg.run)
    assert len(labels) == len(runs) == 11
    assert sum(1 for r in runs if "budget" in r) == 5 and sum(1 for r in runs if r.get("whole_word")) == 2
