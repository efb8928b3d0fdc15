"""The FastAPI app: the demo page, the OpenAI-compatible API and the RAG API, all on ONE shared model.

Example:
    >>> from gem_rag.server import create_app
    >>> app = create_app()                      # the process default model, no documents yet
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from gem_rag.core.model import GemModel

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
INSTALL_HINT = 'the HTTP server needs FastAPI and uvicorn: pip install "gem-rag[app]"'


def create_app(model: GemModel | None = None, pipeline=None, *, corpus_label: str = "",
               uploads_folder: Path | None = None, allow_local_paths: bool = False):
    """Build the app. ``model``: None = ``gem_rag.get_default_model()``; ``pipeline``: the RagPipeline to answer
    from (None = empty until documents are uploaded); ``uploads_folder``: where uploaded files are kept
    (None = uploads refused); ``allow_local_paths``: let the page index folders of the server machine."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, JSONResponse
        from fastapi.staticfiles import StaticFiles
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    from gem_rag import resolve_model
    from gem_rag.server import openai_routes, rag_routes
    from gem_rag.server.service import RagService

    model = resolve_model(model)
    if pipeline is not None and pipeline.model is not model:
        raise ValueError("pipeline.model must be the app's model: one model serves every endpoint")
    app = FastAPI(title="gem-rag", version="0.1.0",
                  description="One LLM that embeds and generates: OpenAI-compatible API, RAG answers, demo page.")
    app.state.model = model
    app.state.rag = RagService(model, pipeline, corpus_label=corpus_label, uploads_folder=uploads_folder)
    app.state.allow_local_paths = allow_local_paths

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        first = exc.errors()[0] if exc.errors() else {"loc": ()}
        return JSONResponse(status_code=422, content={
            "error": {"message": "invalid request body: " + "; ".join(problems), "type": "invalid_request_error",
                      "param": _location(first["loc"]) or None, "code": None},
            "detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()],
        })

    app.include_router(openai_routes.router)
    app.include_router(rag_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def _location(loc) -> str:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
