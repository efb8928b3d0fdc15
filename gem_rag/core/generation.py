"""Generation: argument checks, sampling, the decode loop (:func:`decode_steps`, over any backend's
``start_decoding``), stop-sequence handling on decoded text, and GemModel's generation methods (generate, chat,
stream)."""

from __future__ import annotations

import threading
from typing import Any

import inspect
import re
from dataclasses import dataclass
from functools import cache
from typing import Protocol
from collections.abc import Generator, Iterable, Iterator, Sequence

import torch

from gem_rag.core.embedding import _check_texts

MAX_NEW_TOKENS_LIMIT = 8192


@cache
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
class Piece:
    """Token ids of one prompt piece and, optionally, their KV state (computed right after the pieces before it;
    only leading pieces may carry one; see gem_rag.core.decoding)."""

    ids: list[int]
    state: torch.Tensor | None = None  # (layers, 2, kv_heads, n, head_dim)


class LogitsProcessor(Protocol):
    """A decoding constraint, as in transformers: ``__call__`` masks or reshapes the logits (1, V) before the
    choice, ``advance`` records the token chosen (e.g. gem_rag.core.decoding.CopySpanConstraint)."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor: ...

    def advance(self, token: int) -> None: ...


def decode_steps(model, prompts: list[list[Piece]], params: SamplingParams,
                 processor: LogitsProcessor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The decode loop of every backend and caller: prefill ``prompts`` (one row each) with
    ``model.start_decoding``, then yield ``(next_ids (B,), logits (B, V))`` per step, the logits being those the
    ids were chosen from (before ``processor``). Greedy at temperature 0, else sampled (seeded by ``params.seed``);
    a ``processor`` applies to a single row. Stops at ``max_new_tokens`` or the context window; stop tokens and
    sequences are the caller's (it decodes the text).

    Example:
        >>> for next_ids, logits in decode_steps(model, [[Piece(ids)]], check_sampling(8, 0.0, 1.0, None, None)):
        ...     print(int(next_ids[0]))
    """
    if processor is not None and len(prompts) != 1:
        raise ValueError("a logits processor applies to one prompt at a time")
    generator = None
    if params.seed is not None:
        generator = torch.Generator(device=model.device).manual_seed(params.seed)
    decoding = model.start_decoding(prompts)
    try:
        logits = decoding.logits
        budget = min(params.max_new_tokens, model.context_window - decoding.position)
        for step in range(budget):
            next_ids = sample_next(logits if processor is None else processor(logits), params, generator)  # (B,)
            if processor is not None:
                processor.advance(int(next_ids[0]))
            yield next_ids, logits
            if step < budget - 1:
                logits = decoding.advance(next_ids.tolist())
    finally:
        decoding.close()


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


class TokenStream:
    """Iterator over the text pieces of one streamed completion; ``.result`` is set once it ends.

    Example:
        >>> stream = model.stream("Count to three:", max_new_tokens=16)
        >>> text = "".join(stream); stream.result.completion_tokens
    """

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.result: GenerationResult | None = None

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating early (frees the KV cache)."""
        self._pieces.close()


class GenerationMixin:
    """GemModel's generation methods (they use its weights, tokenizer, lock and EOS ids)."""

    # set by GemModel.__init__
    hf_model: Any
    tokenizer: Any
    lock: threading.RLock
    bos_ids: list[int]
    eos_token_ids: set[int]
    pad_token_id: int
    context_window: int
    device: torch.device

    def apply_chat_template(self, messages: Sequence[dict]) -> str:
        """Render chat ``messages`` ([{"role": ..., "content": ...}]) into a prompt ending with the assistant turn."""
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                    or not isinstance(m.get("content"), str):
                raise ValueError(f"messages[{i}] must be a dict with role in system/user/assistant and str content, got {m!r}")
        messages = [{**m, "content": self.neutralise_control_tokens(m["content"])} for m in messages]
        if not self.tokenizer.chat_template:
            return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def neutralise_control_tokens(self, text: str) -> str:
        """``text`` with every special-token string of the tokenizer (``<|im_end|>``, ``<|gem_0|>``...) broken by a
        zero-width space, so text from users or documents can never act as a control token in a prompt."""
        for token in self._special_strings():
            if token in text:
                text = text.replace(token, token[:1] + "\u200b" + token[1:])
        return text

    def _special_strings(self) -> list[str]:
        specials = {t for t in self.tokenizer.all_special_tokens if len(t) > 1}
        specials |= {t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special and len(t.content) > 1}
        return sorted(specials, key=len, reverse=True)

    def generate(
        self,
        prompt: str | Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> GenerationResult | list[GenerationResult]:
        """Complete a prompt (or a list of prompts, batched with left padding).

        Example:
            >>> r = model.generate("The capital of France is", max_new_tokens=8, stop=["."])
            >>> r.text, r.completion_tokens, r.finish_reason
        """
        single = isinstance(prompt, str)
        prompts = _check_texts(prompt, "prompt")
        params = check_sampling(max_new_tokens, temperature, top_p, stop, seed)
        rows = [self._encode_prompt(p) for p in prompts]
        results = self._run_generation(rows, params)
        return results[0] if single else results

    def chat(self, messages: Sequence[dict], **kwargs) -> GenerationResult:
        """Answer a conversation using the tokenizer's chat template. Same keywords as :meth:`generate`.

        Example:
            >>> model.chat([{"role": "user", "content": "Say hi"}], max_new_tokens=8).text
        """
        return self.generate(self.apply_chat_template(messages), **kwargs)

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> TokenStream:
        """Stream a completion piece by piece; the joined pieces equal ``generate(...).text``."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str for stream(), got {type(prompt).__name__}")
        _check_texts(prompt, "prompt")
        params = check_sampling(max_new_tokens, temperature, top_p, stop, seed)
        holder = TokenStream(iter(()))
        holder._pieces = self._stream_pieces(self._encode_prompt(prompt), params, holder)
        return holder

    def stream_chat(self, messages: Sequence[dict], **kwargs) -> TokenStream:
        """Stream the answer to a conversation (chat template applied)."""
        return self.stream(self.apply_chat_template(messages), **kwargs)

    def _encode_prompt(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        if self.bos_ids and ids[:1] != self.bos_ids:  # a chat template may have written it already
            ids = self.bos_ids + ids
        if len(ids) >= self.context_window:
            raise ValueError(f"prompt is {len(ids)} tokens, the model's context window is {self.context_window}")
        return ids

    def _token_steps(self, rows: list[list[int]], params: SamplingParams) -> Iterator[torch.Tensor]:
        """(B,) next token ids per step for prompt ``rows`` (see :func:`decode_steps`)."""
        for next_ids, _ in decode_steps(self, [[Piece(list(r))] for r in rows], params):
            yield next_ids

    def _run_generation(self, rows: list[list[int]], params: SamplingParams) -> list[GenerationResult]:
        generated: list[list[int]] = [[] for _ in rows]
        texts = ["" for _ in rows]
        finish: list[str | None] = [None for _ in rows]
        for next_ids in self._token_steps(rows, params):
            for i, token in enumerate(next_ids.tolist()):
                if finish[i] is not None:
                    continue
                if token in self.eos_token_ids:
                    finish[i] = "stop"
                    continue
                generated[i].append(token)
                texts[i] = self.tokenizer.decode(generated[i], skip_special_tokens=True)
                cut = find_stop(texts[i], params.stop)
                if cut >= 0:
                    texts[i], finish[i] = texts[i][:cut], "stop"
            if all(f is not None for f in finish):
                break
        return [GenerationResult(texts[i], len(rows[i]), len(generated[i]), finish[i] or "length")
                for i in range(len(rows))]

    def _stream_pieces(self, row: list[int], params: SamplingParams, holder: TokenStream) -> Iterator[str]:
        tokens = (int(next_ids[0]) for next_ids in self._token_steps([row], params))
        text, n_generated, reason = yield from stream_decoded(tokens, self.tokenizer, self.eos_token_ids, params.stop)
        holder.result = GenerationResult(text, len(row), n_generated, reason)
