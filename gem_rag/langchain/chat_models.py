"""LangChain ``BaseChatModel`` served by the GemModel through its chat template (text only, no tool calling)."""

from __future__ import annotations

from typing import Any
from collections.abc import Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from gem_rag import GenerationResult, TokenStream
from gem_rag.langchain._base import ADAPTER_CONFIG, GemDecodingFields, pieces_until

ROLES = {"system": "system", "human": "user", "ai": "assistant"}
CHAT_ROLES = ("system", "user", "assistant")


def to_chat_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> [{"role", "content"}] for the chat template; non-text content is refused."""
    converted = []
    for i, message in enumerate(messages):
        role = message.role if message.type == "chat" else ROLES.get(message.type)
        if role not in CHAT_ROLES:
            raise ValueError(f"messages[{i}] is a {type(message).__name__} (role {role or message.type!r}); "
                             f"GemChatModel understands only system, human and ai messages (no tool calling)")
        if isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, dict) and block.get("type") not in ("text", "reasoning", None):
                    raise ValueError(f"messages[{i}] holds a {block.get('type')!r} block; GemChatModel is text-only")
        converted.append({"role": role, "content": message.text})
    return converted


def usage_of(result: GenerationResult) -> UsageMetadata:
    return UsageMetadata(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens,
                         total_tokens=result.total_tokens)


class GemChatModel(GemDecodingFields, BaseChatModel):
    """Chat with the GemModel: messages go through the model's chat template; answers stream token by token.

    Supports ``invoke``/``stream``/``batch`` and their async twins (decoding runs in a worker thread), per-call
    ``stop``/``max_tokens``/``temperature``/``top_p``/``seed``/``timeout``, and ``usage_metadata``. Tool calling,
    structured output and image inputs are not supported (a 135M model cannot do them reliably).

    Example:
        >>> from gem_rag.langchain import GemChatModel
        >>> chat = GemChatModel(max_tokens=64)
        >>> answer = chat.invoke([("system", "Answer in one sentence."), ("human", "What is a Python list?")])
        >>> answer.content, answer.usage_metadata["output_tokens"]
    """

    model_config = ADAPTER_CONFIG

    streaming: bool = False
    """Whether ``invoke`` streams internally, so callback handlers receive tokens as they are decoded."""

    max_retries: int = Field(default=2, ge=0)
    """Accepted for the standard chat-model interface; a local model has no transient failures to retry."""

    @property
    def _llm_type(self) -> str:
        return "gem-rag-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="gem_rag",
            ls_model_name=kwargs["model"] if isinstance(kwargs.get("model"), str) else self.model.name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _start(self, messages: list[BaseMessage], stop: list[str] | None,
               kwargs: dict[str, Any]) -> tuple[TokenStream, Iterator[str]]:
        decoding, timeout = self._decoding_kwargs(stop, kwargs)
        stream = self.model.stream_chat(to_chat_messages(messages), **decoding)
        return stream, pieces_until(stream, timeout)

    def _response_metadata(self, result: GenerationResult) -> dict[str, Any]:
        return {"model_name": self.model.name, "finish_reason": result.finish_reason, "model_provider": "gem_rag"}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        stream, pieces = self._start(messages, stop, kwargs)
        text = "".join(pieces)
        result = stream.result
        message = AIMessage(content=text, usage_metadata=usage_of(result),
                            response_metadata=self._response_metadata(result))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # BaseChatModel.stream reports each chunk to run_manager.on_llm_new_token itself.
        stream, pieces = self._start(messages, stop, kwargs)
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        result = stream.result
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", usage_metadata=usage_of(result), response_metadata=self._response_metadata(result),
            chunk_position="last"))
