"""Serve the HTTP API (OpenAI-compatible /v1/embeddings, /v1/chat/completions, /v1/models; /v1/rag/answer) and the page."""

from __future__ import annotations

import argparse

from gem_rag.server import options
from gem_rag.server.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_docs_argument(parser)
    parser.add_argument("--no-docs", action="store_true",
                        help="index nothing at start: answer from what the --chroma collection holds, or (without "
                             "--chroma) once documents are uploaded")
    common.add_store_arguments(parser)
    common.add_server_arguments(parser, default_port=8000)
    options.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from gem_rag.server.app import create_app, is_loopback
    from gem_rag.server.indexes import uploads_folder

    if args.no_docs and args.docs:
        raise SystemExit("--no-docs and --docs contradict each other: give one of them")
    app_options = options.app_options(args)  # refuses a non-loopback --host without an API key, before loading
    store = common.open_store(args)  # a wrong --chroma address, too
    model = common.load_model(args.backend)
    first_start = not args.no_docs and not common.index_is_cached(args.docs, model, store)
    if (args.no_docs and store is None) or first_start:
        pipeline, label = None, ""
    else:
        pipeline, label = common.open_docs(args.docs, model, store, no_docs=args.no_docs)
    app = create_app(model, pipeline, corpus_label=label, uploads_folder=uploads_folder(),
                     allow_local_paths=is_loopback(args.host), **app_options)
    if first_start:
        common.index_in_background(app, args.docs, model)
    sock = common.bind(args.host, args.port)
    url = common.url_of(sock)
    print(f"gem-rag API serving {model.name} at {url}v1 (OpenAI base_url), page at {url}, docs at {url}docs",
          flush=True)
    for line in options.startup_notes(app_options, url):
        print(line, flush=True)
    common.serve(app, sock)
    return 0
