"""What every LangChain adapter shares: the ``model`` field (one GemModel per process) and decoding settings."""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gem_rag import GemModel, TokenStream, resolve_model

PER_CALL_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "timeout")


# Every adapter restates this as its own model_config: a subclass's own config wins over LangChain's extra="ignore".
ADAPTER_CONFIG = ConfigDict(arbitrary_types_allowed=True, extra="forbid", use_attribute_docstrings=True)


class GemModelField(BaseModel):
    """Holds the GemModel by reference: pydantic neither copies nor inspects it."""

    model_config = ADAPTER_CONFIG

    model: GemModel | None = Field(default=None, validate_default=True)
    """The GemModel that embeds and generates. ``None`` (the default) resolves the process-wide shared model
    (``gem_rag.get_default_model()``), so every adapter built without one shares a single set of weights."""

    @field_validator("model", mode="plain")
    @classmethod
    def _resolve_model(cls, value: object) -> GemModel:
        return resolve_model(value)  # TypeError for anything that is not a GemModel or None


class GemDecodingFields(GemModelField):
    """What :class:`GemLLM` and :class:`GemChatModel` share: decoding settings (each may be overridden per call),
    the parameters that identify a configuration, and token counting by the model's own tokenizer."""

    max_tokens: int = Field(default=256, ge=1, le=8192)
    """Most new tokens generated per answer."""

    temperature: float = Field(default=0.0, ge=0.0, le=10.0)
    """Sampling temperature; 0 means greedy (deterministic) decoding."""

    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches ``top_p`` (temperature > 0)."""

    seed: int | None = None
    """Random seed for sampling, for reproducible answers at temperature > 0; ``None`` draws a fresh one."""

    stop: list[str] | None = None
    """Default stop sequences; the answer is cut before the first one. A per-call ``stop`` replaces them."""

    timeout: float | None = Field(default=None, gt=0)
    """Seconds one generation may run before it is stopped with ``TimeoutError``; ``None`` for no limit."""

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {"model_name": self.model.name, "max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed}

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from the model's own tokenizer (LangChain's default would fetch GPT-2's)."""
        return self.model.tokenizer(text, add_special_tokens=False).input_ids

    def _decoding_kwargs(self, stop: list[str] | None,
                         call_kwargs: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """Merge per-call options over the fields -> (keywords for ``GemModel.stream``, timeout)."""
        options = {k: v for k, v in call_kwargs.items() if k != "stream"}  # "stream" is LangChain's own switch
        unknown = sorted(set(options) - set(PER_CALL_OPTIONS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unsupported keyword argument(s) {unknown}; "
                            f"per-call options are {list(PER_CALL_OPTIONS)} and stop")
        settings = {name: options.get(name, getattr(self, name)) for name in PER_CALL_OPTIONS}
        timeout = settings.pop("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        return {"max_new_tokens": settings.pop("max_tokens"), **settings,
                "stop": stop if stop is not None else self.stop}, timeout


def pieces_until(stream: TokenStream, timeout: float | None) -> Iterator[str]:
    """The text pieces of ``stream``; stops decoding and raises ``TimeoutError`` once ``timeout`` seconds pass."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for piece in stream:
            yield piece
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"generation took longer than timeout={timeout}s; raise timeout or lower max_tokens")
    finally:
        stream.close()
