"""RAG endpoints: POST /v1/rag/answer (JSON or SSE), and the page's /api/status, /api/upload, /api/index-folder."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gem_rag.server.limits import OverBudget
from gem_rag.server.openai_routes import openai_error
from gem_rag.server.schemas import FolderRequest, RagAnswerRequest, UploadRequest
from gem_rag.server.service import IndexBusyError, RagService, UploadQuotaError
from gem_rag.server.sse import sse_done, sse_event

logger = logging.getLogger(__name__)
router = APIRouter()


def _service(request: Request) -> RagService:
    return request.app.state.rag


@router.post("/v1/rag/answer")
def rag_answer(body: RagAnswerRequest, request: Request):
    service = _service(request)
    try:
        service.check_budget(body.question, body.max_tokens)
    except OverBudget as err:
        return openai_error(400, str(err), param=err.param)
    generation = {"temperature": body.temperature}
    if body.max_tokens is not None:
        generation["max_new_tokens"] = body.max_tokens
    answer_id = f"rag-{uuid.uuid4().hex[:24]}"
    try:
        if body.stream:
            events = service.stream_answer(body.question, k=body.k, **generation)
            return StreamingResponse(_answer_frames(events, answer_id), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return {"id": answer_id, "object": "rag.answer", **service.answer(body.question, k=body.k, **generation)}
    except IndexBusyError as err:
        return openai_error(503, str(err), kind="index_not_ready")


def _answer_frames(events: Iterator[dict], answer_id: str) -> Iterator[str]:
    try:
        for event in events:
            yield sse_event({"id": answer_id, **event})
    except Exception as err:  # the response has started: report the failure as an event
        logger.exception("Streaming an answer failed")
        yield sse_event({"id": answer_id, "type": "error", "message": f"answering failed: {err}"})
    yield sse_done()


@router.get("/api/status")
def status(request: Request) -> dict:
    return {**_service(request).status(), "folder_indexing": request.app.state.allow_local_paths}


@router.post("/api/upload", status_code=202)
def upload(body: UploadRequest, request: Request):
    service = _service(request)
    try:
        service.add_uploads([(f.name, f.text) for f in body.files])
    except IndexBusyError as err:
        return openai_error(409, str(err), kind="index_busy")
    except UploadQuotaError as err:
        return openai_error(413, str(err), kind="upload_too_large")
    except RuntimeError as err:
        return openai_error(403, str(err), kind="forbidden")
    return service.status()


@router.post("/api/index-folder", status_code=202)
def index_folder(body: FolderRequest, request: Request):
    if not request.app.state.allow_local_paths:
        return openai_error(403, "indexing server folders is only allowed when the server listens on a loopback "
                                 "address (127.0.0.1); upload the files instead", kind="forbidden")
    path = Path(body.path).expanduser()
    if not path.exists():
        return openai_error(422, f"no such file or folder on the server: {path}", param="path")
    service = _service(request)
    try:
        service.start_indexing([path], str(path))
    except IndexBusyError as err:
        return openai_error(409, str(err), kind="index_busy")
    return service.status()
