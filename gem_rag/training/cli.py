"""Train a GEM artefact (embedding post-training of the LLM): gem-rag train --corpus DOCS --out RUN.

Examples:
    gem-rag train --corpus /work/shared/data/corpus --out runs/gem --preset gpu
    gem-rag train --corpus docs/ --out runs/quick --preset cpu-quick
    gem-rag train --rows runs/gem/rows.jsonl.gz --out runs/gem --resume
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from gem_rag.training.config import POSITIVE_KINDS, TrainConfig

logger = logging.getLogger(__name__)

# Named recipes; explicit flags override them.
PRESETS: dict[str, dict] = {
    "gpu": dict(ntp_steps=150, ntp_batch=64, contrastive_steps=1000, contrastive_batch=256, ntp_mix_batch=32,
                grad_checkpointing=True),
    # Measured here: one graph without checkpointing peaked at 23 GB RSS for 32 pairs; GradCache in 8-row passes
    # is 1.8x faster than checkpointing at 4 GB (docs/contrastive_step.json); bf16 autocast was 1.4x slower.
    "cpu-quick": dict(ntp_steps=20, ntp_batch=8, contrastive_steps=300, contrastive_batch=32, ntp_weight=0.0,
                      max_tokens=160, embed_chunk=8, time_budget_min=55.0, checkpoint_every=20),
    "test": dict(ntp_steps=2, ntp_batch=4, contrastive_steps=3, contrastive_batch=4, ntp_mix_batch=2,
                 max_tokens=48, eval_rows=16, checkpoint_every=2, progress=False),
}

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", nargs="*", default=[], help=".jsonl/.txt/.md/.rst files or folders to train on")
    parser.add_argument("--rows", help="prepared rows file (default: <out>/rows.jsonl.gz, built from --corpus)")
    parser.add_argument("--out", required=True, help="run folder: checkpoint, history, artefact/")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named recipe (flags below override it)")
    parser.add_argument("--prepare-only", action="store_true", help="only build the rows file")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--min-words", type=int, default=40, help="shortest passage (words)")
    parser.add_argument("--max-words", type=int, default=160, help="longest passage (words)")
    parser.add_argument("--val-percent", type=float, default=2.0, help="share of documents held out")
    parser.add_argument("--positives", default=None, help=f"comma list of {','.join(POSITIVE_KINDS)}")
    parser.add_argument("--lora-targets", default=None, help="comma list of module names for LoRA")
    parser.add_argument("--crop-share", default=None, help="crop positives: low,high share of the passage per view")
    parser.add_argument("--train-sources", default=None,
                        help="comma list: train only on rows of these sources, e.g. wikipedia-sample (default: all); "
                             "validation keeps every held-out row")
    parser.add_argument("--source-weights", default=None,
                        help="comma list of source=factor: multiply a source's share of contrastive batches, "
                             "e.g. wikipedia-sample=3 (default: every source by the square root of its size)")
    for field in fields(TrainConfig):
        if field.name in ("rows", "out_dir", "positives", "lora_targets", "crop_share", "train_sources",
                          "source_weights", "extra"):
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool",):
            parser.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=None,
                                help=f"true/false (default {field.default})")
        elif field.name == "base_model":
            parser.add_argument(flag, default=None, help="base model: folder, .gguf or hub id (default: SmolLM2-135M)")
        elif field.name == "init_from":
            parser.add_argument(flag, default=None, help="continue training a LoRA artefact (e.g. the shipped one)")
        else:
            kind = {"int": int, "float": float, "str": str}[str(field.type)]
            parser.add_argument(flag, type=kind, default=None, help=f"default {field.default}")


def _comma_list(text: str) -> tuple[str, ...]:
    """"a, b,,c" -> ("a", "b", "c")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def config_from_args(args: argparse.Namespace, rows: str) -> TrainConfig:
    values: dict = dict(PRESETS.get(args.preset or "", {}))
    for field in fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in ("rows", "extra"):
            values[field.name] = value
    if args.positives:
        values["positives"] = _comma_list(args.positives)
    if args.crop_share:
        values["crop_share"] = tuple(float(p) for p in args.crop_share.split(","))
    if args.lora_targets:
        values["lora_targets"] = _comma_list(args.lora_targets)
    if args.train_sources:
        values["train_sources"] = _comma_list(args.train_sources)
    if args.source_weights:
        values["source_weights"] = _comma_list(args.source_weights)
    argv = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else []
    command = "gem-rag train " + " ".join(shlex.quote(a) for a in argv)
    extra = {"command": command, "data": {"corpus": [str(p) for p in args.corpus]}}
    return TrainConfig(rows=rows, out_dir=args.out, extra=extra, **values)


def run(args: argparse.Namespace) -> int:
    from gem_rag.training.data import prepare_rows
    from gem_rag.training.trainer import train

    rows = Path(args.rows or Path(args.out) / "rows.jsonl.gz")
    if args.corpus and not rows.is_file():
        stats = prepare_rows(args.corpus, rows, min_words=args.min_words, max_words=args.max_words,
                             val_percent=args.val_percent)
        print(f"rows: {rows} {stats}")
    elif not rows.is_file():
        print(f"error: no rows file at {rows}; pass --corpus to build it", file=sys.stderr)
        return 2
    if args.prepare_only:
        return 0
    card = train(config_from_args(args, str(rows)), resume=args.resume)
    print(f"artefact: {Path(args.out) / 'artefact'}  validation: {card['validation'].get('final')}")
    return 0
