"""VQA v2 data: official question/annotation files, image paths, answer vocabulary, soft-score targets."""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.core.common import load_json
from evaluation.vqa.metric import normalize_answer, soft_score
from toolbox.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class VQASplit:
    """Questions of one split, their annotations (absent for test splits) and image paths."""

    name: str
    questions: list[dict[str, Any]]
    annotations: dict[int, dict[str, Any]]
    images: list[Path]
    missing_images: list[str] = field(default_factory=list)


@dataclass
class VQAFiles:
    """Paths of the files of a VQA folder."""

    train_questions: Path
    train_annotations: Path
    eval_questions: Path
    eval_annotations: Path | None


def _first(folder: Path, patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def find_vqa_files(folder: str | os.PathLike[str], eval_split: str = "val") -> VQAFiles:
    """Locate train and evaluation files: `{train,val}_{questions,annotations}.json` or official names.

    `eval_split` is `val` (scored) or e.g. `test-dev` (predictions only, no annotations needed).
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"VQA data folder not found: {root}")
    tq = _first(root, ["train_questions.json", "*OpenEnded*train*questions*.json", "*train*questions*.json"])
    ta = _first(root, ["train_annotations.json", "*train*annotations*.json"])
    eq = _first(root, [f"{eval_split}_questions.json", f"*OpenEnded*{eval_split}*questions*.json",
                       f"*{eval_split}*questions*.json"])
    ea = _first(root, [f"{eval_split}_annotations.json", f"*{eval_split}*annotations*.json"])
    missing = [name for name, p in (("train questions", tq), ("train annotations", ta),
                                    (f"{eval_split} questions", eq)) if p is None]
    if missing:
        raise UserError(f"{root}: no VQA {', '.join(missing)} file (expected e.g. train_questions.json, "
                        f"train_annotations.json, {eval_split}_questions.json)")
    return VQAFiles(tq, ta, eq, ea)


IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")


class ImageIndex:
    """Finds a question's image under a root: an explicit `image`/`file_name` field (relative path),
    else by file stem among all images below the root (indexed once): COCO's
    `COCO_<subtype>_<id:012d>`, `<id:012d>` or `<id>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stems: dict[str, Path] | None = None
        self._numbers: dict[int, Path] = {}

    def _index(self) -> dict[str, Path]:
        if self._stems is None:
            self._stems = {}
            for dirpath, _, files in sorted(os.walk(self.root)):
                for f in sorted(files):
                    stem, ext = os.path.splitext(f)
                    if ext.lower() in IMAGE_EXTS:
                        path = Path(dirpath) / f
                        self._stems.setdefault(stem, path)
                        digits = re.search(r"(\d+)$", stem)
                        if digits:  # `000123`, `COCO_val2014_000000000123`, `scene_123` -> 123
                            self._numbers.setdefault(int(digits.group(1)), path)
        return self._stems

    def find(self, question: Mapping[str, Any], subtype: str | None) -> Path | None:
        """The image of one question (`subtype` e.g. `val2014` for COCO names), or None when it is not found."""
        for key in ("image", "file_name", "image_file"):
            if key in question:
                p = self.root / str(question[key])
                if p.is_file():
                    return p
        image_id = question.get("image_id")
        if image_id is None:
            return None
        stems = [str(image_id)]
        try:
            num = int(image_id)
            stems = ([f"COCO_{subtype}_{num:012d}"] if subtype else []) + [f"{num:012d}", str(num)]
        except (TypeError, ValueError):
            pass
        index = self._index()
        found = next((index[s] for s in stems if s in index), None)
        if found is None and str(image_id).isdigit():
            found = self._numbers.get(int(image_id))
        return found


def load_split(name: str, questions_file: Path, annotations_file: Path | None, image_root: str | os.PathLike[str],
               require_annotations: bool = False) -> VQASplit:
    """Read one split; questions whose image is missing are dropped and listed."""
    qdata = load_json(questions_file, "VQA questions file")
    if not isinstance(qdata, dict) or not isinstance(qdata.get("questions"), list):
        raise UserError(f"{questions_file}: not a VQA questions file (no 'questions' list)")
    try:
        for q in qdata["questions"]:
            int(q["question_id"])
            if "question" not in q:
                raise KeyError("question")
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{questions_file}: a question lacks an integer question_id or its question") from None
    subtype = qdata.get("data_subtype")
    annotations: dict[int, dict[str, Any]] = {}
    if annotations_file is not None:
        adata = load_json(annotations_file, "VQA annotations file")
        if not isinstance(adata, dict) or not isinstance(adata.get("annotations"), list):
            raise UserError(f"{annotations_file}: not a VQA annotations file (no 'annotations' list)")
        try:
            annotations = {int(a["question_id"]): a for a in adata["annotations"]}
            well_formed = all(isinstance(a["answers"], list) for a in annotations.values())
        except (KeyError, TypeError, ValueError):
            well_formed = False
        if not well_formed:
            raise UserError(f"{annotations_file}: an annotation lacks an integer question_id or its answers list")
    elif require_annotations:
        raise UserError(f"VQA {name}: annotations are required")
    root = Path(image_root)
    finder = ImageIndex(root)
    questions, images, missing = [], [], []
    cache: dict[Any, Path | None] = {}
    for q in qdata["questions"]:
        key = (q.get("image"), q.get("file_name"), q.get("image_id"))
        if key not in cache:
            cache[key] = finder.find(q, subtype)
        path = cache[key]
        if path is None:
            missing.append(str(q.get("image") or q.get("file_name") or q.get("image_id")))
            continue
        if annotations and int(q["question_id"]) not in annotations and require_annotations:
            continue
        questions.append(q)
        images.append(path)
    if missing:
        log.warning("VQA %s: %d of %d questions have no image under %s (first: %s)", name, len(missing),
                    len(qdata["questions"]), root, missing[0])
    if not questions:
        raise UserError(f"VQA {name}: no question has its image under {root}")
    return VQASplit(name, questions, annotations, images, sorted(set(missing)))


def subsample(split: VQASplit, limit: int | None, seed: int = 0) -> VQASplit:
    """A seeded random subset of `limit` questions (order kept); the split itself when no limit applies."""
    if limit is None or limit >= len(split.questions):
        return split
    if limit < 1:
        raise UserError(f"VQA {split.name}: a question limit must be >= 1 (got {limit})")
    import random

    keep = sorted(random.Random(f"{seed}:{split.name}").sample(range(len(split.questions)), limit))
    log.info("VQA %s: using %d of %d questions", split.name, limit, len(split.questions))
    return VQASplit(split.name, [split.questions[i] for i in keep], split.annotations,
                    [split.images[i] for i in keep], split.missing_images)


def answer_vocab(answers_file: str | os.PathLike[str] | None, train: VQASplit | None, top_k: int = 3129) -> list[str]:
    """The answer list: from a JSON list file (the standard 3,129, index 0 is ""), else the top-K
    normalised `multiple_choice_answer`s of the training annotations (ties alphabetical)."""
    if answers_file:
        vocab = load_json(answers_file, "answer list")
        if not isinstance(vocab, list) or not all(isinstance(a, str) for a in vocab):
            raise UserError(f"{answers_file}: expected a JSON list of answer strings")
        return vocab
    if train is None or not train.annotations:
        raise UserError("an answer list needs --vqa-answers FILE or training annotations")
    counts = Counter(normalize_answer(a.get("multiple_choice_answer", "")) for a in train.annotations.values())
    counts.pop("", None)
    return [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]


def soft_targets(annotation: Mapping[str, Any], index: Mapping[str, int]) -> dict[int, float]:
    """{answer index: VQA soft score} over the vocabulary for one annotated question (official scores)."""
    answers = [normalize_answer(a["answer"]) for a in annotation.get("answers", [])]
    counts = Counter(answers)
    return {index[a]: soft_score(c, len(answers)) for a, c in counts.items() if a in index}
