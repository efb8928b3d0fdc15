"""Query latency of RagPipeline with and without document KV reuse, split into retrieval and generation, and
the agreement of their greedy answers (same retrieved chunks), on SQuAD dev questions over the saved index.

Per question the two pipelines run back to back (interleaved, so load changes hit both). The KV states of
the chunks the questions retrieve are computed before the timed pass (what index-time caching provides;
the per-chunk cost of computing a missing state is reported separately).

    flock /tmp/gem_rag_heavy.lock .venv/bin/python benchmarks/rag_latency.py --index /tmp/rag_squad_index
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rag_common import add_question_arguments, machine, questions_for, save_result

from gem_rag import get_default_model
from gem_rag.eval.metrics import squad_f1
from gem_rag.rag import RagPipeline
from gem_rag.rag.manifest import artefact_id
from gem_rag.rag.kv import compute_kv


def stats(values: list[float]) -> dict:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "mean": float(np.mean(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_question_arguments(parser)
    parser.add_argument("--kv-cache-mb", type=int, default=6000)
    parser.add_argument("--reuse-question", type=int, default=1)
    args = parser.parse_args()
    questions = questions_for(args)
    model = get_default_model()
    answering = {"answer_mode": args.answer_mode, "beams": args.beams}
    plain = RagPipeline.load(args.index, model=model, retrieval="hybrid", **answering)
    reuse = RagPipeline.load(args.index, model=model, retrieval="hybrid", kv_reuse=True, **answering,
                             kv_cache_bytes=args.kv_cache_mb * 2**20, reuse_question_kv=bool(args.reuse_question))
    warm_seconds, warm_tokens = 0.0, 0
    for q in questions:  # what index-time caching would have stored for these chunks
        for hit in reuse.retrieve(q["question"], k=args.k):
            if hit.chunk.id not in reuse.kv_cache:
                ids = model.tokenizer(hit.chunk.text, add_special_tokens=False).input_ids
                start = time.perf_counter()
                reuse.kv_cache.put(hit.chunk.id, compute_kv(model, ids))
                warm_seconds += time.perf_counter() - start
                warm_tokens += len(ids)
    print(f"precomputed {len(reuse.kv_cache)} chunk states ({reuse.kv_cache.nbytes / 2**20:.0f} MiB) in "
          f"{warm_seconds:.0f} s", flush=True)
    runs = {"plain": [], "kv_reuse": []}
    for i, q in enumerate(questions):
        for name, rag in (("plain", plain), ("kv_reuse", reuse)):
            a = rag.answer(q["question"], k=args.k, max_new_tokens=args.max_new_tokens)
            runs[name].append({"answer": a.answer, "raw": a.raw_answer, "f1": 100 * squad_f1(a.answer, q["answers"]),
                               "chunks": [c.chunk.id for c in a.chunks], **a.timings, **a.usage})
        if i % 10 == 9:
            print(f"{i + 1} questions", flush=True)
    result = {"command": "benchmarks/rag_latency.py " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                               for k, v in vars(args).items()),
              "machine": machine(), "model": model.name, "gem_artefact": artefact_id(model) or "none (base model)",
              "questions": len(questions), "kv_state_mib": reuse.kv_cache.nbytes / 2**20,
              "state_compute_s_per_1k_tokens": 1000 * warm_seconds / max(1, warm_tokens)}
    for name, rows in runs.items():
        result[name] = {key: stats([r[key] for r in rows]) for key in
                        ("retrieval_s", "prefill_s", "ttft_s", "generation_s", "total_s")}
        result[name]["f1"] = float(np.mean([r["f1"] for r in rows]))
        result[name]["prompt_tokens"] = float(np.mean([r["prompt_tokens"] for r in rows]))
        result[name]["completion_tokens"] = float(np.mean([r["completion_tokens"] for r in rows]))
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
    print("wrote", save_result("latency" + ("" if args.reuse_question else "_no_question_reuse"), result))


if __name__ == "__main__":
    main()
