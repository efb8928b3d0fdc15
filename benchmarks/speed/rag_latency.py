"""Query latency of RagPipeline with and without document KV reuse, split into retrieval and generation, and
the agreement of their greedy answers (same retrieved chunks), on SQuAD dev questions over the saved index;
with --two-model-index also the two-model pipeline a user would build today (all-MiniLM-L6-v2 embeds, the
same LLM generates, same retrieval and answer settings; its index is built there on first use).

Per question the pipelines run back to back (interleaved, so load changes hit all). The KV states of
the chunks the questions retrieve are computed before the timed pass (what index-time caching provides;
the per-chunk cost of computing a missing state is reported separately).

Needs the index saved by benchmarks.quality.rag_retrieval (--save).

Usage:
    python -m benchmarks.speed.rag_latency --index runs/rag_squad_index --two-model-index runs/rag_squad_index_minilm
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (add_question_arguments, answering, command_line, machine, questions_for, save_result,
                               squad, write_corpus_jsonl)
from gem_rag import get_default_model
from gem_rag.eval.metrics import squad_f1
from gem_rag.rag import RagPipeline
from gem_rag.rag.manifest import artefact_id

logger = logging.getLogger(__name__)


def stats(values: list[float]) -> dict:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "mean": float(np.mean(values))}


def two_model_pipeline(args, model, settings: dict) -> RagPipeline:
    """MiniLM embeds, ``model`` generates: loaded from ``args.two_model_index``, indexed there when missing."""
    from gem_rag.baselines import EncoderEmbedder

    embedder = EncoderEmbedder.minilm()
    if (Path(args.two_model_index) / "CURRENT").exists():
        return RagPipeline.load(args.two_model_index, model=model, embedder=embedder, retrieval="hybrid", **settings)
    rag = RagPipeline(model, embedder=embedder, retrieval="hybrid", **settings)
    paragraphs, _ = squad(args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        logger.info("indexed for the two-model pipeline: %s",
                    rag.index(write_corpus_jsonl(paragraphs, Path(tmp) / "squad_paragraphs.jsonl")))
    rag.save(args.two_model_index)
    return rag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_question_arguments(parser)
    parser.add_argument("--kv-cache-mb", type=int, default=6000)
    parser.add_argument("--two-model-index", default=None, help="MiniLM index folder (built when missing)")
    args = parser.parse_args()
    questions = questions_for(args)
    model = get_default_model()
    settings = answering(args)
    plain = RagPipeline.load(args.index, model=model, retrieval="hybrid", **settings)
    reuse = RagPipeline.load(args.index, model=model, retrieval="hybrid", kv_reuse=True, **settings,
                             kv_cache_bytes=args.kv_cache_mb * 2**20)
    needed = {hit.chunk.id: hit.chunk.text for q in questions for hit in reuse.retrieve(q["question"], k=args.k)}
    start = time.perf_counter()  # what index-time caching would have stored for these chunks
    reuse.warm_kv_cache(list(needed))
    warm_seconds = time.perf_counter() - start
    warm_tokens = sum(len(model.tokenizer(text, add_special_tokens=False).input_ids) for text in needed.values())
    logger.info("precomputed %d chunk states (%.0f MiB) in %.0f s", len(reuse.kv_cache), reuse.kv_cache.nbytes / 2**20,
                warm_seconds)
    pipelines = [("plain", plain), ("kv_reuse", reuse)]
    if args.two_model_index:
        pipelines.append(("two_model", two_model_pipeline(args, model, settings)))
    runs = {name: [] for name, _ in pipelines}
    for i, q in enumerate(questions):
        for name, rag in pipelines:
            a = rag.answer(q["question"], k=args.k, max_new_tokens=args.max_new_tokens)
            runs[name].append({"answer": a.answer, "raw": a.raw_answer, "f1": 100 * squad_f1(a.answer, q["answers"]),
                               "chunks": [c.chunk.id for c in a.chunks], **a.timings, **a.usage})
        if i % 10 == 9:
            logger.info("%d questions", i + 1)
    result = {"command": command_line("benchmarks.speed.rag_latency", args), "machine": machine(args.threads),
              "model": model.name, "gem_artefact": artefact_id(model) or "none (base model)",
              "questions": len(questions), "kv_state_mib": reuse.kv_cache.nbytes / 2**20,
              "state_compute_s_per_1k_tokens": 1000 * warm_seconds / max(1, warm_tokens)}
    for name, rows in runs.items():
        result[name] = {key: stats([r[key] for r in rows]) for key in
                        ("retrieval_s", "prefill_s", "ttft_s", "generation_s", "total_s")}
        result[name]["f1"] = float(np.mean([r["f1"] for r in rows]))
        result[name]["prompt_tokens"] = float(np.mean([r["prompt_tokens"] for r in rows]))
        result[name]["completion_tokens"] = float(np.mean([r["completion_tokens"] for r in rows]))
    if "two_model" in runs:  # the single-model pipeline's p50 over the two-model pipeline's, same run
        result["plain_over_two_model_p50"] = {key: result["plain"][key]["p50"] / result["two_model"][key]["p50"]
                                              for key in ("retrieval_s", "generation_s", "total_s")}
    pairs = list(zip(runs["plain"], runs["kv_reuse"]))
    result["same_chunks"] = float(np.mean([a["chunks"] == b["chunks"] for a, b in pairs]))
    result["same_raw_answer"] = float(np.mean([a["raw"] == b["raw"] for a, b in pairs]))
    result["same_answer"] = float(np.mean([a["answer"] == b["answer"] for a, b in pairs]))
    result["differences"] = [{"question": q["question"], "plain": a["answer"], "kv_reuse": b["answer"]}
                             for q, (a, b) in zip(questions, pairs) if a["answer"] != b["answer"]][:20]
    for name in runs:
        print(name, {k: (round(v["p50"], 3), round(v["p95"], 3)) if isinstance(v, dict) else round(v, 2)
                     for k, v in result[name].items()})
    print("agreement", result["same_answer"], "same chunks", result["same_chunks"])
    logger.info("wrote %s", save_result("latency", result))


if __name__ == "__main__":
    main()
