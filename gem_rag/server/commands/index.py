"""Index a folder (or files) into the gem_rag cache or a Chroma collection (--chroma), so ask/demo/serve start at once."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path

from gem_rag.server.commands.common import add_backend_argument, add_store_arguments, open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", type=Path, nargs="*", metavar="PATH",  # "*": --ray ADDRESS may take the last one
                        help="files or folders (.txt .md .rst .html .jsonl), searched recursively")
    add_backend_argument(parser)
    add_store_arguments(parser)
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="embed on Ray actors (pip install \"gem-rag[ray]\"): on a local Ray cluster started on "
                             "this machine, or on the cluster at ADDRESS (e.g. ray://head:10001 or auto); put it "
                             "after the paths. A killed run, run again, resumes")
    parser.add_argument("--ray-actors", type=int, default=1, metavar="N",
                        help="with --ray: actors embedding at once, one model each (default: 1)")
    parser.add_argument("--ray-batch-size", type=int, default=32, metavar="N",
                        help="with --ray: chunks each actor embeds per call (default: 32)")
    parser.add_argument("--ray-gpus", type=float, default=0, metavar="G",
                        help="with --ray: GPUs per actor (default: 0, one CPU each)")


def run(args: argparse.Namespace) -> int:
    from gem_rag.rag.storage import RagIndexError
    from gem_rag.server.commands.common import load_model
    from gem_rag.server.indexes import index_folder, open_index, open_shared_index

    problem = _argument_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    store = open_store(args)  # a wrong --chroma address fails before the model loads
    model = load_model(args.backend)
    opener = open_index if store is None else functools.partial(open_shared_index, store)
    try:
        if args.ray is None:
            pipeline, report = opener(args.paths, model, progress=True)
        else:
            pipeline, report = _index_on_ray(args, model, opener)
    except (FileNotFoundError, RagIndexError) as err:  # no such path; the cache is being updated elsewhere
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{report.files_indexed} files indexed, {report.chunks_added} chunks added, "
          f"{report.chunks_unchanged} unchanged, {report.chunks_removed} removed in {report.seconds:.1f} s; "
          f"{len(pipeline.store)} chunks in total")
    for path, reason in report.files_skipped:
        print(f"skipped {path}: {reason}")
    if store is None:
        print(f"index saved in {index_folder(args.paths, model)}")
    else:
        print(f"index stored in {store.where}")
    return 0


def _argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the paths or the --ray options, or None."""
    if args.ray and Path(args.ray).exists():
        return (f"--ray took {args.ray!r} as the Ray cluster's address: put the paths first "
                f"(gem-rag index {args.ray} --ray), or give an address after --ray")
    if not args.paths:
        return "give the files or folders to index: gem-rag index PATH [PATH ...]"
    if args.ray is None:
        return None
    if args.ray_actors < 1 or args.ray_batch_size < 1 or args.ray_gpus < 0:
        return "--ray-actors and --ray-batch-size must be at least 1, --ray-gpus at least 0"
    try:
        from gem_rag.rag.ray_index import import_ray

        import_ray()
    except ImportError as err:
        return str(err)
    return None


def _index_on_ray(args: argparse.Namespace, model, open_index):
    """open_index with the embedding on Ray: the cluster at args.ray, else a local one (shut down after)."""
    from gem_rag.rag.ray_index import import_ray

    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.ray or None)  # None: start a local cluster on this machine
    logging.getLogger("gem_rag.rag.ray_index").setLevel(logging.INFO)  # its progress lines
    try:
        return open_index(args.paths, model, ray={"actors": args.ray_actors, "batch_size": args.ray_batch_size,
                                                  "num_cpus": 0 if args.ray_gpus else 1, "num_gpus": args.ray_gpus})
    finally:
        if started:
            ray.shutdown()
