"""The off-topic threshold (RagPipeline min_dense_score) on the development sets: the best dense hit's cosine of
each dev question set against each dev index (its own corpus: on-topic; the other: off-topic), and, for the
record only (never for the choice), the lowest best hit of the SQuAD questions the answer benchmark asks.

Needs the dev indexes ``benchmarks.dev.rag_prompt_dev --retrieve-from`` builds (runs/reader_dev_index_wikipedia,
_howto); the questions are those of benchmarks/dev/data/prompt_dev_wikipedia.jsonl and prompt_dev_howto.jsonl.

Usage:
    python -m benchmarks.dev.offtopic_dev [--squad-index runs/rag_squad_index_new]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from benchmarks.common import DATA_ROOT_HELP, machine, save_result, squad
from benchmarks.dev.rag_prompt_dev import dev_items
from gem_rag import get_default_model
from gem_rag.rag import RagConfig, RagPipeline

logger = logging.getLogger(__name__)
DEFAULT_MIN_DENSE_SCORE = RagConfig().min_dense_score  # the pipeline's off-topic threshold


def best_hits(rag: RagPipeline, questions: list[str]) -> np.ndarray:
    return np.array([rag.store.search(rag.embed_query(q), 1)[0][1] for q in questions])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad-index", default=None, help="also report the SQuAD questions' lowest best hit")
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP + "; SQuAD is read from it")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    model = get_default_model()
    questions = {name: [q for _, q, _ in dev_items(name)] for name in ("wikipedia", "howto")}
    result = {"command": f"python -m benchmarks.dev.offtopic_dev --threads {args.threads}"
                         + (f" --squad-index {args.squad_index}" if args.squad_index else ""),
              "machine": machine(args.threads), "model": model.name, "threshold": DEFAULT_MIN_DENSE_SCORE, "pairs": {}}
    for corpus in questions:
        rag = RagPipeline.load(f"runs/reader_dev_index_{corpus}", model=model)
        for asked, items in questions.items():
            hits = best_hits(rag, items)
            entry = {"on_topic": asked == corpus, "questions": len(hits), "min": float(hits.min()),
                     "median": float(np.median(hits)), "max": float(hits.max()),
                     "below_threshold": float((hits < DEFAULT_MIN_DENSE_SCORE).mean())}
            result["pairs"][f"{asked} questions -> {corpus} passages"] = entry
            print(asked, "->", corpus, {k: round(v, 3) if isinstance(v, float) else v for k, v in entry.items()})
    if args.squad_index:
        _, squad_questions = squad(args.data_root, 100, seed=0)
        rag = RagPipeline.load(args.squad_index, model=model)
        hits = best_hits(rag, [q["question"] for q in squad_questions])
        result["squad_100_min_best_hit"] = float(hits.min())
        print("SQuAD 100 questions: lowest best hit", round(float(hits.min()), 3))
    logger.info("wrote %s", save_result("offtopic_dev", result))


if __name__ == "__main__":
    main()
