"""Decoding helpers: argument checks, sampling, and stop-sequence handling on decoded text."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Generator, Iterable, Sequence

import torch

MAX_NEW_TOKENS_LIMIT = 8192


@lru_cache(maxsize=None)
def _cache_argument(model_class: type) -> str:
    names = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def cache_kwargs(hf_model, cache) -> dict:
    """``{"cache": cache}`` or ``{"past_key_values": cache}``: the KV-cache argument this transformers uses.

    transformers 5.x renamed ``past_key_values`` to ``cache``; an older 5.x silently ignores ``cache=`` (every
    decode step then sees only its own token), so the name is read from the model's ``forward`` signature.

    Example:
        >>> logits = hf_model(input_ids=ids, use_cache=True, **cache_kwargs(hf_model, DynamicCache())).logits
    """
    return {_cache_argument(type(hf_model)): cache}


@dataclass
class GenerationResult:
    """One completion: the text (prompt not echoed, stop sequence cut off) and token usage."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop sequence) or "length"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class SamplingParams:
    """Validated decoding settings (see :func:`check_sampling`)."""

    max_new_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None


def check_sampling(
    max_new_tokens: object, temperature: object, top_p: object, stop: object, seed: object
) -> SamplingParams:
    """Validate decoding arguments; raise ``ValueError``/``TypeError`` naming the bad one."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise TypeError(f"max_new_tokens must be an int in 1..{MAX_NEW_TOKENS_LIMIT}, got {max_new_tokens!r}")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise ValueError(f"max_new_tokens must be in 1..{MAX_NEW_TOKENS_LIMIT}, got {max_new_tokens}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a number in [0, 10] (0 = greedy), got {temperature!r}")
    if not 0.0 <= float(temperature) <= 10.0:
        raise ValueError(f"temperature must be in [0, 10] (0 = greedy), got {temperature}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        stops = list(stop)
    else:
        raise TypeError(f"stop must be None, a string or a list of strings, got {stop!r}")
    if any(s == "" for s in stops):
        raise ValueError("stop sequences must be non-empty strings")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return SamplingParams(max_new_tokens, float(temperature), float(top_p), stops, seed)


def sample_next(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """Pick the next token per row. logits: (B, V) -> (B,) token ids. Greedy when temperature == 0."""
    if params.temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)  # (B, V)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(dim=-1) - sorted_probs < params.top_p  # always keeps the top token
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def find_stop(text: str, stops: Sequence[str]) -> int:
    """Index where the earliest stop sequence starts in ``text``, or -1."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else -1


def safe_stream_length(text: str, stops: Sequence[str]) -> int:
    """How much of ``text`` can be shown now: hold back a tail that could still grow into a stop
    sequence, and an incomplete UTF-8 character (decoded as U+FFFD)."""
    end = len(text)
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    for s in stops:
        for k in range(min(len(s) - 1, end), 0, -1):
            if text[:end].endswith(s[:k]):
                end = min(end, len(text[:end]) - k)
                break
    return end


def stream_decoded(tokens: Iterable[int], tokenizer, eos_ids: set[int], stop: Sequence[str],
                   stop_pattern: re.Pattern | None = None) -> Generator[str, None, tuple[str, int, str]]:
    """Yield the text of generated ``tokens`` piece by piece as it becomes safe to show, until EOS, a stop
    sequence (cut off) or ``stop_pattern`` (kept up to the end of its match); return
    ``(text, tokens used, finish_reason)``.

    Example:
        >>> text, n, reason = yield from stream_decoded(token_ids, tokenizer, {2}, ["\\n"])
    """
    generated: list[int] = []
    shown, text, reason = 0, "", "length"
    for token in tokens:
        if token in eos_ids:
            reason = "stop"
            break
        generated.append(token)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        cut = find_stop(text, stop)
        if cut >= 0:
            text, reason = text[:cut], "stop"
            break
        match = stop_pattern.search(text) if stop_pattern is not None else None
        if match:
            text, reason = text[: match.end()], "stop"
            break
        ready = safe_stream_length(text, stop)
        if ready > shown:
            yield text[shown:ready]
            shown = ready
    if len(text) > shown:
        yield text[shown:]
    return text, len(generated), reason
