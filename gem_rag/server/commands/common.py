"""Pieces shared by the app's subcommands: model loading with a message, index opening, running uvicorn."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

from gem_rag.core.model import BACKENDS
from gem_rag.server.indexes import BUNDLED_CORPUS, index_folder


def add_docs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--docs", type=Path, action="append", metavar="PATH",
                        help="file or folder of your documents (.txt .md .rst .html .jsonl) to answer from, "
                             "instead of the bundled demo corpus; repeat for several")


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


def open_docs(docs: list[Path] | None, model):
    """(pipeline, label) for --docs, or for the bundled corpus when it is not given; shows progress."""
    from gem_rag.server.indexes import open_index

    paths = docs or [BUNDLED_CORPUS]
    label = "the bundled demo corpus" if not docs else ", ".join(str(p) for p in paths)
    first_time = not index_folder(paths, model).exists()
    if first_time:
        print(f"Indexing {label} (first time only; later starts reuse the cache)…", file=sys.stderr)
    pipeline, report = open_index(paths, model, progress=first_time)
    changed = f", {report.chunks_added} chunks embedded in {report.seconds:.1f} s" if report.chunks_added else ""
    print(f"index ready: {len(pipeline.store)} chunks from {label}{changed}", file=sys.stderr)
    for path, reason in report.files_skipped[:5]:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return pipeline, label


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
