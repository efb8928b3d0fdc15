"""OpenAI-compatible endpoints served by the one shared model: /v1/embeddings, /v1/chat/completions, /v1/models."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gem_rag.core.model import GemModel
from gem_rag.server.guard import error_body
from gem_rag.server.limits import OverBudget, ServerLimits, chat_prompt_tokens, completion_budget, embedding_budget
from gem_rag.server.schemas import ChatCompletionRequest, EmbeddingsRequest
from gem_rag.server.sse import sse_done, sse_event

router = APIRouter(prefix="/v1")

DEFAULT_MAX_TOKENS = 512
CREATED = int(time.time())


def openai_error(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    """An error in OpenAI's shape ({"error": {...}}), which the official clients parse."""
    return JSONResponse(status_code=status, content=error_body(message, kind, param))


def _model(request: Request) -> GemModel:
    return request.app.state.model


def _limits(request: Request) -> ServerLimits:
    return request.app.state.limits


@router.get("/models")
def list_models(request: Request) -> dict:
    return {"object": "list", "data": [_model_card(_model(request))]}


@router.get("/models/{model_id}")
def get_model(model_id: str, request: Request):
    model = _model(request)
    if model_id != model.name:
        return openai_error(404, f"model {model_id!r} is not served here; this server serves {model.name!r}",
                            param="model", kind="not_found_error")
    return _model_card(model)


def _model_card(model: GemModel) -> dict:
    return {"id": model.name, "object": "model", "created": CREATED, "owned_by": "gem-rag"}


@router.post("/embeddings")
def embeddings(body: EmbeddingsRequest, request: Request):
    model = _model(request)
    if body.dimensions is not None and body.dimensions != model.embedding_dim:
        return openai_error(422, f"dimensions must be {model.embedding_dim} (this model's size) or left out; "
                                 f"got {body.dimensions}", param="dimensions")
    texts = [body.input] if isinstance(body.input, str) else body.input
    try:
        counts = embedding_budget(model, texts, _limits(request))
    except OverBudget as err:
        return openai_error(400, str(err), param=err.param)
    vectors = model.embed(texts, kind=body.input_type)  # (n, dim) float32, unit length
    data = [{"object": "embedding", "index": i, "embedding": _encode(vector, body.encoding_format)}
            for i, vector in enumerate(vectors)]
    tokens = sum(counts)
    return {"object": "list", "data": data, "model": model.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # little-endian float32 bytes, as OpenAI sends them
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


@router.post("/chat/completions")
def chat_completions(body: ChatCompletionRequest, request: Request):
    model = _model(request)
    messages = [m.as_dict() for m in body.messages]
    try:
        max_new_tokens = completion_budget(model, chat_prompt_tokens(model, messages), body.token_limit(None),
                                           DEFAULT_MAX_TOKENS, _limits(request))
    except OverBudget as err:
        return openai_error(400, str(err), param=err.param)
    except (ValueError, TypeError) as err:
        return openai_error(400, str(err), param="messages")
    options = dict(max_new_tokens=max_new_tokens, temperature=body.temperature, top_p=body.top_p, stop=body.stop,
                   seed=body.seed)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    try:
        if body.stream:
            stream = model.stream_chat(messages, **options)  # validates and encodes the prompt now
        else:
            result = model.chat(messages, **options)
    except (ValueError, TypeError) as err:
        return openai_error(400, str(err), param="messages")
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_chat_chunks(stream, completion_id, model.name, include_usage),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return {
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model.name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                     "finish_reason": result.finish_reason, "logprobs": None}],
        "usage": _usage(result),
    }


def _usage(result) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.total_tokens}


def _chat_chunks(stream, completion_id: str, model_name: str, include_usage: bool) -> Iterator[str]:
    """SSE frames: a role delta, one content delta per piece, the finish chunk (with usage), [DONE]."""
    created = int(time.time())

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        return sse_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                          "model": model_name, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                                            "logprobs": None}], **extra})

    try:
        yield chunk({"role": "assistant", "content": ""})
        for piece in stream:
            yield chunk({"content": piece})
        result = stream.result
        yield chunk({}, result.finish_reason, usage=_usage(result))
        if include_usage:  # OpenAI's stream_options: a last chunk with no choices, only usage
            yield sse_event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                             "model": model_name, "choices": [], "usage": _usage(result)})
        yield sse_done()
    finally:
        stream.close()
