"""Where the right supporting sentence ranks among the reader's candidates, and whether the LLM's likelihoods
re-rank it higher, on the answerable development questions (benchmarks/dev/data/reader_dev.jsonl).

For each answerable question: the default pipeline's chunks and the sentence reader's ranked candidates; the
rank of the first candidate that holds a support string (the reader's pick is rank 1); and, for the top
``--top`` candidates, the mean log-probability of the question's tokens given the sentence (the generation
weights, teacher-forced: "which sentence makes this question likely", as in UPR, Sachan et al. 2022), the
sentence's per-token log-probability gain as the question's answer over a neutral prompt (:func:`answer_pmi`) and
the rank of the candidate's chunk. The grid reports support@1 when the reader's score gets ``weight`` times one of
the two log-probabilities added (``upr``, ``answer_pmi``) or ``weight`` per chunk rank below the first subtracted (``chunk_rank``), for every
weight, with the choice made on one half of the questions and measured on the other (two folds by id hash).
The on-topic unanswerable questions' candidates are kept too (with their texts), for abstention rules; the
figures above count the answerable questions only.

Usage:
    python -m benchmarks.dev.support_rank --json docs/support_rank.json
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from benchmarks.common import benchmark_arguments, machine, start, write_json
from benchmarks.dev.reader_dev import all_rows, build, normalised

logger = logging.getLogger(__name__)
WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
ANSWER_TEMPLATE = "Question: {question}\nAnswer:"
NEUTRAL_PROMPT = "Answer:"


def question_logprob(model, prompt_template: str, sentences: list[str], question: str) -> list[float]:
    """Mean log-probability of the question's tokens after each sentence (one batched teacher-forced pass)."""
    prompts = [prompt_template.format(sentence=" ".join(s.split())) for s in sentences]
    return [float(np.mean(lp)) for lp in model.score(prompts, [" " + question] * len(prompts))]


def answer_pmi(model, question: str, sentences: list[str]) -> list[float]:
    """Mean per-token log-probability gain of each sentence as the answer to ``question`` over the same sentence
    after a neutral prompt (pointwise mutual information with the question: which sentence does the question make
    likelier, length and fluency cancelled)."""
    answers = [" " + " ".join(s.split()) for s in sentences]
    asked = model.score([ANSWER_TEMPLATE.format(question=question)] * len(answers), answers)
    neutral = model.score([NEUTRAL_PROMPT] * len(answers), answers)
    return [float(np.mean(a - n)) for a, n in zip(asked, neutral)]


def support_at_1(rows: list[dict], weight: float, feature: str = "upr") -> float:
    hits = 0
    for row in rows:
        if feature == "upr":
            extra = weight * np.asarray(row["question_logprob"])
        elif feature == "answer_pmi":
            extra = weight * np.asarray(row["answer_pmi"])
        else:  # chunk_rank: the candidate's chunk ranked below the first costs weight per place
            extra = -weight * (np.asarray(row["chunk_rank"]) - 1)
        combined = np.asarray(row["reader_scores"]) + extra
        hits += bool(row["correct"][int(np.argmax(combined))]) if row["correct"] else 0
    return hits / max(1, len(rows))


def cross_validated(folds: list[list[dict]], chosen_on: int, feature: str) -> dict:
    """The weight chosen on one fold (ties: the smaller) and support@1 with it on the other."""
    other = folds[1 - chosen_on]
    best = max(WEIGHTS, key=lambda w: (support_at_1(folds[chosen_on], w, feature), -w))
    return {"chosen_on_fold": chosen_on, "weight": best, "support_at_1_other_fold": round(support_at_1(other, best, feature), 3),
            "reader_alone_other_fold": round(support_at_1(other, 0.0), 3), "other_fold_n": len(other)}


def fold(row_id: str) -> int:
    return int(hashlib.sha1(row_id.encode()).hexdigest(), 16) % 2


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/reader_dev")
    parser.add_argument("--top", type=int, default=8, help="candidates re-ranked per question")
    parser.add_argument("--template", default="Passage: {sentence}\nA question this passage answers:",
                        help="the prompt before the question; {sentence} is the candidate")
    args = parser.parse_args()
    model = start(args)
    rows = [r for r in all_rows() if not r["abstain"] or r["kind"] == "unanswerable"]
    pipeline = build("gem", model, rows, args)
    reader = pipeline.sentence_reader
    found = []
    for row in rows:
        chunks = pipeline.retrieve(row["question"])
        candidates = reader.candidates(row["question"], chunks, pipeline.embed_query(row["question"]))[: args.top]
        texts = [c.sentence.text for c in candidates]
        correct = [any(normalised(s) in normalised(t) for s in row["support"]) for t in texts]
        found.append({"id": row["id"], "kind": row["kind"], "reader_scores": [round(c.sentence.score, 4) for c in candidates],
                      "question_logprob": [round(v, 4) for v in question_logprob(model, args.template, texts, row["question"])] if texts else [],
                      "answer_pmi": [round(v, 4) for v in answer_pmi(model, row["question"], texts)] if texts else [],
                      "chunk_rank": [c.chunk.rank for c in candidates], "correct": correct, "texts": texts, "first_correct_rank": correct.index(True) + 1 if any(correct) else None})
    found_all, found = found, [r for r in found if r["kind"] != "unanswerable"]
    ranks = [r["first_correct_rank"] for r in found]
    summary = {"questions": len(found), f"support_in_top_{args.top}": round(sum(r is not None for r in ranks) / len(found), 3),
               "support_at_1_reader": round(sum(r == 1 for r in ranks) / len(found), 3),
               "grid": {}, "cross_validated": {}}
    folds = [[r for r in found if fold(r["id"]) == f] for f in (0, 1)]
    for feature in ("upr", "answer_pmi", "chunk_rank"):
        summary["grid"][feature] = {str(w): round(support_at_1(found, w, feature), 3) for w in WEIGHTS}
        summary["cross_validated"][feature] = [cross_validated(folds, chosen_on, feature) for chosen_on in (0, 1)]
    logger.info("%s", summary)
    if args.json:
        write_json(args.json, {"what": "rank of the right supporting sentence; question-likelihood re-ranking",
                               "command": "python -m benchmarks.dev.support_rank --top " + str(args.top), "template": args.template,
                               "machine": machine(args.threads), "summary": summary, "questions": found_all})


if __name__ == "__main__":
    main()
