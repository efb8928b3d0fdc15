"""Retrieval quality of the two backends on the full SQuAD task (1,000 SQuAD v1.1 dev questions, seed 0, against
all 2,067 paragraphs; the task of benchmarks.quality.retrieval_quality): nDCG@10 and friends per backend, and how
close the two backends' vectors are. Evaluation data only: this reports, it tunes nothing.

Each backend embeds in a process of its own; its vectors are kept under --cache, so a killed run resumes.

Usage:
    python -m benchmarks.quality.backend_retrieval --json docs/backend_retrieval.json
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import benchmark_arguments, data_root, machine, write_json

logger = logging.getLogger(__name__)
BACKENDS = {"torch": {}, "llamacpp-f16": {"backend": "llamacpp", "gguf_type": "f16"}}


def embed(name: str, args) -> None:
    import torch

    from benchmarks.quality.retrieval_quality import squad_task
    from gem_rag import GemModel

    torch.set_num_threads(args.threads)
    paragraphs, questions = squad_task(data_root(args.data_root), 1000)
    model = GemModel.from_pretrained(threads=args.threads, **BACKENDS[name])
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}-queries.npy", model.embed([q for q, _, _ in questions], kind="query"))
    np.save(folder / f"{name}-paragraphs.npy", model.embed(paragraphs))


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/backend_retrieval")
    parser.add_argument("--embed", choices=sorted(BACKENDS), help="embed with one backend, in this process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.embed:
        embed(args.embed, args)
        return
    from benchmarks.quality.retrieval_quality import retrieval_metrics, squad_task

    folder = Path(args.cache)
    for name in BACKENDS:
        if not (folder / f"{name}-paragraphs.npy").is_file():
            logger.info("embedding with %s ...", name)
            command = [sys.executable, "-m", "benchmarks.quality.backend_retrieval", "--embed", name,
                       "--threads", str(args.threads), "--cache", args.cache]
            if args.data_root:
                command += ["--data-root", args.data_root]
            subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[2])
    _, questions = squad_task(data_root(args.data_root), 1000)
    relevant = [index for _, index, _ in questions]
    report = {"what": "SQuAD full task (1,000 questions, 2,067 paragraphs), GEM dense retrieval per backend",
              "command": "python -m benchmarks.quality.backend_retrieval", "machine": machine(args.threads),
              "backends": {}}
    vectors = {name: (np.load(folder / f"{name}-queries.npy"), np.load(folder / f"{name}-paragraphs.npy"))
               for name in BACKENDS}
    for name, (queries, paragraphs) in vectors.items():
        ranked = np.argsort(-(queries @ paragraphs.T), axis=1)[:, :10].tolist()
        report["backends"][name] = retrieval_metrics(ranked, relevant)
        logger.info("%s: %s", name, report["backends"][name])
    (q_a, p_a), (q_b, p_b) = vectors["torch"], vectors["llamacpp-f16"]
    cos = np.concatenate([(q_a * q_b).sum(axis=1), (p_a * p_b).sum(axis=1)])
    report["cosine_torch_vs_llamacpp"] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
    report["ndcg_difference"] = round(report["backends"]["llamacpp-f16"]["ndcg@10"] - report["backends"]["torch"]["ndcg@10"], 4)
    logger.info("%s", report)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
