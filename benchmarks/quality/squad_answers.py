"""Answers on SQuAD v1.1 dev (EVALUATION ONLY: reported, never tuned on): 100 questions (seed 0), hybrid
retrieval k=3 (``--k``) over all 2,067 paragraphs, for each reader asked: EM / token F1 of the answer, the gold answer
inside the answer, inside the first supporting sentence, and inside either.

The index is built once (GEM embeddings and sentence vectors) and kept under ``--cache``.

Usage:
    python -m benchmarks.quality.squad_answers --readers sentences,chunks --json docs/squad_answers.json
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SQUAD, benchmark_arguments, data_root, machine, start, write_json

logger = logging.getLogger(__name__)


def contains(text: str, answers: list[str]) -> bool:
    said = " " + " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split()) + " "
    return any(" " + " ".join(re.sub(r"[^\w\s]", " ", a.lower()).split()) + " " in said for a in answers)


def open_index(model, data, cache: Path):
    from gem_rag.rag import RagPipeline

    try:
        return RagPipeline.load(cache, model=model)
    except (OSError, ValueError):
        pipeline = RagPipeline(model)
        started = time.perf_counter()
        pipeline.add_texts([p.text for p in data.passages], [{"source": p.id, "title": p.title} for p in data.passages],
                           ids=[p.id for p in data.passages])
        logger.info("indexed %d paragraphs in %.0f s", len(data.passages), time.perf_counter() - started)
        pipeline.save(cache)
        return pipeline


def run_reader(pipeline, reader: str, questions, k: int = 3) -> dict:
    from gem_rag.eval.metrics import squad_exact_match, squad_f1

    pipeline.configure(reader=reader)
    rows = []
    for q in questions:
        answer = pipeline.answer(q.question, k=k)
        support = answer.supporting_sentences[0].text if answer.supporting_sentences else ""
        rows.append({"question": q.question, "gold": q.answers, "answer": answer.answer, "how": answer.how,
                     "abstained": answer.abstained, "support": support, "seconds": answer.timings["total_s"],
                     "gold_paragraph_retrieved": any(c.chunk.id in q.relevant for c in answer.chunks)})
    mean = lambda values: round(100 * float(np.mean(values)), 1)  # noqa: E731
    return {"em": mean([squad_exact_match(r["answer"], r["gold"]) for r in rows]),
            "f1": mean([squad_f1(r["answer"], r["gold"]) for r in rows]),
            "gold_in_answer": mean([contains(r["answer"], r["gold"]) for r in rows]),
            "gold_in_support": mean([contains(r["support"], r["gold"]) for r in rows]),
            "gold_in_answer_or_support": mean([contains(r["answer"] + " \n " + r["support"], r["gold"]) for r in rows]),
            "abstained": sum(r["abstained"] for r in rows),
            "abstained_on": [{"question": r["question"], "gold": r["gold"]} for r in rows if r["abstained"]],
            "gold_paragraph_retrieved": mean([r["gold_paragraph_retrieved"] for r in rows]),
            "p50_s": round(float(np.median([r["seconds"] for r in rows])), 3), "examples": rows[:12]}


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/squad_index")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--readers", default="sentences,chunks")
    parser.add_argument("--k", type=int, default=3, help="chunks retrieved per question (default 3, the issue's "
                                                           "setting; the pipeline's default is 5)")
    args = parser.parse_args()
    model = start(args)
    from gem_rag.eval.data import load_eval_data

    data = load_eval_data(data_root(args.data_root) / SQUAD, n=args.questions, seed=0)
    pipeline = open_index(model, data, Path(args.cache))
    report = {"what": "SQuAD v1.1 dev answers (evaluation only)", "machine": machine(args.threads),
              "command": f"python -m benchmarks.quality.squad_answers --readers {args.readers} --k {args.k}",
              "questions": len(data.questions), "readers": {}}
    for reader in args.readers.split(","):
        report["readers"][reader] = run_reader(pipeline, reader, data.questions, args.k)
        logger.info("%s: %s", reader, {k: v for k, v in report["readers"][reader].items() if k != "examples"})
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
