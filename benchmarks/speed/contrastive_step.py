"""Seconds per contrastive training step for the trainer's ways of embedding a batch, on the same batches.

Each variant runs in a process of its own (so its peak RSS is its own), from the same artefact, the same rows
and the same seeded batches; the first step is a warm-up and not counted. Variants:

- ``one-graph``: the whole batch embedded in one autograd graph with gradient checkpointing (``cpu-quick``
  until session 10; without checkpointing one 32-pair step peaked at 23 GB here);
- ``gradcache-16`` / ``-8`` / ``-4``: GradCache, rows embedded 16 (8, 4) at a time in length order, once without a
  graph and once with one, no checkpointing;
- ``gradcache-16-128``: the same with texts cut at 128 tokens instead of 160;
- ``gradcache-8-fp32``: ``gradcache-8`` without autocast (every other variant autocasts to bf16 where the CPU has
  bf16 units, as the trainer does by default).

Usage:
    python -m benchmarks.speed.contrastive_step --rows runs/s10/rows_all_news.jsonl.gz --json docs/contrastive_step.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import torch

from benchmarks.common import machine, write_json

VARIANTS = {
    "one-graph": dict(embed_chunk=0, grad_checkpointing=True),
    "gradcache-16": dict(embed_chunk=16, grad_checkpointing=False),
    "gradcache-8": dict(embed_chunk=8, grad_checkpointing=False),
    "gradcache-4": dict(embed_chunk=4, grad_checkpointing=False),
    "gradcache-16-128": dict(embed_chunk=16, grad_checkpointing=False, max_tokens=128),
    "gradcache-8-fp32": dict(embed_chunk=8, grad_checkpointing=False, autocast="off"),  # the others: bf16 where the CPU has it
}
COMMON = dict(ntp_steps=0, contrastive_batch=32, ntp_weight=0.0, max_tokens=160, positives=("ict", "heading"),
              eval_rows=0, progress=False, lr=5e-4, special_lr=2e-4)


def run_variant(name: str, rows: str, steps: int, init_from: str) -> dict:
    from gem_rag.training import TrainConfig
    from gem_rag.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(rows=rows, out_dir=out, init_from=init_from, contrastive_steps=steps + 1,
                          checkpoint_every=10_000, **{**COMMON, **VARIANTS[name]})
        trainer = Trainer(cfg)
        trainer._new_optimizer()
        trainer.model.train()
        seconds = []
        for step in range(steps + 1):
            started = time.perf_counter()
            trainer.optimizer.zero_grad(set_to_none=True)
            loss, tokens, _ = trainer._contrastive_step(trainer._rng(2, step, 0), 1.0)
            trainer.optimizer.step()
            seconds.append(time.perf_counter() - started)
    counted = seconds[1:]
    return {"variant": name, "settings": VARIANTS[name], "steps": steps, "seconds_per_step": round(sum(counted) / steps, 2),
            "step_seconds": [round(s, 2) for s in counted], "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="rows file (training rows are drawn from it)")
    parser.add_argument("--init-from", default="gem_rag/weights/smollm2-135m-gem", help="artefact to start from")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one variant in this process, JSON to stdout
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.rows, args.steps, args.init_from)), flush=True)
        return 0
    results = []
    for name in args.variants.split(","):
        command = [sys.executable, "-m", "benchmarks.speed.contrastive_step", "--rows", args.rows, "--steps",
                   str(args.steps), "--init-from", args.init_from, "--variant", name]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        write_json(args.json, {"what": "seconds per 32-pair contrastive step (ICT + heading), same seeded batches",
                               "command": "python -m benchmarks.speed.contrastive_step " + " ".join(argv or sys.argv[1:]),
                               "machine": machine(results[0]["threads"] if results else None), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
