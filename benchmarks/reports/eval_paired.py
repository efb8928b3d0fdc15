"""Paired differences between two pipelines of one `gem-rag eval --compare` run, question by question, with 95 %
bootstrap intervals (2,000 resamples of the questions, seed 0): the table under "SQuAD v1.1 dev, 200 questions"
in docs/evaluation.md.

Usage:
    python -m benchmarks.reports.eval_paired runs/s13/eval_squad200/records.jsonl [--a gem --b minilm]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESAMPLES = 2000
# row label -> the metric's value for one record (None: the question does not count for it)
METRICS: dict[str, Callable[[dict], float | None]] = {
    "MRR@10": lambda r: r["mrr_at_10"],
    "Recall@k": lambda r: r["recall_at_k"],
    "Token F1": lambda r: r["f1"],
    "Gold answer inside the answer": lambda r: float(any(" ".join(g.lower().split()) in " ".join(r["answer"].lower().split())
                                                         for g in r["gold_answers"])),
    "Abstained": lambda r: float(r["consistency"]["abstained"]),
    "Label consistent": lambda r: float(r["consistency"]["label"] == "consistent"),
    "Judge top-1 = retriever top-1": lambda r: None if r["consistency"].get("judge_top1") is None
    else float(r["consistency"]["judge_top1"]),
    "Judge Spearman": lambda r: r["consistency"].get("judge_agreement"),
}


def paired_rows(records: list[dict], a: str, b: str) -> list[dict]:
    by_pipeline: dict[str, dict[str, dict]] = {a: {}, b: {}}
    for record in records:
        if record["pipeline"] in by_pipeline:
            by_pipeline[record["pipeline"]][record["id"]] = record
    ids = sorted(set(by_pipeline[a]) & set(by_pipeline[b]))
    rng = np.random.default_rng(0)
    rows = []
    for name, value in METRICS.items():
        pairs = [(value(by_pipeline[a][i]), value(by_pipeline[b][i])) for i in ids]
        kept = np.array([(x, y) for x, y in pairs if x is not None and y is not None], dtype=float)  # (n, 2)
        if not len(kept):
            continue
        difference = kept[:, 0] - kept[:, 1]
        means = difference[rng.integers(0, len(difference), (RESAMPLES, len(difference)))].mean(axis=1)
        rows.append({"metric": name, "n": len(kept), a: kept[:, 0].mean(), b: kept[:, 1].mean(),
                     "difference": difference.mean(), "low": np.percentile(means, 2.5), "high": np.percentile(means, 97.5)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=Path, help="records.jsonl of a gem-rag eval --compare run")
    parser.add_argument("--a", default="gem")
    parser.add_argument("--b", default="minilm")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.records.read_text().splitlines() if line.strip()]
    print(f"| metric (paired questions) | {args.a} | {args.b} | {args.a} - {args.b} | 95% interval |")
    print("|---|---:|---:|---:|---|")
    for row in paired_rows(records, args.a, args.b):
        print(f"| {row['metric']} (n={row['n']}) | {row[args.a]:.3f} | {row[args.b]:.3f} | {row['difference']:+.3f} "
              f"| [{row['low']:+.3f}, {row['high']:+.3f}] |")


if __name__ == "__main__":
    main()
