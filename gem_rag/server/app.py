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
from collections.abc import Iterable

from gem_rag.core.model import GemModel
from gem_rag.server.limits import ServerLimits

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
INSTALL_HINT = 'the HTTP server needs FastAPI and uvicorn: pip install "gem-rag[app]"'


def create_app(model: GemModel | None = None, pipeline=None, *, corpus_label: str = "",
               uploads_folder: Path | None = None, allow_local_paths: bool = False,
               allowed_hosts: Iterable[str] | None = None, api_key: str | None = None,
               limits: ServerLimits | None = None):
    """Build the app. ``model``: None = ``gem_rag.get_default_model()``; ``pipeline``: the RagPipeline to answer
    from (None = empty until documents are uploaded); ``uploads_folder``: where uploaded files are kept
    (None = uploads refused); ``allow_local_paths``: let the page index folders of the server machine;
    ``allowed_hosts``: Host names answered besides 127.0.0.1, localhost and ::1 (``"*"``: any; others get 421);
    ``api_key``: when given, every /v1 and /api request needs ``Authorization: Bearer <api_key>``;
    ``limits``: body sizes, upload quotas and token budgets (:class:`gem_rag.server.limits.ServerLimits`)."""
    try:
        from fastapi import FastAPI
        from fastapi.responses import FileResponse
        from fastapi.staticfiles import StaticFiles
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    from gem_rag import resolve_model
    from gem_rag.server import openai_routes, rag_routes
    from gem_rag.server.guard import LOOPBACK_HOSTS, RequestGuard
    from gem_rag.server.service import RagService

    model = resolve_model(model)
    if pipeline is not None and pipeline.model is not model:
        raise ValueError("pipeline.model must be the app's model: one model serves every endpoint")
    if api_key is not None and not api_key.strip():
        raise ValueError("api_key is empty: give a key, or None for no key")
    if isinstance(allowed_hosts, str):
        raise TypeError(f"allowed_hosts must be a list of host names, got the string {allowed_hosts!r}")
    limits = limits or ServerLimits()
    app = FastAPI(title="gem-rag", version="0.1.0",
                  description="One LLM that embeds and generates: OpenAI-compatible API, RAG answers, demo page.")
    app.state.model = model
    app.state.limits = limits
    app.state.rag = RagService(model, pipeline, corpus_label=corpus_label, uploads_folder=uploads_folder,
                               limits=limits)
    app.state.allow_local_paths = allow_local_paths
    app.add_middleware(RequestGuard, allowed_hosts=[*LOOPBACK_HOSTS, *(allowed_hosts or ())], api_key=api_key,
                       limits=limits)
    _add_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(rag_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def _add_error_handlers(app) -> None:
    """Every error in OpenAI's shape: bad bodies (422, or 400 for text that is not valid Unicode), FastAPI's
    HTTP errors (404, 405, 400 for a body it cannot parse), and 500 for a failure of the server itself."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from gem_rag.server.guard import error_body
    from gem_rag.server.schemas import INVALID_TEXT

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        problems = [f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in errors]
        first = errors[0] if errors else {"loc": ()}
        status = 400 if any(e["type"] == INVALID_TEXT for e in errors) else 422
        return JSONResponse(status_code=status, content={
            **error_body("invalid request body: " + "; ".join(problems), param=_location(first["loc"]) or None),
            "detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors],
        })

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body could not be parsed: send a JSON object encoded as UTF-8"
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
            exc.status_code, "invalid_request_error" if exc.status_code < 500 else "server_error")
        return JSONResponse(status_code=exc.status_code, content=error_body(message, kind),
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("Request %s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content=error_body(
            f"the server failed on this request ({type(exc).__name__}); see its log", "server_error"))


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
