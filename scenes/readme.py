"""The README.md written at the root of a generated scenes folder."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenes.generate import ScenesConfig

TEMPLATE = """# posmask scenes (generated; seed {seed})

Synthetic images (128×128 JPEG) of 1-4 coloured shapes (circle, square, triangle, star; red,
green, blue, yellow, white, black; big or small) on a plain grey background, with captions from a
grammar. Regenerate with `posmask make-scenes --out DIR --seed {seed}`: the same seed and sizes
give byte-identical files. Evaluation scenes never appear in the training split (no training scene
has the same shapes, colours, sizes and coarse positions).

| path | format | content |
|---|---|---|
| `train/captions.json` | COCO captions (`images`, `annotations`) | {train_images} images, {train_captions} captions (pre-training) |
| `train/images/` | JPEG | training images |
| `eval/captions.json` | COCO captions | {eval_images} held-out images, {eval_captions} captions (caption probe) |
| `eval/retrieval.json` | Flickr30K/COCO retrieval: `[{{image, caption: [...]}}]` | same images, paths relative to `eval/images/` |
| `eval/valse/<piece>.json` | VALSE: `{{id: {{caption, foil, image_file, mturk, ...}}}}` | existence {valse_existence}, plurals {valse_plurals}, counting {valse_counting}, color {valse_color}, relations {valse_relations}, actant-swap {valse_actant_swap} |
| `eval/vqa/{{train,val}}_{{questions,annotations}}.json` | VQA v2 (official schema) | train: {vqa_train_questions} questions on {vqa_train_images} extra held-out images; val: {vqa_val_questions} questions on the evaluation images |
| `eval/images/` | JPEG | evaluation and VQA images |
| `*/scenes.json` | `{{image_id: {{background, objects: [{{shape, colour, size, x, y}}]}}}}` | ground truth |
| `scenes_manifest.json` | JSON | config and counts; present only when generation finished |

Image files are named like COCO 2017: `<image_id zero-padded to 12 digits>.jpg` (training ids
1…, evaluation ids 1000001…, VQA fine-tuning ids 2000001…), so a VQA loader maps `image_id` to
`eval/images/{{image_id:012d}}.jpg`. Caption annotation ids are `image_id * 10 + k`, so tagged
keys read `coco-<image_id>-<annotation id>`. VALSE foils are false by construction: every entry
has `mturk = {{"foil": 0, "caption": 3, "other": 0}}` (valid), and the NLI / grammaticality scores
of the real files are fixed to a contradiction / 1.0. VQA question ids are `image_id * 1000 + k`;
each question has ten answers.

Training scenes come in minimal pairs ({train_twins} twins): image 2k is image 2k-1 with one group of
objects given another shape, and both images' captions come from the same random stream, so caption k
of the two differs (almost always) only in the shape words. Their annotations share the extra field
`pair` (`"<id of 2k-1>-<k>"`); tag-shards keeps it, and the trainer puts both captions into one batch.
Without pairs, colour, size and position tell a batch's images apart and a tiny model from scratch
never learns shape words (see trainer/README.md).
"""


def render(config: "ScenesConfig", counts: dict[str, int]) -> str:
    """README text for a folder generated with `config` (counts as written)."""
    values = {k.replace("-", "_"): v for k, v in counts.items()}
    return TEMPLATE.format(seed=config.seed, **values)
