"""Answer latency of ``RagPipeline.answer`` (default settings) for the single-model pipeline and the two-model
one (all-MiniLM-L6-v2 embeds, the same SmolLM2 writes), interleaved question by question in one process so that
load changes hit both, over the development questions and the index of benchmarks/dev/reader_dev.py (built there
when missing). Reports p50 / p95 of the total time and of the first visible output (the sources event).

Usage:
    python -m benchmarks.speed.answer_latency --json docs/answer_latency.json
"""

from __future__ import annotations

import logging
import time

import numpy as np

from benchmarks.common import benchmark_arguments, machine, start, write_json
from benchmarks.dev.reader_dev import all_rows, build

logger = logging.getLogger(__name__)


def timed(pipeline, question: str) -> dict:
    """Seconds to the first event (the sources), to the supporting sentences and to the whole answer."""
    start = time.perf_counter()
    seen: dict[str, float] = {}
    for event in pipeline.stream_answer(question):
        seen.setdefault(event.type, time.perf_counter() - start)
    return {"first_output_s": seen["sources"], "support_s": seen.get("support", seen["done"]), "total_s": seen["done"]}


def percentiles(values: list[float]) -> dict:
    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/reader_dev")
    parser.add_argument("--k", type=int, default=None, help="chunks retrieved per question (default: the index's setting)")
    args = parser.parse_args()
    model = start(args)
    rows = all_rows()
    pipelines = {name: build(name, model, rows, args) for name in ("gem", "minilm")}
    for pipeline in pipelines.values():
        pipeline.answer("warm-up question?")
    runs: dict[str, list[dict]] = {name: [] for name in pipelines}
    for row in rows:
        for name, pipeline in pipelines.items():
            runs[name].append(timed(pipeline, row["question"]))
    report = {"what": "RagPipeline.answer latency, single model vs two models, interleaved",
              "command": "python -m benchmarks.speed.answer_latency" + (f" --k {args.k}" if args.k else ""), "machine": machine(args.threads),
              "questions": len(rows), "pipelines": {}}
    for name, timings in runs.items():
        report["pipelines"][name] = {key: percentiles([t[key] for t in timings])
                                     for key in ("first_output_s", "support_s", "total_s")}
        logger.info("%s: %s", name, report["pipelines"][name])
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
