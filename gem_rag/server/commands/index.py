"""Index a folder (or files) into the gem_rag cache, so `gem-rag ask/demo/serve --docs PATH` start at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gem_rag.server.commands.common import add_backend_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                        help="files or folders (.txt .md .rst .html .jsonl), searched recursively")
    add_backend_argument(parser)


def run(args: argparse.Namespace) -> int:
    from gem_rag.rag.storage import RagIndexError
    from gem_rag.server.commands.common import load_model
    from gem_rag.server.indexes import index_folder, open_index

    model = load_model(args.backend)
    try:
        pipeline, report = open_index(args.paths, model, progress=True)
    except (FileNotFoundError, RagIndexError) as err:  # no such path; the cache is being updated elsewhere
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{report.files_indexed} files indexed, {report.chunks_added} chunks added, "
          f"{report.chunks_unchanged} unchanged, {report.chunks_removed} removed in {report.seconds:.1f} s; "
          f"{len(pipeline.store)} chunks in total")
    for path, reason in report.files_skipped:
        print(f"skipped {path}: {reason}")
    print(f"index saved in {index_folder(args.paths, model)}")
    return 0
