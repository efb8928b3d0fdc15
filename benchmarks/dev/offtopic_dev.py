"""The off-topic threshold (RagPipeline min_dense_score) on the development sets: the best dense hit's cosine of
each dev question set against each dev index (its own corpus: on-topic; the other: off-topic), and, for the
record only (never for the choice), the lowest best hit of the SQuAD questions the answer benchmark asks.

Needs the dev indexes rag_prompt_dev.py --retrieve-from builds (runs/reader_dev_index_wikipedia, _howto).

    .venv/bin/python benchmarks/offtopic_dev.py [--squad-index runs/rag_squad_index_new]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gem_rag import get_default_model
from gem_rag.rag import RagPipeline
from gem_rag.rag.pipeline import DEFAULT_MIN_DENSE_SCORE
from rag_common import DEFAULT_SQUAD, load_squad, machine, sample_questions, save_result
from rag_prompt_dev import DEV
from reader_dev_howto_items import ITEMS as HOWTO_ITEMS


def best_hits(rag: RagPipeline, questions: list[str]) -> np.ndarray:
    return np.array([rag.store.search(rag.embed_query(q), 1)[0][1] for q in questions])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad-index", default=None, help="also report the SQuAD questions' lowest best hit")
    parser.add_argument("--squad", default=DEFAULT_SQUAD)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = get_default_model()
    questions = {"wikipedia": [q for _, q, _ in DEV], "howto": [q for _, _, q, _ in HOWTO_ITEMS]}
    result = {"command": f"benchmarks/offtopic_dev.py --threads {args.threads}"
                         + (f" --squad-index {args.squad_index}" if args.squad_index else ""),
              "machine": machine(), "model": model.name, "threshold": DEFAULT_MIN_DENSE_SCORE, "pairs": {}}
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
        _, squad = load_squad(args.squad)
        rag = RagPipeline.load(args.squad_index, model=model)
        hits = best_hits(rag, [q["question"] for q in sample_questions(squad, 100, seed=0)])
        result["squad_100_min_best_hit"] = float(hits.min())
        print("SQuAD 100 questions: lowest best hit", round(float(hits.min()), 3))
    print("wrote", save_result("offtopic_dev", result))


if __name__ == "__main__":
    main()
