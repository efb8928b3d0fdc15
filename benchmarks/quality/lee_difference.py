"""Is one embedder's Lee Spearman really above another's? A bootstrap over the 50 documents.

Resamples documents with replacement (pairs of two distinct drawn documents), recomputes both Spearman
correlations on the same resample and reports the difference's 95 % interval and the share of resamples where the
first embedder wins.

Usage:
    python -m benchmarks.quality.lee_difference --first gem --second base-mean --resamples 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from benchmarks.common import DATA_ROOT_HELP, data_root
from benchmarks.quality.retrieval_quality import PooledBase, load_lee
from gem_rag import GemModel


def embedder(name: str, gem_weights: str):
    if name == "gem":
        return GemModel.from_pretrained(gem_weights=gem_weights)
    if name in ("base-mean", "base-last"):
        return PooledBase(GemModel.from_pretrained(gem_weights=None), name.split("-")[1])
    raise SystemExit(f"unknown embedder {name!r}: gem, base-mean or base-last")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", default="gem")
    parser.add_argument("--second", default="base-mean")
    parser.add_argument("--gem", default="gem_rag/weights/smollm2-135m-gem", help="GEM artefact folder")
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pairs = load_lee(data_root(args.data_root))
    docs = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    where = {d: i for i, d in enumerate(docs)}
    human = np.full((len(docs), len(docs)), np.nan)
    for p in pairs:
        human[where[p["a"]], where[p["b"]]] = human[where[p["b"]], where[p["a"]]] = p["score"]
    cosines = []
    for name in (args.first, args.second):
        vectors = embedder(name, args.gem).embed(docs, kind="document")  # (50, dim), normalised
        cosines.append(vectors @ vectors.T)

    def correlations(sample: np.ndarray) -> tuple[float, float]:
        i, j = np.triu_indices(len(sample), k=1)
        a, b = sample[i], sample[j]
        keep = a != b  # a document drawn twice is not a pair
        return tuple(float(spearmanr(c[a[keep], b[keep]], human[a[keep], b[keep]]).statistic) for c in cosines)

    observed = correlations(np.arange(len(docs)))
    rng = np.random.default_rng(args.seed)
    differences = np.array([np.subtract(*correlations(rng.integers(0, len(docs), len(docs))))
                            for _ in range(args.resamples)])
    low, high = np.percentile(differences, [2.5, 97.5])
    result = {"first": args.first, "second": args.second, "gem_artefact": args.gem,
              "spearman": {args.first: round(observed[0], 4), args.second: round(observed[1], 4)},
              "difference": round(observed[0] - observed[1], 4), "interval_95": [round(low, 4), round(high, 4)],
              "first_wins_share": round(float(np.mean(differences > 0)), 3), "resamples": args.resamples,
              "command": "python -m benchmarks.quality.lee_difference " + " ".join(sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
