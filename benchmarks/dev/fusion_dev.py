"""Choose the hybrid fusion on a development set built from HELD-OUT training-corpus passages (not SQuAD).

Corpus = the validation rows of a `gem-rag train --prepare-only` rows file (passages the trainer never
used) plus seeded training passages as distractors. Two query kinds, scored separately and averaged:
- "cloze": a sentence removed from its passage (the passage is indexed without it), relevant = that passage;
- "heading": "<document title>: <section heading>", relevant = every passage of that section.
For every query the dense (GEM) and BM25 rankings (50 each) are computed once, then every fusion setting is
scored offline (nDCG@10). The best setting becomes the pipeline's default (gem_rag.rag.fusion).

Usage:
    python -m benchmarks.dev.fusion_dev --rows runs/gem/rows.jsonl.gz --rankings-cache runs/fusion_dev_rankings.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import command_line, machine, save_result, write_corpus_jsonl
from gem_rag import get_default_model
from gem_rag.eval.metrics import ndcg_at_k
from gem_rag.rag import RagPipeline
from gem_rag.rag.fusion import NORMALISATIONS, convex_fusion, reciprocal_rank_fusion
from gem_rag.rag.manifest import artefact_id

SENTENCE = re.compile(r"(?<=[a-z0-9)\]])[.!?]\s+(?=[A-Z])")
logger = logging.getLogger(__name__)
WEIGHTS = [round(w, 2) for w in np.arange(0.0, 1.01, 0.1)]


def build_dev_set(rows_path: str, distractors: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(passages [{id, title, text}], queries [{kind, query, relevant: set of passage ids}])."""
    with gzip.open(rows_path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    rng = random.Random(seed)
    val = [r for r in rows if r["split"] == "val"]
    passages, queries, sections = [], [], {}
    for n, row in enumerate(val):
        pid = f"val-{n}"
        sentences = [s for s in SENTENCE.split(row["text"]) if s.strip()]
        text = row["text"]
        if len(sentences) >= 3:
            pick = rng.randrange(len(sentences))
            if len(sentences[pick].split()) >= 6:
                queries.append({"kind": "cloze", "query": sentences[pick], "relevant": {pid}})
                text = " ".join(s for i, s in enumerate(sentences) if i != pick)
        passages.append({"id": pid, "title": row["title"], "text": text})
        if row["heading"] and row["heading"] != row["title"]:
            sections.setdefault((row["doc"], row["title"], row["heading"]), set()).add(pid)
    for (_, title, heading), pids in sections.items():
        queries.append({"kind": "heading", "query": f"{title}: {heading}", "relevant": pids})
    train = [r for r in rows if r["split"] == "train"]
    for n, row in enumerate(rng.sample(train, distractors)):
        passages.append({"id": f"train-{n}", "title": row["title"], "text": row["text"]})
    return passages, queries


def rankings_for(model, passages: list[dict], queries: list[dict], cache: Path | None) -> tuple[dict, list]:
    """({chunk id: passage id}, per query [dense ranking, BM25 ranking]) over the indexed ``passages``; saved to
    ``cache``, or read from it when it exists."""
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        return saved["chunk_doc"], saved["rankings"]
    rag = RagPipeline(model, retrieval="hybrid")
    with tempfile.TemporaryDirectory() as tmp:
        report = rag.index(write_corpus_jsonl(passages, Path(tmp) / "dev_passages.jsonl"))
    logger.info("indexed %d chunks of %d passages in %.0f s", report.chunks_added, len(passages), report.seconds)
    chunk_doc = {c.id: c.metadata.get("doc_id") for c in rag.store.all_chunks()}
    rankings = [rag.retriever.rankings(q["query"], rag.config.candidates) for q in queries]
    if cache is not None:
        cache.write_text(json.dumps({"chunk_doc": chunk_doc, "rankings": rankings}))
    return chunk_doc, rankings


def score_settings(queries: list[dict], chunk_doc: dict, rankings: list) -> dict:
    """Passage-level nDCG@10 per query kind (and their mean) for every fusion setting."""
    def score(fused_ids_for) -> dict:
        by_kind: dict[str, list[float]] = {}
        for q, (dense, lexical) in zip(queries, rankings):
            ranked = []
            for chunk in fused_ids_for(dense, lexical):
                doc = chunk_doc[chunk]
                if doc not in ranked:
                    ranked.append(doc)
            by_kind.setdefault(q["kind"], []).append(ndcg_at_k(ranked[:10], q["relevant"], 10))
        out = {kind: float(np.mean(v)) for kind, v in by_kind.items()}
        out["mean"] = float(np.mean(list(out.values())))
        return out

    settings = {"dense": score(lambda d, b: [i for i, _ in d]), "bm25": score(lambda d, b: [i for i, _ in b]),
                "rrf k=60": score(lambda d, b: [i for i, _ in reciprocal_rank_fusion([[i for i, _ in d], [i for i, _ in b]])])}
    for normalisation in NORMALISATIONS:
        for w in WEIGHTS:
            settings[f"{normalisation} w={w}"] = score(
                lambda d, b, w=w, n=normalisation: [i for i, _ in convex_fusion(d, b, w, n)])
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="rows file from `gem-rag train --prepare-only`")
    parser.add_argument("--distractors", type=int, default=1500, help="training passages added to the corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rankings-cache", default=None, help="save the rankings here, or reuse them if it exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    passages, queries = build_dev_set(args.rows, args.distractors, args.seed)
    model = get_default_model()
    chunk_doc, rankings = rankings_for(model, passages, queries, Path(args.rankings_cache) if args.rankings_cache else None)
    settings = score_settings(queries, chunk_doc, rankings)
    for name, s in settings.items():
        print(f"{name:14s} " + " ".join(f"{k} {v:.4f}" for k, v in s.items()))
    best = max(settings, key=lambda name: settings[name]["mean"])
    counts = {kind: sum(q["kind"] == kind for q in queries) for kind in ("cloze", "heading")}
    result = {"command": command_line("benchmarks.dev.fusion_dev", args), "machine": machine(args.threads),
              "model": model.name, "gem_artefact": artefact_id(model) or "none (base model)",
              "passages": len(passages), "queries": counts, "metric": "nDCG@10 (passage level)",
              "settings": settings, "best": best}
    print("best", best)
    logger.info("wrote %s", save_result("fusion_dev", result))


if __name__ == "__main__":
    main()
