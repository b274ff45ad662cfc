"""The SCST probe's evaluation: greedy captions of every captioner on the evaluation images, scored by every
probed run (ITM, and ITC when a captioner was trained on it), BLEU-4 / CIDEr, the LM's perplexity and the
tagger's counts; gathered into the report's `ProbeResult`."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from captioning.metrics import TrigramLM, coco_scores, style, tag, words
from captioning.captioner import greedy_captions, load_captioner
from captioning.data import FrozenEncoder, eval_images, shard_caption_texts
from captioning.scst.report import REFERENCES, ProbeResult
from captioning.scst.reward import CaptionScorer

log = logging.getLogger(__name__)


def evaluate(captioners: dict[str, Path], trained_with: dict[str, tuple[str, str]], scorers: dict[str, Path],
             encoder: FrozenEncoder, shards: str, captions_json: Path, image_root: Path, limit: int | None,
             device: torch.device) -> ProbeResult:
    """Caption, score and describe (see module doc); `captioners` maps a system name to its folder, `scorers`
    a run's label to its folder."""
    from evaluation.core.common import load_model

    images, references = eval_images(captions_json, image_root, limit)
    features = encoder.encode(images.images, device, desc="evaluation features")
    systems = {name: greedy_captions(load_captioner(folder, device), features) for name, folder in captioners.items()}
    systems[REFERENCES] = [refs[0] for refs in references]
    kinds = ["itm"] + (["itc"] if any(kind == "itc" for _, kind in trained_with.values()) else [])
    scores: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in systems}
    index = torch.arange(len(images.ids))
    for label, run in scorers.items():
        scorer = CaptionScorer(load_model(run, device), images.images, device)
        for name, texts in systems.items():
            scores[name][label] = {k: scorer(index, texts, k).tolist() for k in kinds}
    lm = TrigramLM(words(t) for t in shard_caption_texts(shards))
    everything = [t for texts in systems.values() for t in texts]
    tags = tag(everything)
    tagged = {name: tags[i * len(images.ids):(i + 1) * len(images.ids)] for i, name in enumerate(systems)}
    return ProbeResult(
        image_ids=images.ids, image_names=[Path(p).name for p in images.images], references=references,
        systems=systems, trained_with=trained_with, scorers=list(scorers), kinds=kinds, scores=scores,
        coco={name: coco_scores(references, texts) for name, texts in systems.items() if name != REFERENCES},
        style={name: style(tagged[name], texts, lm) for name, texts in systems.items()}, tagged=tagged)
