"""Step 4 of gpu_check.sh: the short pre-training's loss must fall (first logged step against the last); writes the
`## GPU pre-training` section (POSMASK_BENCH_DOC) and prints one line. Exit 1 when the loss does not fall.

    python tests/benchmarks/gpu_pretrain_check.py RUN/metrics.jsonl [run|rehearse]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(path: str, mode: str) -> int:
    from bench_doc import write_section
    from trainer.engine.metrics import read_step_records

    records = list(read_step_records(path).values())
    if len(records) < 2:
        print(f"pre-training: {len(records)} logged steps in {path}; the loss cannot be compared")
        return 1
    first, last = records[0], records[-1]
    falls = last["loss"] < first["loss"]
    where = "the GPU" if mode == "run" else "the CPU (a rehearsal: tiny preset, not figures)"
    line = (f"pre-training on {where}: step {first['step']} loss {first['loss']:.3f} -> step {last['step']} "
            f"loss {last['loss']:.3f} ({'falls' if falls else 'DOES NOT FALL'}); {last.get('samples_per_s', 0):.0f} "
            f"samples/s, data wait {last.get('data_wait_share', 0):.1%}, peak {last.get('peak_mem_mb', 0):.0f} MiB"
            + (f", MFU {last['mfu']:.1%}" if last.get("mfu") else "")
            + f", MLM targets left out for want of a slot: {sum(r.get('mlm_dropped_tokens', 0) for r in records)}")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join(["## GPU pre-training", "",
                         f"`tests/benchmarks/gpu_check.sh`, step 4 ({when}): "
                         f"`posmask pretrain` DET 0.7, random ViT, on the carried 224-px scenes shards. {line}.", ""])
    write_section(section)
    print(line)
    return 0 if falls else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "run"))
