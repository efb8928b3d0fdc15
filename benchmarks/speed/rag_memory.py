"""Peak RSS of the whole RAG pipeline (indexing + answering) in a fresh process per configuration:
single model (GEM embeds and generates) vs the two-model pipeline a user would build today
(all-MiniLM-L6-v2 embeddings + SmolLM2 generation), and SmolLM2 alone (generation only).

Each configuration runs ``--repeats`` times, interleaved (fresh process each time), and the median is
compared: a single run's peak moves by 60-70 MB from one run to the next. The running peak is also read
after loading the models, after indexing and after answering, to show which phase sets it.

Usage:
    python -m benchmarks.speed.rag_memory --paragraphs 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import DATA_ROOT_HELP, ROOT, command_line, machine, save_result, squad, write_corpus_jsonl

logger = logging.getLogger(__name__)
CONFIGS = ("llm_only", "single", "single_kv_reuse", "two_model")


def worker(config: str, root: str | None, n_paragraphs: int, n_questions: int, threads: int) -> dict:
    import torch

    from gem_rag import get_default_model
    from gem_rag.rag import RagPipeline

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    torch.set_num_threads(threads)
    paragraphs, questions = squad(root, n_questions, paragraphs=n_paragraphs)
    model = get_default_model()
    phases = {}
    if config == "llm_only":
        rag = RagPipeline(model)
        phases["loaded"] = peak_mb()
        for q in questions:
            rag.answer_from_chunks(q["question"], [q["context"]], max_new_tokens=32)
    else:
        embedder = None
        if config == "two_model":
            from gem_rag.baselines import EncoderEmbedder

            embedder = EncoderEmbedder.minilm()
            embedder.embed(["load the encoder"], kind="document")
        rag = RagPipeline(model, embedder=embedder, kv_reuse=config == "single_kv_reuse")
        phases["loaded"] = peak_mb()
        with tempfile.TemporaryDirectory() as tmp:
            rag.index(write_corpus_jsonl(paragraphs, Path(tmp) / "corpus.jsonl"))
        phases["indexed"] = peak_mb()
        for q in questions:
            rag.answer(q["question"], k=3, max_new_tokens=32)
    phases["answered"] = peak_mb()
    return {"config": config, "peak_rss_mb": peak_mb(), "peak_after_phase_mb": phases, "chunks": len(rag.store)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_root, args.paragraphs, args.questions, args.threads)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = {"command": command_line("benchmarks.speed.rag_memory", args, skip=("worker",)),
              "machine": machine(args.threads), "paragraphs": args.paragraphs, "questions": args.questions, "runs": {}}
    configs = args.configs.split(",")
    for repeat in range(args.repeats):
        for config in configs:
            command = [sys.executable, "-m", "benchmarks.speed.rag_memory", "--worker", config, "--paragraphs",
                       str(args.paragraphs), "--questions", str(args.questions), "--threads", str(args.threads)]
            command += ["--data-root", args.data_root] if args.data_root else []
            out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            run = json.loads(out.stdout.strip().splitlines()[-1])
            result["runs"].setdefault(config, []).append(run)
            logger.info("%d %s %s", repeat, config, run)
    result["median_peak_rss_mb"] = {c: statistics.median(r["peak_rss_mb"] for r in result["runs"][c]) for c in configs}
    medians = result["median_peak_rss_mb"]
    if "single" in medians and "two_model" in medians:
        result["single_over_two_model"] = medians["single"] / medians["two_model"]
        result["single_below_two_model_in_runs"] = sum(
            s["peak_rss_mb"] < t["peak_rss_mb"] for s, t in zip(result["runs"]["single"], result["runs"]["two_model"]))
    print("median peak RSS (MB)", medians)
    logger.info("wrote %s", save_result("memory", result))


if __name__ == "__main__":
    main()
