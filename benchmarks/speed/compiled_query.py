"""Query-embedding latency: `GemModel.embed(question, kind="query")` eager against the same call with the decoder
compiled by `torch.compile` (inductor, dynamic shapes), the same eager call on the base weights (no GEM adapter: what
the adapter's LoRA products cost, and what merging them into the weights would save), and all-MiniLM-L6-v2's query
embedding, over the development questions of benchmarks/dev/reader_dev.py, one question at a time (what an answer
pays before it can search). Reports p50 seconds, the compile warm-up (the first three questions) and how far the
vectors move.

Usage:
    python -m benchmarks.speed.compiled_query --json docs/compiled_query.json
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from benchmarks.common import benchmark_arguments, machine, start, write_json
from benchmarks.dev.reader_dev import all_rows
from gem_rag import GemModel
from gem_rag.baselines import EncoderEmbedder

WARM_UP = 3


def timed(embed: Callable[[str], np.ndarray], questions: list[str]) -> tuple[np.ndarray, float]:
    """(n, dim) vectors and the p50 seconds of one call."""
    vectors, seconds = [], []
    for question in questions:
        began = time.perf_counter()
        vectors.append(embed(question))
        seconds.append(time.perf_counter() - began)
    return np.stack(vectors), statistics.median(seconds)


def main() -> None:
    args = benchmark_arguments(__doc__, "runs/reader_dev").parse_args()
    model = start(args)
    minilm = EncoderEmbedder.minilm()
    questions = [row["question"] for row in all_rows()]

    def gem(q: str) -> np.ndarray:
        return model.embed(q, kind="query")

    def mini(q: str) -> np.ndarray:
        return minilm.embed(q, kind="query")

    base = GemModel.from_pretrained(gem_weights=None, dtype=model.dtype)  # the same decoder without the adapter

    def plain(q: str) -> np.ndarray:
        return base.embed(q, kind="query")

    for embed in (gem, mini, plain):
        timed(embed, questions[:WARM_UP])
    eager, eager_s = timed(gem, questions)
    _, minilm_s = timed(mini, questions)
    _, base_s = timed(plain, questions)
    model.compile_embedding_pass(dynamic=True)
    began = time.perf_counter()
    timed(gem, questions[:WARM_UP])
    warm_up_s = time.perf_counter() - began
    compiled, compiled_s = timed(gem, questions)
    report = {"what": "query-embedding latency, eager vs torch.compile, and MiniLM", "command":
              "python -m benchmarks.speed.compiled_query", "machine": {**machine(args.threads), "dtype": str(model.dtype)},
              "questions": len(questions), "p50_s": {"gem_eager": round(eager_s, 4), "gem_compiled": round(compiled_s, 4),
                                                     "gem_base_weights_eager": round(base_s, 4),
                                                     "minilm": round(minilm_s, 4)},
              "compile_warm_up_s": round(warm_up_s, 1),
              "ratios": {"compiled_over_eager_speed": round(eager_s / compiled_s, 2),
                         "gem_compiled_over_minilm_time": round(compiled_s / minilm_s, 2)},
              "compiled_vs_eager": {"max_abs_diff": float(np.abs(compiled - eager).max()),
                                    "min_cosine": float((compiled * eager).sum(axis=1).min())}}
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
