"""Dense vs BM25 vs hybrid retrieval through RagPipeline on the SQuAD-derived task, plus indexing throughput.

Corpus = the 2,067 SQuAD v1.1 dev paragraphs (indexed from a .jsonl through the real ingestion path,
chunk_tokens=256 / overlap 32), 1,000 questions (seed 0), relevant = the question's paragraph.
GEM (single model) and all-MiniLM-L6-v2 (the two-model baseline's embedder) are run in the same process.

Usage:
    python -m benchmarks.quality.rag_retrieval --save runs/rag_squad_index
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (DATA_ROOT_HELP, command_line, machine, paragraph_ranking, save_result, squad,
                               write_corpus_jsonl)
from gem_rag import get_default_model
from gem_rag.eval.metrics import ndcg_at_k, recall_at_k
from gem_rag.rag import RagPipeline
from gem_rag.rag.manifest import artefact_id

logger = logging.getLogger(__name__)


def evaluate(rag: RagPipeline, questions: list[dict], mode: str) -> dict:
    rag.configure(retrieval=mode)
    ndcg, r1, r10, seconds = [], [], [], []
    for q in questions:
        start = time.perf_counter()
        hits = rag.retrieve(q["question"], k=30)
        seconds.append(time.perf_counter() - start)
        ranked = paragraph_ranking(hits, 10)
        relevant = {q["paragraph_id"]}
        ndcg.append(ndcg_at_k(ranked, relevant, 10))
        r1.append(recall_at_k(ranked, relevant, 1))
        r10.append(recall_at_k(ranked, relevant, 10))
    return {"ndcg@10": float(np.mean(ndcg)), "recall@1": float(np.mean(r1)), "recall@10": float(np.mean(r10)),
            "retrieve_p50_s": float(np.percentile(seconds, 50)), "retrieve_p95_s": float(np.percentile(seconds, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on the shared 2-core box)")
    parser.add_argument("--save", default=None, help="save the GEM index here (for rag_answer_quality, rag_latency)")
    parser.add_argument("--no-minilm", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    paragraphs, questions = squad(args.data_root, args.questions)
    model = get_default_model()
    result = {"command": command_line("benchmarks.quality.rag_retrieval", args), "machine": machine(args.threads),
              "model": model.name, "gem_artefact": artefact_id(model) or "none (base model)",
              "paragraphs": len(paragraphs), "questions": len(questions),
              "embedders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus_jsonl(paragraphs, Path(tmp) / "squad_paragraphs.jsonl")
        embedders = [("gem", None)]
        if not args.no_minilm:
            from gem_rag.baselines import EncoderEmbedder

            embedders.append(("minilm", EncoderEmbedder.minilm()))
        for name, embedder in embedders:
            rag = RagPipeline(model, embedder=embedder)
            report = rag.index(corpus)
            n_tokens = sum(model.count_tokens(c.text) for c in rag.store.all_chunks())
            entry = {"index_seconds": report.seconds, "chunks": report.chunks_added,
                     "chunks_per_s": report.chunks_added / report.seconds, "tokens_per_s": n_tokens / report.seconds}
            for mode in ("dense", "bm25", "hybrid"):
                if name != "gem" and mode == "bm25":
                    continue
                entry[mode] = evaluate(rag, questions, mode)
                logger.info("%s %s: %s", name, mode, {k: round(v, 4) for k, v in entry[mode].items()})
            result["embedders"][name] = entry
            logger.info("%s indexing: %s", name, {k: round(v, 2) for k, v in entry.items() if not isinstance(v, dict)})
            if name == "gem" and args.save:
                rag.save(args.save)
    logger.info("wrote %s", save_result("retrieval", result))


if __name__ == "__main__":
    main()
