"""How retrieval cost grows with the corpus: 10^3 to 10^6 chunks, each size in a process of its own.

Stand-ins, said so in the results: embedding 10^6 chunks is impossible here (~4 days on this CPU), so the
vectors are synthetic: 576-dimensional unit vectors drawn around 2,000 random centres (clustered like real
embeddings), and a query is a stored vector plus noise (so it has true neighbours). The texts are the training
corpus's passages (../shared/data/corpus) cut into ~120-word chunks and repeated with light perturbation (10%
of the words dropped, a random number word added) until the size is reached.

Per size: FAISS exact (IndexFlatIP) and HNSW (M=32, efConstruction=80, efSearch=64): build seconds, query p50
(one query, k=10), recall@10 of HNSW against exact, bytes on disk, load seconds; lexical: gem_rag's BM25Index
(the one hybrid retrieval uses today), SQLite FTS5 (standard library, on disk) and bm25s: build seconds, memory
growth, query p50; hybrid: HNSW + the fastest lexical index + reciprocal rank fusion, query p50.

Usage:
    python -m benchmarks.scale.corpus_scale --json docs/scale.json --plot docs/scale.png
    python -m benchmarks.scale.corpus_scale --size 100000         # one size, figures to stdout
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import benchmark_arguments, data_root, machine, write_json

logger = logging.getLogger(__name__)
DIM, CENTRES, QUERIES, K = 576, 2000, 100, 10
SIZES = (1_000, 10_000, 100_000, 1_000_000)
CORPORA = ("wikipedia-sample.jsonl", "python-3.11-docs.jsonl", "linux-6.1-docs.jsonl")


def base_chunks(root: Path, words: int = 120) -> list[list[str]]:
    chunks = []
    for name in CORPORA:
        for line in open(root / "corpus" / name, encoding="utf-8"):
            text = json.loads(line)["text"].split()
            chunks += [text[i: i + words] for i in range(0, len(text) - words // 2, words)]
    return chunks


def synthetic_texts(base: list[list[str]], n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        words = base[i % len(base)]
        if i >= len(base):  # a repeat: drop 10% of the words, add a number word
            words = [w for w in words if rng.random() > 0.1] + [f"n{rng.randrange(10**6)}"]
        out.append(" ".join(words))
    return out


def synthetic_vectors(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    vectors = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        end = min(n, start + 100_000)
        vectors[start:end] = centres[rng.integers(0, CENTRES, end - start)] \
            + 0.8 * rng.standard_normal((end - start, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, n, QUERIES)] + 0.3 * rng.standard_normal((QUERIES, DIM)).astype(np.float32) / DIM ** 0.5
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vectors, queries.astype(np.float32)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def p50_ms(run, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        run(item)
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 2)


def dense(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> tuple[dict, object]:
    import faiss

    out: dict = {}
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    out["flat_build_s"] = round(time.perf_counter() - started, 2)
    out["flat_query_ms"] = p50_ms(lambda q: flat.search(q[None], K), queries)
    _, truth = flat.search(queries, K)
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(vectors)
    out["hnsw_build_s"] = round(time.perf_counter() - started, 1)
    hnsw.hnsw.efSearch = 64
    out["hnsw_query_ms"] = p50_ms(lambda q: hnsw.search(q[None], K), queries)
    _, found = hnsw.search(queries, K)
    out["hnsw_recall_at_10"] = round(float(np.mean([len(set(a) & set(b)) / K for a, b in zip(truth, found)])), 4)
    for name, index in (("flat", flat), ("hnsw", hnsw)):
        path = folder / f"{name}.faiss"
        faiss.write_index(index, str(path))
        out[f"{name}_disk_mb"] = round(path.stat().st_size / 2**20, 1)
        started = time.perf_counter()
        faiss.read_index(str(path))
        out[f"{name}_load_s"] = round(time.perf_counter() - started, 2)
        path.unlink()
    return out, hnsw


def lexical(texts: list[str], queries: list[str], folder: Path) -> tuple[dict, dict]:
    import bm25s

    from gem_rag.rag.bm25 import BM25Index

    out: dict = {}
    searchers = {}
    before, started = rss_mb(), time.perf_counter()
    ours = BM25Index(texts)
    ours.search("warm up", k=K)  # builds the matrix
    out["gem_bm25"] = {"build_s": round(time.perf_counter() - started, 1), "memory_mb": round(rss_mb() - before)}
    searchers["gem_bm25"] = lambda q: [i for i, _ in ours.search(q, k=K)]
    before, started = rss_mb(), time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    out["bm25s"] = {"build_s": round(time.perf_counter() - started, 1), "memory_mb": round(rss_mb() - before)}
    searchers["bm25s"] = lambda q: list(retriever.retrieve(bm25s.tokenize([q], stopwords="en", show_progress=False),
                                                           k=K, show_progress=False)[0][0])
    path = folder / "fts.sqlite"
    before, started = rss_mb(), time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE chunks USING fts5(text)")
    db.executemany("INSERT INTO chunks(text) VALUES (?)", ((t,) for t in texts))
    db.commit()
    out["sqlite_fts5"] = {"build_s": round(time.perf_counter() - started, 1), "memory_mb": round(rss_mb() - before),
                          "disk_mb": round(path.stat().st_size / 2**20, 1)}

    def fts(query: str):
        match = " OR ".join(f'"{w}"' for w in re.findall(r"\w+", query))
        rows = db.execute("SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY rank LIMIT ?", (match, K)).fetchall()
        return [rowid - 1 for (rowid,) in rows]

    searchers["sqlite_fts5"] = fts
    for name, search in searchers.items():
        out[name]["query_ms"] = p50_ms(search, queries)
    return out, searchers


def run_size(n: int, root: Path) -> dict:
    from gem_rag.rag.fusion import reciprocal_rank_fusion

    rng, np_rng = random.Random(n), np.random.default_rng(n)
    started = time.perf_counter()
    texts = synthetic_texts(base_chunks(root), n, rng)
    vectors, query_vectors = synthetic_vectors(n, np_rng)
    query_texts = [" ".join(rng.sample(texts[rng.randrange(n)].split(), 5)) for _ in range(QUERIES)]
    out: dict = {"chunks": n, "make_corpus_s": round(time.perf_counter() - started, 1),
                 "vectors_mb": round(vectors.nbytes / 2**20, 1)}
    with tempfile.TemporaryDirectory() as scratch:
        out["dense"], hnsw = dense(vectors, query_vectors, Path(scratch))
        out["lexical"], searchers = lexical(texts, query_texts, Path(scratch))
        fastest = min(out["lexical"], key=lambda name: out["lexical"][name]["query_ms"])

        def hybrid(i: int):
            _, ids = hnsw.search(query_vectors[i][None], K)
            lexical_ids = searchers[fastest](query_texts[i])
            return reciprocal_rank_fusion([[str(j) for j in ids[0]], [str(j) for j in lexical_ids]])

        out["hybrid"] = {"lexical": fastest, "query_ms": p50_ms(hybrid, range(QUERIES))}
    out["peak_rss_mb"] = round(rss_mb())
    return out


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results, key=int)
    n = [int(s) for s in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    series = {"FAISS exact": [results[s]["dense"]["flat_query_ms"] for s in sizes],
              "FAISS HNSW": [results[s]["dense"]["hnsw_query_ms"] for s in sizes],
              "hybrid (HNSW + lexical + RRF)": [results[s]["hybrid"]["query_ms"] for s in sizes]}
    for name in results[sizes[0]]["lexical"]:
        series[name] = [results[s]["lexical"][name]["query_ms"] for s in sizes]
    for name, values in series.items():
        axes[0].plot(n, values, marker="o", label=name)
    axes[0].axhline(200, color="grey", linestyle=":", label="200 ms")
    axes[0].set(xscale="log", yscale="log", xlabel="chunks", ylabel="query p50 (ms)", title="Query latency")
    for name in results[sizes[0]]["lexical"]:
        axes[1].plot(n, [results[s]["lexical"][name]["build_s"] for s in sizes], marker="o", label=name)
    axes[1].plot(n, [results[s]["dense"]["hnsw_build_s"] for s in sizes], marker="o", label="FAISS HNSW")
    axes[1].set(xscale="log", yscale="log", xlabel="chunks", ylabel="seconds", title="Build time")
    axes[2].plot(n, [results[s]["dense"]["hnsw_recall_at_10"] for s in sizes], marker="o", label="HNSW recall@10")
    axes[2].set(xscale="log", xlabel="chunks", ylim=(0.8, 1.0), title="HNSW recall@10 vs exact")
    for axis in axes:
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/scale")
    parser.add_argument("--size", type=int, help="one corpus size, in this process")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--plot", default=None, help="write the curves here (PNG)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.size:
        print(json.dumps(run_size(args.size, data_root(args.data_root))))
        return
    partial = Path(args.cache) / "partial.json"  # finished sizes: a killed run resumes
    results = json.loads(partial.read_text()) if partial.is_file() else {}
    for size in args.sizes.split(","):
        if size in results:
            continue
        logger.info("size %s ...", size)
        command = [sys.executable, "-m", "benchmarks.scale.corpus_scale", "--size", size]
        if args.data_root:
            command += ["--data-root", args.data_root]
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
                              env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if done.returncode:
            raise SystemExit(f"size {size} failed:\n{done.stderr[-3000:]}")
        results[size] = json.loads(done.stdout.strip().splitlines()[-1])
        write_json(partial, results)
        logger.info("%s: %s", size, results[size])
    if args.json:
        write_json(args.json, {"what": "retrieval cost against corpus size (synthetic vectors, perturbed real texts)",
                               "command": "python -m benchmarks.scale.corpus_scale --json docs/scale.json --plot docs/scale.png",
                               "machine": machine(args.threads), "sizes": results})
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
