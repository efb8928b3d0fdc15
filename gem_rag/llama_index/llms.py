"""LlamaIndex ``CustomLLM`` served by the GemModel: completion, and chat through the model's chat template."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from functools import partial
from typing import Any
from collections.abc import AsyncIterator, Iterator, Sequence

from llama_index.core.base.llms.generic_utils import (
    completion_response_to_chat_response,
    stream_completion_response_to_chat_response,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import ConfigDict, Field, PrivateAttr

from gem_rag import GemModel, GenerationResult, resolve_model
from gem_rag.llama_index._base import GemModelAccess

ROLES = {MessageRole.SYSTEM: "system", MessageRole.DEVELOPER: "system", MessageRole.USER: "user",
         MessageRole.ASSISTANT: "assistant", MessageRole.CHATBOT: "assistant", MessageRole.MODEL: "assistant"}
PER_CALL_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "stop")


def chat_template_prompt(model: GemModel, messages: Sequence[ChatMessage]) -> str:
    """LlamaIndex chat messages -> the model's chat-template prompt (text only, no tool roles)."""
    converted = []
    for i, message in enumerate(messages):
        if message.role not in ROLES:
            raise ValueError(f"messages[{i}] has role {message.role.value!r}; GemLLM understands system, user and "
                             f"assistant messages only (no tool calling)")
        for block in message.blocks:
            if not isinstance(block, TextBlock):
                raise ValueError(f"messages[{i}] holds a {type(block).__name__}; GemLLM is text-only")
        converted.append({"role": ROLES[message.role], "content": message.content or ""})
    return model.apply_chat_template(converted)


def _usage(result: GenerationResult) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.total_tokens}


async def _in_thread(responses: Iterator[Any]) -> AsyncIterator[Any]:
    """Drive a blocking iterator from a worker thread, one item at a time, without blocking the event loop."""
    done = object()
    while (item := await asyncio.to_thread(next, responses, done)) is not done:
        yield item


class GemLLM(GemModelAccess, CustomLLM):
    """A GemModel as a LlamaIndex LLM: ``complete``/``stream_complete`` continue a raw prompt; ``chat``/
    ``stream_chat`` go through the model's chat template (``messages_to_prompt`` overrides it). Query engines
    use the chat path (``is_chat_model=True``). Async methods decode in a worker thread.

    Example:
        >>> from llama_index.core.llms import ChatMessage
        >>> from gem_rag.llama_index import GemLLM
        >>> llm = GemLLM(max_tokens=64)
        >>> llm.chat([ChatMessage(role="user", content="What is a Python list?")]).message.content
        >>> for response in llm.stream_complete("The capital of France is"):
        ...     print(response.delta, end="")
    """

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=256, ge=1, le=8192, description="Most new tokens generated per answer.")
    temperature: float = Field(default=0.0, ge=0.0, le=10.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (temperature > 0).")
    seed: int | None = Field(default=None, description="Random seed for sampling; None draws a fresh one.")
    stop: list[str] | None = Field(default=None, description="Stop sequences; the answer is cut before the first.")

    _model: GemModel = PrivateAttr()

    def __init__(self, model: GemModel | None = None, **kwargs: Any) -> None:
        """``model``: a GemModel, or ``None`` for the process-wide shared default. Other keywords are fields."""
        resolved = resolve_model(model)
        kwargs["messages_to_prompt"] = kwargs.get("messages_to_prompt") or partial(chat_template_prompt, resolved)
        super().__init__(**kwargs)
        self._model = resolved

    @classmethod
    def class_name(cls) -> str:
        return "GemLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self._model.context_window, num_output=self.max_tokens,
                           is_chat_model=True, is_function_calling_model=False, model_name=self._model.name)

    # ------------------------------------------------------------------ blocking work (also run in threads)
    def _prepare(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        unknown = sorted(set(kwargs) - set(PER_CALL_OPTIONS))
        if unknown:
            raise TypeError(f"GemLLM got unsupported keyword argument(s) {unknown}; "
                            f"per-call options are {list(PER_CALL_OPTIONS)}")
        settings = {name: kwargs.get(name, getattr(self, name)) for name in PER_CALL_OPTIONS}
        settings["max_new_tokens"] = settings.pop("max_tokens")
        return (prompt if formatted else self.completion_to_prompt(prompt)), settings

    def _complete(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> CompletionResponse:
        prompt, settings = self._prepare(prompt, formatted, kwargs)
        result = self._model.generate(prompt, **settings)
        return CompletionResponse(text=result.text, raw=asdict(result), additional_kwargs=_usage(result))

    def _stream_complete(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> CompletionResponseGen:
        prompt, settings = self._prepare(prompt, formatted, kwargs)
        stream = self._model.stream(prompt, **settings)  # arguments are checked here, before the first token

        def responses() -> CompletionResponseGen:
            text = ""
            try:
                for piece in stream:
                    text += piece
                    yield CompletionResponse(text=text, delta=piece)
            finally:
                stream.close()

        return responses()

    def _chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatResponse:
        return completion_response_to_chat_response(self._complete(self.messages_to_prompt(messages), True, kwargs))

    # ------------------------------------------------------------------ LlamaIndex API
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Continue ``prompt`` (``completion_to_prompt`` applied unless ``formatted``); usage in additional_kwargs."""
        return self._complete(prompt, formatted, kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Stream the continuation: each response holds the text so far and the new ``delta``."""
        return self._stream_complete(prompt, formatted, kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await asyncio.to_thread(self._complete, prompt, formatted, kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return _in_thread(self._stream_complete(prompt, formatted, kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self._chat, messages, kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        prompt = self.messages_to_prompt(messages)
        return _in_thread(stream_completion_response_to_chat_response(self._stream_complete(prompt, True, kwargs)))
