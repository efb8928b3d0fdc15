"""Write generated questions for training passages, then a rows file whose rows carry them (`question` positives).

The model (the default SmolLM2-135M-Instruct unless --base-model) writes one question per picked passage; passages
are picked a document at a time per source (its first --per-doc). Resumable: rerun the same command and it
continues where it stopped.

    python scripts/write_questions.py --rows runs/s10/rows_all_news.jsonl.gz --out runs/q \
        --per-source wikipedia-sample=1000,python-3.11-docs=500,linux-6.1-docs=500,lee-background=400
    gem-rag train --rows runs/q/rows.jsonl.gz --positives ict,heading,question ...
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from gem_rag.core.model import GemModel
from gem_rag.training.data import read_rows, write_rows
from gem_rag.training.questions import pick_rows, read_questions, rows_with_questions, write_questions

logger = logging.getLogger("write_questions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="rows file from `gem-rag train --prepare-only`")
    parser.add_argument("--out", required=True, help="folder: questions.jsonl (resumable) and rows.jsonl.gz")
    parser.add_argument("--per-source", required=True, help="comma list of source=passages")
    parser.add_argument("--per-doc", type=int, default=8, help="passages per picked document (its first ones)")
    parser.add_argument("--batch", type=int, default=16, help="prompts generated together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-model", default=None, help="the question writer (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    budget = {name.strip(): int(count) for name, _, count in (p.partition("=") for p in args.per_source.split(","))}
    rows = read_rows(args.rows)
    unknown = set(budget) - {row.source for row in rows}
    if unknown:
        raise SystemExit(f"--per-source names {sorted(unknown)}, which no row of {args.rows} has")
    picked = pick_rows(rows, budget, per_doc=args.per_doc, seed=args.seed)
    model = GemModel.from_pretrained(args.base_model, gem_weights=None, threads=args.threads)
    out = Path(args.out)
    started = time.perf_counter()
    for done in write_questions(model, rows, picked, out / "questions.jsonl", batch=args.batch):
        logger.info("%d of %d passages (%.0f s)", done, len(picked), time.perf_counter() - started)
    questions = read_questions(out / "questions.jsonl")
    kept = rows_with_questions(rows, questions)
    write_rows(kept, out / "rows.jsonl.gz")
    asked = sum(bool(row.questions) for row in kept)
    stats = {"picked": len(picked), "with_question": asked, "rows_written": len(kept),
             "seconds": round(time.perf_counter() - started, 1), "command_args": vars(args)}
    (out / "questions_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    logger.info("%s", stats)


if __name__ == "__main__":
    main()
