"""Question -> passage retrieval on held-out training passages: the development task that chooses GEM artefacts.

The questions (``benchmarks/dev/data/question_passage_dev.jsonl``) were written by hand for held-out training
passages (documents never trained on); the corpus is every held-out passage of the rows file, so a question must
find its passage among other passages of its own document as well as of other documents, the shape of the SQuAD
retrieval task without reading it. Figures: recall@1, recall@10, MRR@10 and nDCG@10, overall and per source, with
the per-question nDCG@10 kept so that two artefacts can be compared question by question (``--baseline``: the
mean paired difference and its standard error). `GemModel.embed` (``--dtype``: the model's default, fp32 on a CPU
without bf16 units); no evaluation file is read.

Usage:
    python -m benchmarks.dev.question_dev --gem gem_rag/weights/smollm2-135m-gem \
        --rows runs/s10/rows_all_news.jsonl.gz --json runs/s11/qdev_shipped.json
    python -m benchmarks.dev.question_dev --gem runs/s11/cand-D/artefact --rows runs/s10/rows_all_news.jsonl.gz \
        --baseline runs/s11/qdev_shipped.json --json runs/s11/qdev_D.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from benchmarks.common import write_json
from gem_rag import GemModel
from gem_rag.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from gem_rag.training.data import read_rows

QUESTIONS = Path(__file__).parent / "data" / "question_passage_dev.jsonl"


def passage_key(text: str) -> str:
    """The key a question names its passage by: the first 12 hex digits of sha1 of the passage text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def question_figures(model: GemModel, passages: list, questions: list[dict]) -> dict:
    """Rank every held-out passage for every question; overall, per-source and per-question figures."""
    keys = [passage_key(p.text) for p in passages]
    scores = model.embed([q["question"] for q in questions], kind="query") @ model.embed([p.text for p in passages]).T
    per_question = []
    for question, row in zip(questions, scores):  # row: (passages,) cosine
        ranked = [keys[i] for i in np.argsort(-row)[:10]]
        gold = {question["passage"]}
        per_question.append({"id": question["id"], "source": question["source"],
                             "recall@1": recall_at_k(ranked, gold, 1), "recall@10": recall_at_k(ranked, gold, 10),
                             "mrr@10": mrr_at_k(ranked, gold, 10), "ndcg@10": round(ndcg_at_k(ranked, gold, 10), 4)})
    figures = {"all": mean_figures(per_question)}
    for source in sorted({q["source"] for q in questions}):
        figures[source] = mean_figures([f for f in per_question if f["source"] == source])
    return {"figures": figures, "passages": len(passages), "questions": len(questions), "per_question": per_question}


def mean_figures(per_question: list[dict]) -> dict:
    names = ("recall@1", "recall@10", "mrr@10", "ndcg@10")
    means = {name: round(float(np.mean([f[name] for f in per_question])), 4) for name in names}
    return {**means, "n": len(per_question)}


def paired_difference(result: dict, baseline: dict) -> dict:
    """Mean per-question nDCG@10 difference (result - baseline) and its standard error."""
    base = {f["id"]: f["ndcg@10"] for f in baseline["per_question"]}
    diffs = np.array([f["ndcg@10"] - base[f["id"]] for f in result["per_question"] if f["id"] in base])
    se = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    return {"ndcg@10_difference": round(float(diffs.mean()), 4), "standard_error": round(se, 4),
            "questions": len(diffs), "baseline": baseline.get("artefact")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gem", required=True, help="GEM artefact folder")
    parser.add_argument("--rows", required=True, help="rows file; its held-out ('val') rows are the corpus")
    parser.add_argument("--questions", default=str(QUESTIONS), help="question file (JSONL)")
    parser.add_argument("--baseline", default=None, help="this script's JSON for another artefact: paired difference")
    parser.add_argument("--dtype", default=None, help="model dtype (default: GemModel's, see core.model.default_dtype)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    passages = [r for r in read_rows(args.rows) if r.split == "val"]
    questions = [json.loads(line) for line in Path(args.questions).read_text(encoding="utf-8").splitlines() if line]
    known = {passage_key(p.text) for p in passages}
    missing = [q["id"] for q in questions if q["passage"] not in known]
    if missing:
        raise SystemExit(f"{len(missing)} questions name passages that {args.rows} does not hold as held-out rows "
                         f"(first: {missing[:3]}); build the rows as benchmarks/dev/data/README.md says")
    model = GemModel.from_pretrained(gem_weights=args.gem, dtype=args.dtype)
    result = {"artefact": args.gem, "rows": args.rows, "dtype": str(model.dtype).removeprefix("torch."),
              **question_figures(model, passages, questions)}
    if args.baseline:
        result["paired"] = paired_difference(result, json.loads(Path(args.baseline).read_text(encoding="utf-8")))
    print(json.dumps({k: v for k, v in result.items() if k != "per_question"}, indent=1), flush=True)
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
