"""Pieces shared by the app's subcommands: model loading with a message, index opening, running uvicorn."""

from __future__ import annotations

import argparse
import re
import socket
import sys
import time
from pathlib import Path

from gem_rag.core.model import BACKENDS
from gem_rag.server.indexes import BUNDLED_CORPUS, index_folder

DEFAULT_COLLECTION = "gem_rag"
COLLECTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*[A-Za-z0-9]")  # Chroma's rule
LONGEST_COLLECTION = 63 - len("__units")  # Chroma takes 63 characters; the units' collection adds a suffix


def add_docs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--docs", type=Path, action="append", metavar="PATH",
                        help="file or folder of your documents (.txt .md .rst .html .jsonl) to answer from, "
                             "instead of the bundled demo corpus; repeat for several")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chroma", type=chroma_address, default=None, metavar="HOST:PORT",
                        help="keep the index in a collection of the Chroma server at HOST:PORT (chroma run, from "
                             "the chroma extra) instead of this machine's cache: every process given the same "
                             "server and collection answers from that one index")
    parser.add_argument("--collection", type=collection_name, default=None, metavar="NAME",
                        help=f"with --chroma: the collection (default: {DEFAULT_COLLECTION})")


def chroma_address(text: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` (``[::1]:8000`` for IPv6); argparse's error naming the form otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT of a Chroma server: give e.g. "
                                         f"--chroma 127.0.0.1:8001 (chroma run --port 8001 listens there)")
    return host, int(port)


def collection_name(text: str) -> str:
    ipv4 = re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", text)
    if ipv4 or not (3 <= len(text) <= LONGEST_COLLECTION and COLLECTION_NAME.fullmatch(text)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Chroma collection name: use 3 to {LONGEST_COLLECTION} "
                                         f"letters, digits, '_', '-' or single '.', starting and ending with a "
                                         f"letter or digit, and not an IPv4 address")
    return text


def open_store(args: argparse.Namespace):
    """The ChromaStore that --chroma/--collection name, or None (the index lives in this machine's cache).
    Opened before the model loads, so a wrong address fails at once (ChromaUnavailableError names the fix)."""
    if args.chroma is None:
        if args.collection is not None:
            raise SystemExit("--collection names a collection of a Chroma server: give the server too, "
                             "with --chroma HOST:PORT")
        return None
    from gem_rag.server.indexes import chroma_store

    try:
        return chroma_store(args.chroma, args.collection or DEFAULT_COLLECTION)
    except ImportError as err:
        raise SystemExit(f"--chroma needs chromadb: {err}") from None


def add_server_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    add_backend_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port (default: {default_port}; 0 = any free port)")


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="engine of the model (default: $GEM_RAG_BACKEND, else torch); llamacpp needs "
                             "the extra: bash scripts/setup_llamacpp.sh")


def load_model(backend: str | None = None):
    """The shared default model, on ``backend`` when given (else $GEM_RAG_BACKEND, else torch)."""
    from gem_rag import GemModel, get_default_model, set_default_model

    started = time.perf_counter()
    if backend is not None:
        set_default_model(GemModel.from_pretrained(backend=backend))
    model = get_default_model()
    print(f"model {model.name} loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return model


def index_is_cached(docs: list[Path] | None, model, store=None) -> bool:
    """False when --docs (or the bundled corpus) has no index in this machine's cache yet (nor a Chroma store)."""
    return store is not None or index_folder(_docs_paths(docs), model).exists()


def index_in_background(app, docs: list[Path] | None, model) -> None:
    """Build the cached index of --docs (or the bundled corpus) while ``app`` serves: the page shows the
    progress, the OpenAI API answers at once, and questions wait until the index is there."""
    from gem_rag.server.indexes import open_index

    paths, label = _docs_paths(docs), _docs_label(docs)
    print(f"Indexing {label} in the background (first time only; later starts reuse the cache): the page shows "
          f"its progress and answers once it is done", file=sys.stderr, flush=True)

    def build(progress):
        pipeline, report = open_index(paths, model, on_progress=progress)
        _print_ready(pipeline, report, label)
        return pipeline, report

    app.state.rag.start_opening(build, label)


def open_docs(docs: list[Path] | None, model, store=None, *, no_docs: bool = False):
    """(pipeline, label) for --docs, or for the bundled corpus when it is not given (``no_docs``: neither, on
    a Chroma ``store`` only); in this machine's cache, or in ``store`` (from :func:`open_store`) when given."""
    from gem_rag.server.indexes import open_index, open_shared_index

    paths = [] if no_docs else _docs_paths(docs)
    label = _docs_label(docs)
    if store is not None:
        where = store.where
        if paths:
            print(f"Indexing {label} into {where} (files it holds already are skipped)…", file=sys.stderr)
        pipeline, report = open_shared_index(store, paths, model, progress=bool(paths) and not len(store))
        label = f"{label} in {where}" if paths else where
    else:
        first_time = not index_folder(paths, model).exists()
        if first_time:
            print(f"Indexing {label} (first time only; later starts reuse the cache)…", file=sys.stderr)
        pipeline, report = open_index(paths, model, progress=first_time)
    _print_ready(pipeline, report, label)
    return pipeline, label


def _docs_paths(docs: list[Path] | None) -> list[Path]:
    return docs or [BUNDLED_CORPUS]


def _docs_label(docs: list[Path] | None) -> str:
    return "the bundled demo corpus" if not docs else ", ".join(str(p) for p in docs)


def _print_ready(pipeline, report, label: str) -> None:
    """The "index ready" line on stderr, and the first files skipped."""
    changed = f", {report.chunks_added} chunks added in {report.seconds:.1f} s" if report.chunks_added else ""
    print(f"index ready: {len(pipeline.store)} chunks from {label}{changed}", file=sys.stderr, flush=True)
    for path, reason in report.files_skipped[:5]:
        print(f"  skipped {path}: {reason}", file=sys.stderr)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 = a free one), so the printed URL is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port} ({err.strerror}); pick another one with --port") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(app, sock: socket.socket) -> None:
    """Run uvicorn on the bound socket until Ctrl-C."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[sock])
