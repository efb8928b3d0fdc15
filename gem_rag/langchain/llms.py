"""LangChain text-completion ``LLM`` served by the GemModel (raw prompt in, continuation out; no chat template)."""

from __future__ import annotations

from typing import Any
from collections.abc import Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LLM
from langchain_core.outputs import GenerationChunk

from gem_rag.langchain._base import ADAPTER_CONFIG, GemDecodingFields, pieces_until


class GemLLM(GemDecodingFields, LLM):
    """Completes a raw prompt with the GemModel; the prompt is never echoed and ``stop`` sequences are cut off.

    Use :class:`GemChatModel` for instruction following (it applies the chat template). The async methods
    (``ainvoke``, ``astream``, ...) run decoding in a worker thread, so the event loop is never blocked.

    Example:
        >>> from gem_rag.langchain import GemLLM
        >>> llm = GemLLM(max_tokens=16, stop=["\\n"])
        >>> llm.invoke("The capital of France is")
        >>> for piece in llm.stream("Once upon a time"):
        ...     print(piece, end="")
    """

    model_config = ADAPTER_CONFIG

    @property
    def _llm_type(self) -> str:
        return "gem-rag"

    def _pieces(self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any]) -> Iterator[str]:
        decoding, timeout = self._decoding_kwargs(stop, kwargs)
        return pieces_until(self.model.stream(prompt, **decoding), timeout)

    def _call(self, prompt: str, stop: list[str] | None = None,
              run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        return "".join(self._pieces(prompt, stop, kwargs))

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        for piece in self._pieces(prompt, stop, kwargs):
            chunk = GenerationChunk(text=piece)
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
