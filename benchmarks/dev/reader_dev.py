"""The reader on the development questions (benchmarks/dev/data/reader_dev.jsonl): answers a person accepts,
their supporting sentences, and latency, for the single-model pipeline and, in the same run, others.

The index holds the bundled demo corpus plus the extra training-corpus pages the questions name (read from the
data root), built once per embedder and cached under ``--cache``. Scores per question:
- answer correct: the answer contains an accepted string, or the pipeline abstains where it should;
- support correct: the first supporting sentence contains a support string (answerable questions);
- latency of ``RagPipeline.answer`` (the index warm, one question at a time).

``--questions`` asks another file of the same form over the same index: ``reader_fresh.jsonl`` holds questions no
reader rule was chosen on, for reporting only.

Usage:
    python -m benchmarks.dev.reader_dev --pipelines gem,gem-chunks,minilm --json docs/reader_dev.json
    python -m benchmarks.dev.reader_dev --questions benchmarks/dev/data/reader_fresh.jsonl --json docs/reader_fresh.json
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import time
from pathlib import Path

from benchmarks.common import benchmark_arguments, data_root, machine, start, write_json

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = Path(__file__).resolve().parent / "data" / "reader_dev.jsonl"
DEMO_TEXTS = ROOT / "gem_rag" / "data" / "demo_corpus" / "texts"
# pipeline name -> (embedder, RagPipeline settings)
PIPELINES = {"gem": ("gem", {}), "gem-chunks": ("gem", {"reader": "chunks"}),
             "minilm": ("minilm", {}), "minilm-chunks": ("minilm", {"reader": "chunks"})}


def all_rows(path: Path = QUESTIONS) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[`*]", "", text).lower().split())


def extra_documents(rows: list[dict], root: Path, folder: Path) -> Path:
    """Write the extra pages the questions use as files under ``folder`` (once); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {(r["corpus_file"], r["doc"]) for r in rows if r["corpus"] == "extra"}
    for corpus_file in sorted({c for c, _ in wanted}):
        suffix = ".md" if "wiki" in corpus_file else ".rst"
        with open(root / "corpus" / corpus_file, encoding="utf-8") as lines:
            for line in lines:
                doc = json.loads(line)
                if (corpus_file, doc["id"]) in wanted:
                    name = re.sub(r"[^\w.-]+", "_", doc["id"]) + suffix
                    (folder / name).write_text(f"# {doc['title']}\n\n{doc['text']}", encoding="utf-8")
    return folder


def build(name: str, model, rows: list[dict], args):
    from gem_rag.rag import RagPipeline
    from gem_rag.server.indexes import bundled_seed

    embedder_name, settings = PIPELINES[name]
    embedder = None
    if embedder_name == "minilm":
        from gem_rag.baselines import EncoderEmbedder

        embedder = EncoderEmbedder.minilm()
    folder = Path(args.cache) / f"index-{embedder_name}"
    try:
        pipeline = RagPipeline.load(folder, model=model, embedder=embedder, **settings)
    except (OSError, ValueError):
        pipeline = RagPipeline(model, embedder=embedder, **settings)
        extra = extra_documents(all_rows(), data_root(args.data_root), Path(args.cache) / "extra")
        started = time.perf_counter()
        seed = bundled_seed([DEMO_TEXTS]) if embedder is None else None  # the demo texts' shipped GEM vectors
        report = pipeline.index([DEMO_TEXTS, extra], seed=seed)
        logger.info("%s: indexed %d chunks in %.0f s", name, report.chunks_added, time.perf_counter() - started)
        pipeline.save(folder)
    if getattr(args, "k", None):  # an index saved with another k keeps it unless told
        pipeline.configure(k=args.k)
    return pipeline


def score(row: dict, answer) -> dict:
    said = normalised(answer.answer)
    if row["abstain"]:
        correct = answer.abstained
    else:
        correct = not answer.abstained and any(normalised(a) in said for a in row["accepted"])
    first = answer.supporting_sentences[0].text if answer.supporting_sentences else ""
    support = bool(first) and any(normalised(s) in normalised(first) for s in row["support"])
    return {"id": row["id"], "kind": row["kind"], "answer": answer.answer, "how": answer.how,
            "abstained": answer.abstained, "correct": correct, "support_correct": support if not row["abstain"] else None,
            "support": first, "seconds": answer.timings["total_s"], "first_output_s": answer.timings["ttft_s"],
            "completion_tokens": answer.usage.get("completion_tokens", 0), "raw_answer": answer.raw_answer}


def summarise(results: list[dict]) -> dict:
    answerable = [r for r in results if r["support_correct"] is not None]
    correct = [r for r in answerable if r["correct"]]
    seconds = sorted(r["seconds"] for r in results)
    by_kind = {}
    for kind in sorted({r["kind"] for r in results}):
        rows = [r for r in results if r["kind"] == kind]
        by_kind[kind] = {"n": len(rows), "correct": round(sum(r["correct"] for r in rows) / len(rows), 3)}
    return {"questions": len(results), "correct": round(sum(r["correct"] for r in results) / len(results), 3),
            "support_correct_of_correct": round(sum(r["support_correct"] for r in correct) / max(1, len(correct)), 3),
            "support_correct": round(sum(r["support_correct"] for r in answerable) / max(1, len(answerable)), 3),
            "p50_s": round(statistics.median(seconds), 3),
            "p95_s": round(seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 3),
            "by_kind": by_kind}


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/reader_dev")
    parser.add_argument("--pipelines", default="gem,minilm", help=f"comma list of {sorted(PIPELINES)}")
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (a quick check)")
    parser.add_argument("--k", type=int, default=None, help="chunks retrieved per question (default: the index's setting)")
    parser.add_argument("--gem", default=None, help="GEM artefact folder (default: the shipped one); give it its own "
                                                    "--cache")
    parser.add_argument("--questions", default=str(QUESTIONS), help="questions file (default: the development set)")
    args = parser.parse_args()
    model = start(args)
    rows = all_rows(args.questions)[: args.limit or None]
    report = {"what": f"reader on {Path(args.questions).name}", "command": "python -m benchmarks.dev.reader_dev "
              f"--pipelines {args.pipelines}"
              + (f" --questions {args.questions}" if args.questions != str(QUESTIONS) else "")
              + (f" --dtype {args.dtype}" if args.dtype else "") + (f" --k {args.k}" if args.k else ""),
              "machine": {**machine(args.threads), "dtype": str(getattr(model, "dtype", "llama.cpp"))}, "pipelines": {}}
    for name in args.pipelines.split(","):
        pipeline = build(name, model, rows, args)
        pipeline.answer("warm-up question?")
        results = [score(row, pipeline.answer(row["question"])) for row in rows]
        report["pipelines"][name] = {"summary": summarise(results), "questions": results}
        logger.info("%s: %s", name, json.dumps(report["pipelines"][name]["summary"]))
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
