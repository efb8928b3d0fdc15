"""The paper's levers at CPU scale: short GEM runs from the base model that differ in one trainer option each.

Every variant trains from the untouched base model with the same small protocol (``COMMON``: phase 1, 20 mixed-NTP
steps of 8 rows; phase 2, 16 contrastive steps of 16 pairs, texts cut at 128 tokens), then gets development
figures (``benchmarks.dev.heldout_dev``: held-out ICT R@1 and same-document AUC) and evaluation figures (SQuAD on
200 paragraphs, Python FAQ, Lee) with ``benchmarks.quality.retrieval_quality``. Two seeds of the baseline show the
run-to-run noise.
Resumable: a variant in ``--json`` is skipped; otherwise its run folder's artefact, dev.json and eval.json are
reused when present, and an interrupted training resumes from its checkpoint.

Usage:
    python -m benchmarks.training.cpu_levers --rows runs/gem/rows.jsonl.gz --dev-rows runs/s6/rows_wiki_news.jsonl.gz \
        --out runs/s7/levers --json docs/cpu_levers.json
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

from benchmarks.common import DATA_ROOT_HELP, data_root

logger = logging.getLogger(__name__)

COMMON = ["--preset", "cpu-quick", "--ntp-steps", "20", "--ntp-batch", "8", "--contrastive-steps", "16",
          "--contrastive-batch", "16", "--max-tokens", "128", "--time-budget-min", "0", "--eval-rows", "0",
          "--checkpoint-every", "4", "--progress", "false"]

VARIANTS: dict[str, list[str]] = {
    "baseline": [],  # cpu-quick: one GEM token, plain_prob 0.8, LoRA r=16, LR 2e-4 (GEM row 1e-3)
    "baseline-seed1": ["--seed", "1"],
    "special-tokens-2": ["--num-special-tokens", "2"],
    "plain-prob-0.5": ["--plain-prob", "0.5"],
    "full-finetune": ["--method", "full", "--lr", "2e-5"],
    "lr-5e-4": ["--lr", "5e-4"],
    "max-tokens-64": ["--max-tokens", "64"],
    "mixed-batches": ["--domain-batches", "false"],  # in-batch negatives from every corpus, not one corpus a batch
}


def run(command: list[str], log: Path) -> None:
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True)


def variant_figures(name: str, args: argparse.Namespace) -> dict:
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    log = out / "run.log"
    train = ["gem-rag", "train", "--rows", args.rows, "--out", str(out), *COMMON, *VARIANTS[name]]
    card = out / "artefact" / "gem_card.json"
    if not card.exists():
        run(train + (["--resume"] if (out / "checkpoint.pt").exists() else []), log)
    if not (out / "dev.json").exists():
        run([sys.executable, "-m", "benchmarks.dev.heldout_dev", "--gem", str(out / "artefact"), "--rows", args.dev_rows,
             "--json", str(out / "dev.json")], log)
    if not (out / "eval.json").exists():
        run([sys.executable, "-m", "benchmarks.quality.retrieval_quality", "--gem", str(out / "artefact"), "--models",
             "gem", "--tasks", "squad,faq,lee", "--paragraphs", "200", "--device", "cpu", "--data-root",
             str(data_root(args.data_root)), "--json", str(out / "eval.json")], log)
    dev = json.loads((out / "dev.json").read_text())
    evaluation = json.loads((out / "eval.json").read_text())
    trained = json.loads(card.read_text())
    return {"flags": VARIANTS[name], "train_s": round(sum(trained["train_seconds"].values())),  # phase 1 + 2
            "adapter": trained["lora"],  # full fine-tuning: the rank and energy kept by its SVD export
            "development": dev, "evaluation": evaluation["figures"]["gem"], "evaluation_machine": evaluation["machine"],
            "command": " ".join(train)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="training rows file (gem-rag train --prepare-only)")
    parser.add_argument("--dev-rows", required=True, help="rows file whose held-out rows give development figures")
    parser.add_argument("--out", required=True, help="folder for the runs")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ",".join(VARIANTS))
    parser.add_argument("--json", required=True, help="collect every finished variant's figures here")
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    target = Path(args.json)
    figures = json.loads(target.read_text()) if target.exists() else {
        "what": __doc__.splitlines()[0], "command": "python -m benchmarks.training.cpu_levers " + " ".join(sys.argv[1:]),
        "common_flags": COMMON,
        "variants": {}}
    for name in names:
        if name in figures["variants"]:
            continue
        figures["variants"][name] = variant_figures(name, args)
        target.write_text(json.dumps(figures, indent=2) + "\n")
        logger.info("%s %s", name, json.dumps(figures["variants"][name]["development"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
