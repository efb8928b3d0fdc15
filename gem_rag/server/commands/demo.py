"""Run the demo: serve the question page on 127.0.0.1 at once, indexing the bundled corpus (or --docs) in the
background on the first start (later starts load the cached index)."""

from __future__ import annotations

import argparse
import sys

from gem_rag.server import options
from gem_rag.server.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_docs_argument(parser)
    common.add_store_arguments(parser)
    common.add_server_arguments(parser, default_port=8000)
    options.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from gem_rag.server.app import create_app, is_loopback
    from gem_rag.server.indexes import uploads_folder

    app_options = options.app_options(args)  # refuses a non-loopback --host without an API key, before loading
    store = common.open_store(args)  # a wrong --chroma address fails before the model loads
    model = common.load_model(args.backend)
    first_start = not common.index_is_cached(args.docs, model, store)
    pipeline, label = (None, "") if first_start else common.open_docs(args.docs, model, store)
    app = create_app(model, pipeline, corpus_label=label, uploads_folder=uploads_folder(),
                     allow_local_paths=is_loopback(args.host), **app_options)
    if first_start:
        common.index_in_background(app, args.docs, model)
    sock = common.bind(args.host, args.port)
    print(f"gem-rag demo ready: open {common.url_of(sock)} in your browser (Ctrl-C stops it)", flush=True)
    for line in options.startup_notes(app_options, common.url_of(sock)):
        print(line, flush=True)
    sys.stderr.flush()
    common.serve(app, sock)
    return 0
