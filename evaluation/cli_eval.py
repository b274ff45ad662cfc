"""`posmask eval`: evaluate a pre-trained run on retrieval, VALSE, VQA and the caption probe."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from toolbox.errors import UserError
from shards.manifest import CAPTIONS_NAME
from trainer.engine.launch import add_launch_options
from evaluation.core.defaults import SCENES_EVAL, SCENES_EVAL_TAGS, is_scenes_sample
from trainer.run_dir import EVAL_TASKS, MODEL_CONFIG, MODEL_WEIGHTS, EvalDir, RunDir

HELP = "evaluate a run: zero-shot retrieval and VALSE (ITM), VQA fine-tuning, caption-perturbation probe"
log = logging.getLogger("evaluation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask eval`."""
    parser.add_argument("--run", "--run-dir", dest="run_dir", metavar="RUN", required=True,
                        help=f"run directory ({MODEL_WEIGHTS} + {MODEL_CONFIG})")
    parser.add_argument("--tasks", default=",".join(EVAL_TASKS),
                        help=f"comma-separated subset of {','.join(EVAL_TASKS)}")
    parser.add_argument("--data", help="one task: its annotation file or folder (retrieval JSON, VALSE folder or "
                        "file, VQA folder, COCO captions JSON for the probe); several tasks: a folder laid out like "
                        "the scenes eval set. Default: the scenes eval set")
    parser.add_argument("--images", help="image root; for VALSE also SOURCE=DIR,... with sources coco2017, "
                        "coco2014, visual7w, swig, visdial (a bare DIR serves every source)")
    parser.add_argument("--scenes", default=SCENES_EVAL, help=f"scenes eval folder (default {SCENES_EVAL})")
    parser.add_argument("--out", help="results folder (default RUN/eval)")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch when encoding (default 64)")
    parser.add_argument("--workers", type=int, help="image-decoding workers (default: by CPU count)")
    parser.add_argument("--gpus", type=int, default=1, help="processes for VQA fine-tuning (relaunches under torchrun)")
    add_launch_options(parser)
    g = parser.add_argument_group("retrieval")
    g.add_argument("--k", type=int, default=128, help="top-k by ITC re-ranked with ITM (default 128)")
    g.add_argument("--itm-batch-size", type=int, default=256, help="pairs per ITM batch (default 256)")
    g.add_argument("--ties", choices=("pessimistic", "optimistic", "expected"), default="pessimistic",
                   help="how score ties count in recall@k (default pessimistic); ALBEF's argsort recall lies "
                        "between pessimistic and optimistic, and equals all three when no score ties")
    g.add_argument("--rerank-score", choices=("logodds", "logit"), default="logodds",
                   help="ITM score of the re-ranked top k: logodds (default), match minus no-match logit; "
                        "logit: the raw match logit, as ALBEF (the order can differ)")
    g = parser.add_argument_group("VALSE")
    g.add_argument("--valse-all", action="store_true", help="score every entry, not only the valid subset")
    g.add_argument("--valse-convention", choices=("posmask", "valse"), default="posmask",
                   help="posmask (default): acc_r compares match probabilities, a foil is detected below 0.5; "
                        "valse (the VALSE authors' script): acc_r compares raw match logits, a foil is detected "
                        "when its no-match logit >= its match logit")
    g = parser.add_argument_group("VQA")
    g.add_argument("--vqa-answers", help="answer list JSON (e.g. the standard 3,129); default: top-K training answers")
    g.add_argument("--vqa-top-k", type=int, default=3129, help="answers kept without --vqa-answers (default 3129)")
    g.add_argument("--vqa-epochs", type=float, default=8.0, help="fine-tuning epochs (default 8)")
    g.add_argument("--vqa-warmup-epochs", type=float, default=1.0, help="linear warm-up 'epochs' (default 1)")
    g.add_argument("--vqa-warmup-reading", choices=("iterations", "epochs"), default="iterations",
                   help="iterations (default, as pre-training and ALBEF's VQA.py): each warm-up epoch is 100 "
                        "iterations, capped at a tenth of the fine-tune; epochs: literal epochs")
    g.add_argument("--vqa-batch-size", type=int, default=32, help="per-process batch (default 32)")
    g.add_argument("--vqa-lr", type=float, default=2e-5, help="AdamW learning rate (default 2e-5)")
    g.add_argument("--vqa-head-lr-mult", type=float, default=1.0, help="learning-rate multiplier of the new head")
    g.add_argument("--vqa-weight-decay", type=float, default=0.02, help="AdamW weight decay (default 0.02)")
    g.add_argument("--vqa-eval-split", default="val", help="split to predict: val (scored) or test-dev etc.")
    g.add_argument("--vqa-train-limit", type=int, help="fine-tune on a seeded random subset of N training questions")
    g.add_argument("--vqa-eval-limit", type=int, help="predict a seeded random subset of N evaluation questions")
    g.add_argument("--report-to", choices=("none", "tensorboard"), default="none",
                   help="tensorboard: the fine-tune's TensorBoard events beside its metrics.jsonl (eval/vqa_finetune/)")
    g = parser.add_argument_group("probe")
    g.add_argument("--probe-tags", help="captions.parquet (or the tag-shards output holding it) of the probe captions; "
                   f"default: DATA/tags, then {', '.join(SCENES_EVAL_TAGS)}")
    g.add_argument("--probe-per-image", type=int, default=5, help="captions probed per image (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe's perturbations and VQA fine-tuning")


def parse_tasks(spec: str) -> list[str]:
    """Validated task list in the given order."""
    tasks = [t.strip().lower() for t in spec.split(",") if t.strip()]
    bad = [t for t in tasks if t not in EVAL_TASKS]
    if bad or not tasks:
        raise UserError(f"--tasks: unknown {bad or spec!r}; valid: {','.join(EVAL_TASKS)}")
    return list(dict.fromkeys(tasks))


def task_inputs(task: str, args: argparse.Namespace, several: bool) -> dict[str, Any]:
    """Where one task reads its annotations and images, from --data / --images / --scenes."""
    if args.data and several and not Path(args.data).is_dir():
        raise UserError(f"--data {args.data}: with several tasks, --data must be a folder laid out like the "
                        "scenes eval set (retrieval.json, valse/, vqa/, captions.json, images/); "
                        "or evaluate one task at a time")
    layout = Path(args.data) if args.data and (several or _is_layout(Path(args.data), task)) else None
    if layout is None and not args.data:
        layout = Path(args.scenes)
        if not layout.is_dir():
            raise UserError(f"no --data given and the scenes eval set {layout} does not exist "
                            "(run `posmask make-scenes` first, or pass --data)")
    images = args.images
    if layout is not None:
        images = images or str(layout / "images")
        data = {"retrieval": layout / "retrieval.json", "valse": layout / "valse", "vqa": layout / "vqa",
                "probe": layout / "captions.json"}[task]
        return {"data": data, "images": images, "layout": layout}
    if task != "valse" and not images:
        raise UserError(f"{task}: --images ROOT is needed with --data {args.data}")
    return {"data": Path(args.data), "images": images, "layout": None}


def _is_layout(path: Path, task: str) -> bool:
    """Whether a folder is a scenes-style eval root rather than the task's own folder."""
    marker = {"retrieval": "retrieval.json", "valse": "valse", "vqa": "vqa", "probe": "captions.json"}[task]
    return path.is_dir() and (path / marker).exists()


def run(args: argparse.Namespace) -> int:
    """Evaluate the run on each task; results go to RUN/eval/<task>.json."""
    tasks = parse_tasks(args.tasks)
    if "probe" in tasks and args.probe_per_image < 1:
        raise UserError(f"--probe-per-image must be >= 1 (got {args.probe_per_image})")
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"--run {run_dir}: no such directory")

    from trainer.engine.distributed import DistInfo, setup, teardown
    from trainer.engine.launch import launch_from_args, launch_torchrun, under_torchrun

    launch = launch_from_args(args, args.gpus)
    if launch.multiprocess and not under_torchrun():
        return launch_torchrun(launch, args.argv)
    from evaluation.core.common import load_model, write_result
    from toolbox.devices import pick_device

    info = setup(pick_device(args.device).type == "cuda")
    if info.world_size > 1:  # VQA uses every process; the zero-shot tasks run on rank 0 afterwards
        tasks = (["vqa"] if "vqa" in tasks else []) + ([t for t in tasks if t != "vqa"] if info.is_main else [])
    else:
        info = DistInfo(device=pick_device(args.device))
    device = info.device
    several = len(tasks) > 1
    inputs = {t: task_inputs(t, args, several) for t in tasks}  # check paths before loading the model
    if "probe" in inputs:
        probe_tags(args, inputs["probe"])
    out_dir = EvalDir(args.out) if args.out else RunDir(run_dir).eval
    model = load_model(run_dir, device)
    log.info("evaluating %s on %s (%s)", run_dir, device, ",".join(tasks))
    summary: dict[str, Any] = {}
    try:
        for task in tasks:
            start = time.time()
            result = RUNNERS[task](model, inputs[task], args, info, out_dir)
            if result is None:
                continue
            result.update({"run": str(run_dir), "data": str(inputs[task]["data"]),
                           "scenes_sample": is_scenes_sample(inputs[task]["data"]),
                           "images": str(inputs[task]["images"]), "device": str(device),
                           "seconds": round(time.time() - start, 1)})
            if info.is_main:
                write_result(out_dir.result(task), result)
            summary[task] = result
            if task == "vqa" and task != tasks[-1]:
                model = load_model(run_dir, device)  # fine-tuning changed the weights: reload for zero-shot tasks
    finally:
        teardown()
    if info.is_main:
        print_summary(summary, out_dir)
    return 0


def _retrieval(model, inp, args, info, out_dir) -> dict[str, Any]:
    from evaluation.core.common import write_result
    from evaluation.retrieval.evaluate import evaluate_retrieval, load_retrieval_set

    data = load_retrieval_set(inp["data"], inp["images"])
    result, items = evaluate_retrieval(model, data, info.device, k=args.k, batch_size=args.batch_size,
                                       itm_batch_size=args.itm_batch_size, ties=args.ties, workers=args.workers,
                                       rerank_score=args.rerank_score)
    write_result(out_dir.items("retrieval"), items)
    return result


def _valse(model, inp, args, info, out_dir) -> dict[str, Any]:
    from evaluation.core.common import write_result
    from evaluation.valse.evaluate import evaluate_valse, load_valse, parse_image_roots

    pieces = load_valse(inp["data"], valid_only=not args.valse_all)
    roots = parse_image_roots(inp["images"])
    result, rows = evaluate_valse(model, pieces, roots, info.device, batch_size=max(1, args.batch_size // 2),
                                  workers=args.workers, convention=args.valse_convention)
    result["valid_only"] = not args.valse_all
    write_result(out_dir.items("valse"), rows)
    return result


def _vqa(model, inp, args, info, out_dir) -> dict[str, Any] | None:
    from evaluation.core.common import write_result
    from evaluation.vqa.finetune import VQASettings, run_vqa
    from toolbox.atomic import sha256_file
    from evaluation.vqa.data import answer_vocab, find_vqa_files, load_split, subsample

    files = find_vqa_files(inp["data"], args.vqa_eval_split)
    train = load_split("train", files.train_questions, files.train_annotations, inp["images"], True)
    evals = load_split(args.vqa_eval_split, files.eval_questions, files.eval_annotations, inp["images"])
    vocab = answer_vocab(args.vqa_answers, train, args.vqa_top_k)
    train = subsample(train, args.vqa_train_limit, args.seed)
    evals = subsample(evals, args.vqa_eval_limit, args.seed)
    settings = VQASettings(epochs=args.vqa_epochs, warmup_epochs=args.vqa_warmup_epochs,
                           warmup_reading=args.vqa_warmup_reading,
                           batch_size=args.vqa_batch_size, lr=args.vqa_lr, head_lr_mult=args.vqa_head_lr_mult,
                           weight_decay=args.vqa_weight_decay, seed=args.seed, workers=args.workers,
                           eval_batch_size=args.batch_size, report_to=args.report_to)
    weights = RunDir(args.run_dir).model
    backbone = f"{weights} sha256 {sha256_file(weights)}"
    result, predictions, items = run_vqa(model, train, evals, vocab, settings, info, out_dir.vqa_finetune, backbone)
    if not info.is_main:
        return None
    predictions_file = out_dir.vqa_predictions(args.vqa_eval_split)
    write_result(predictions_file, predictions)
    result["predictions"] = predictions_file.name
    if items:
        write_result(out_dir.items("vqa"), items)
    return result


def probe_tags(args: argparse.Namespace, inp: dict[str, Any]) -> str:
    """The probe's UPOS tags: --probe-tags, else DATA/tags (or a captions.parquet beside), else SCENES_EVAL_TAGS."""
    if args.probe_tags:
        return args.probe_tags
    layout = inp["layout"]
    candidates = ([layout / "tags", layout / CAPTIONS_NAME, layout / "shards"] if layout else []) + \
        [Path(p) for p in SCENES_EVAL_TAGS]
    tags = next((str(c) for c in candidates if (c / CAPTIONS_NAME).is_file() or c.is_file()), None)
    if tags is None:
        raise UserError(f"probe: no UPOS tags found for {inp['data']}; tag them with `posmask tag-shards --format coco "
                        f"--src {inp['data']} --images {inp['images']} --out {SCENES_EVAL_TAGS[0]}` "
                        "(or pass --probe-tags DIR), or leave probe out of --tasks")
    return tags


def _probe(model, inp, args, info, out_dir) -> dict[str, Any]:
    from evaluation.core.common import write_result
    from evaluation.probe.evaluate import load_probe_items, run_probe

    tags = probe_tags(args, inp)
    items = load_probe_items(tags, inp["data"], inp["images"], args.probe_per_image)
    result, per_item = run_probe(model, items, info.device, seed=args.seed, batch_size=max(1, args.batch_size // 2),
                                 workers=args.workers)
    result["tags"] = str(tags)
    write_result(out_dir.items("probe"), per_item)
    return result


RUNNERS = {"retrieval": _retrieval, "valse": _valse, "vqa": _vqa, "probe": _probe}


def print_summary(summary: dict[str, Any], out_dir: EvalDir) -> None:
    """A few headline numbers on stdout."""
    lines = []
    if "retrieval" in summary:
        m = summary["retrieval"]["metrics"]
        lines.append(f"retrieval  TR R@1/5/10 {m['tr_r1']:.1f}/{m['tr_r5']:.1f}/{m['tr_r10']:.1f}  "
                     f"IR R@1/5/10 {m['ir_r1']:.1f}/{m['ir_r5']:.1f}/{m['ir_r10']:.1f}  mean {m['r_mean']:.1f}")
    if "valse" in summary:
        v = summary["valse"]
        pieces = "  ".join(f"{k} {r['acc_r']:.1f}" for k, r in v["pieces"].items() if r["status"] == "ok")
        lines.append(f"valse      acc_r avg {v['average']['acc_r']:.1f} ({pieces})"
                     + (f"  not run: {','.join(v['not_run'])}" if v["not_run"] else ""))
    if "vqa" in summary and "metrics" in summary["vqa"]:
        m = summary["vqa"]["metrics"]
        lines.append(f"vqa        overall {m['overall']:.2f}  " +
                     "  ".join(f"{t} {a:.2f}" for t, a in m["per_answer_type"].items()))
    if "probe" in summary:
        v = summary["probe"]["variants"]
        wins = "  ".join(f"{c} {v[f'swap_{c}'].get('original_wins', float('nan')):.0f}"
                         for c in summary["probe"]["pos_classes"])
        lines.append(f"probe      p(original) {v['original'].get('mean_match_prob', float('nan')):.2f}  "
                     f"POS swap, original wins %: {wins}")
    print("\n".join(lines + [f"results in {out_dir.path}"]))
