"""Answer quality of RagPipeline's default prompt on SQuAD v1.1 dev (EVALUATION ONLY): 100 questions, seed 0,
greedy, EM / token F1 with the oracle paragraph as context and with retrieved context (k=3, hybrid).

Needs the index saved by benchmarks.quality.rag_retrieval (--save). Reference: the naive prompt scored 17.3
(oracle) / 13.7 (retrieved) F1.

Usage:
    python -m benchmarks.quality.rag_answer_quality --index runs/rag_squad_index
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from benchmarks.common import (add_question_arguments, answering, command_line, machine, paragraph_ranking,
                               questions_for, save_result)
from gem_rag import get_default_model
from gem_rag.eval.metrics import squad_exact_match, squad_f1
from gem_rag.rag import RagPipeline
from gem_rag.rag.manifest import artefact_id

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_question_arguments(parser)
    args = parser.parse_args()
    questions = questions_for(args)
    model = get_default_model()
    rag = RagPipeline.load(args.index, model=model, retrieval="hybrid", **answering(args))
    rows = []
    start = time.perf_counter()
    for i, q in enumerate(questions):
        oracle = rag.answer_from_chunks(q["question"], [q["context"]], max_new_tokens=args.max_new_tokens)
        retrieved = rag.answer(q["question"], k=args.k, max_new_tokens=args.max_new_tokens)
        rows.append({"question": q["question"], "gold": q["answers"], "oracle": oracle.answer,
                     "oracle_raw": oracle.raw_answer, "retrieved": retrieved.answer,
                     "retrieved_raw": retrieved.raw_answer, "oracle_abstained": oracle.abstained,
                     "retrieved_abstained": retrieved.abstained,
                     "gold_in_context": q["paragraph_id"] in paragraph_ranking(retrieved.chunks, args.k)})
        if i % 10 == 9:
            logger.info("%d questions, %.0f s", i + 1, time.perf_counter() - start)

    def score(key: str, raw: bool = False) -> dict:
        field = key + ("_raw" if raw else "")
        return {"f1": 100 * float(np.mean([squad_f1(r[field], r["gold"]) for r in rows])),
                "em": 100 * float(np.mean([squad_exact_match(r[field], r["gold"]) for r in rows])),
                "abstained": int(sum(r[key + "_abstained"] for r in rows))}

    result = {"command": command_line("benchmarks.quality.rag_answer_quality", args), "machine": machine(args.threads),
              "model": model.name, "gem_artefact": artefact_id(model) or "none (base model)",
              "questions": len(rows), "oracle": score("oracle"), "retrieved": score("retrieved"),
              "oracle_without_postprocessing": score("oracle", raw=True),
              "retrieved_without_postprocessing": score("retrieved", raw=True),
              "gold_paragraph_retrieved": float(np.mean([r["gold_in_context"] for r in rows])),
              "seconds": time.perf_counter() - start, "examples": rows[:15]}
    for key in ("oracle", "retrieved", "oracle_without_postprocessing", "retrieved_without_postprocessing"):
        print(key, {k: round(v, 1) for k, v in result[key].items()})
    logger.info("wrote %s", save_result("answer_quality", result))


if __name__ == "__main__":
    main()
