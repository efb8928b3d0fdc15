"""Indexing throughput (chunks/s) on the bundled demo corpus: the single-process path (``RagPipeline.index``, then
``save``) against Ray Data (gem_rag.rag.ray_index, saving to its folder as it goes) with 1 and 2 actors, one torch
thread each, on a local Ray cluster of this machine. Every run starts from an empty index and builds the same
one (the chunk ids are checked); a Ray run's time includes starting its actors and loading their models, the
single process's does not (its model is loaded first, and that load is reported apart), so each Ray run also
gives its rate after its first write (``chunks_per_s_after_first_write``: the actors started and running).

Usage:
    python -m benchmarks.speed.ray_indexing                       # writes docs/ray_indexing.json
    python -m benchmarks.speed.ray_indexing --tiny --files 1      # a check of the script in seconds (no figures)
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, benchmark_arguments, command_line, machine, write_json
from gem_rag.rag.ingest import iter_files
from gem_rag.server.indexes import BUNDLED_CORPUS

logger = logging.getLogger(__name__)
TESTS = ROOT / "tests"


def arguments():
    parser = benchmark_arguments(__doc__, "runs/ray_indexing")
    parser.set_defaults(threads=1)
    parser.add_argument("--corpus", type=Path, default=BUNDLED_CORPUS, help="folder to index (default: the demo corpus)")
    parser.add_argument("--files", type=int, default=None, help="index only the first N files of the corpus")
    parser.add_argument("--actors", default="1,2", help="Ray actor counts to measure, comma-separated")
    parser.add_argument("--batch-size", type=int, default=32, help="chunks per actor call")
    parser.add_argument("--tiny", action="store_true",
                        help="the tests' tiny random model (tests/tiny_model.py) instead of the default: checks the "
                             "script, its figures mean nothing (written only with --json)")
    return parser.parse_args()


def load_models(tiny: bool):
    """(driver model, what each actor builds its model with: None for the default loader)."""
    if tiny:
        sys.path.insert(0, str(TESTS))
        from tiny_model import build_tiny_model

        return build_tiny_model(), build_tiny_model
    from gem_rag import get_default_model

    return get_default_model(), None


def single_run(model, files: list[Path], folder: Path) -> dict:
    from gem_rag.rag import RagPipeline

    started = time.perf_counter()
    rag = RagPipeline(model)
    report = rag.index(files)
    rag.save(folder)
    return timed(rag, report.chunks_added, time.perf_counter() - started)


def ray_run(model, factory, files: list[Path], folder: Path, actors: int, batch_size: int) -> dict:
    from gem_rag.rag import RagPipeline
    from gem_rag.rag.ray_index import index_with_ray

    writes: list[tuple[float, int]] = []  # (when, chunks) of every write: the rate once the actors run
    started = time.perf_counter()
    rag = RagPipeline(model)
    report = index_with_ray(rag, files, folder=folder, model_factory=factory, actors=actors, batch_size=batch_size,
                            flush_chunks=batch_size, on_write=lambda ids: writes.append((time.perf_counter(), len(ids))))
    seconds = time.perf_counter() - started
    after_first = writes[-1][0] - writes[0][0] if len(writes) > 1 else 0.0
    steady = round(sum(n for _, n in writes[1:]) / after_first, 2) if after_first else None
    return {"actors": actors, **timed(rag, report.chunks_added, seconds), "first_write_s": round(writes[0][0] - started, 2)
            if writes else None, "chunks_per_s_after_first_write": steady}


def timed(rag, chunks: int, seconds: float) -> dict:
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds, 2),
            "ids": sorted(rag.store.ids())}


def main() -> None:
    args = arguments()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from gem_rag.rag.ray_index import import_ray

    ray = import_ray()  # an ImportError with the install command when the ray extra is missing

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, factory = load_models(args.tiny)
    load_s = time.perf_counter() - started
    files = [file for file, reason in iter_files(args.corpus) if reason is None][:args.files]
    counts = [int(n) for n in args.actors.split(",")]
    cache = Path(args.cache)
    shutil.rmtree(cache, ignore_errors=True)
    single = single_run(model, files, cache / "single")
    runtime_env = {"env_vars": {"PYTHONPATH": str(TESTS)}} if args.tiny else None  # the actors import tiny_model
    ray.init(num_cpus=max(counts), include_dashboard=False, runtime_env=runtime_env)
    try:
        runs = [ray_run(model, factory, files, cache / f"ray-{n}", n, args.batch_size) for n in counts]
    finally:
        ray.shutdown()
    for run in runs:
        if run.pop("ids") != single["ids"]:
            raise RuntimeError(f"Ray with {run['actors']} actors built another index than the single process")
    single.pop("ids")
    result = {"command": command_line("benchmarks.speed.ray_indexing", args), "machine": machine(args.threads),
              "model": model.name, "corpus": str(args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT)
                                                 else args.corpus),
              "files": len(files), "model_load_s": round(load_s, 2), "torch_threads_per_actor": 1,
              "single_process": {"threads": args.threads, **single}, "ray": runs,
              "ray_version": ray.__version__, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    logger.info("single process: %s", result["single_process"])
    for run in runs:
        logger.info("ray: %s", run)
    if args.json or not args.tiny:
        logger.info("wrote %s", write_json(args.json or ROOT / "docs" / "ray_indexing.json", result))


if __name__ == "__main__":
    main()
