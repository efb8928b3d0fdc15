"""Generation from a prompt made of token pieces, some carrying cached KV states (document KV reuse).

Without cached pieces this is ordinary causal decoding of the concatenated ids. With them, the cached
states are re-rotated to their offsets and put in the cache, and one forward pass computes the other
pieces, each token attending to every earlier position (cached or not).

Example:
    >>> run = PieceGeneration(model, [Piece(prefix_ids), Piece(chunk_ids, chunk_state), Piece(tail_ids)],
    ...                       check_sampling(32, 0.0, 1.0, ["\\n"], None))
    >>> text = "".join(run); run.result.completion_tokens, run.first_token_s
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from gem_rag.core.generation import (GenerationResult, SamplingParams, cache_kwargs, find_stop, safe_stream_length,
                                    sample_next)
from gem_rag.rag.kv import rerotate_keys


@dataclass
class Piece:
    """Token ids of one prompt piece and, optionally, their KV state computed alone at positions 0..n-1."""

    ids: list[int]
    state: torch.Tensor | None = None  # (layers, 2, kv_heads, n, head_dim)


def _prefill(model, pieces: list[Piece]):
    """Build the cache from the pieces; return (cache, logits of the last prompt position, prompt length)."""
    from transformers import DynamicCache

    device, dtype = model.device, model.dtype
    cached_k: list[torch.Tensor] = []
    cached_v: list[torch.Tensor] = []
    cached_pos: list[int] = []
    new_ids: list[int] = []
    new_pos: list[int] = []
    offset = 0
    for i, piece in enumerate(pieces):
        n = len(piece.ids)
        if piece.state is not None and i < len(pieces) - 1 and n:
            if piece.state.shape[3] != n:
                raise ValueError(f"a cached KV state covers {piece.state.shape[3]} tokens, its piece has {n}")
            state = piece.state.to(device=device, dtype=dtype)
            cached_k.append(rerotate_keys(model, state[:, 0], offset))  # (layers, heads, n, head_dim)
            cached_v.append(state[:, 1])
            cached_pos.extend(range(offset, offset + n))
        else:
            new_ids.extend(piece.ids)
            new_pos.extend(range(offset, offset + n))
        offset += n
    if offset >= model.context_window:
        raise ValueError(f"prompt is {offset} tokens, the model's context window is {model.context_window}; "
                         f"use fewer or shorter chunks")
    cache = DynamicCache()
    input_ids = torch.tensor([new_ids], dtype=torch.long, device=device)
    positions = torch.tensor([new_pos], dtype=torch.long, device=device)
    mask = None
    if cached_k:
        keys, values = torch.cat(cached_k, dim=2), torch.cat(cached_v, dim=2)  # (layers, heads, n_cached, hd)
        for layer in range(keys.shape[0]):
            cache.update(keys[layer].unsqueeze(0), values[layer].unsqueeze(0), layer)
        query = positions[0].view(-1, 1)
        seen_cached = torch.tensor(cached_pos, device=device).view(1, -1) < query
        seen_new = positions[0].view(1, -1) <= query
        allowed = torch.cat([seen_cached, seen_new], dim=1)  # (n_new, n_cached + n_new)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
        mask = mask.view(1, 1, *allowed.shape)
    logits = model.hf_model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                            logits_to_keep=1, **cache_kwargs(model.hf_model, cache)).logits[:, -1]
    return cache, logits, offset


class PieceGeneration:
    """Iterator over the text pieces of a completion of ``pieces``; ``result`` and ``first_token_s``
    (seconds from the first ``next()`` to the first generated token) are set as it runs."""

    def __init__(self, model, pieces: list[Piece], params: SamplingParams, stop_pattern: re.Pattern | None = None):
        if not pieces or not pieces[-1].ids:
            raise ValueError("the prompt's last piece must hold tokens")
        self.model = model
        self.params = params
        self.stop_pattern = stop_pattern  # also stop where this matches (text kept up to the match's end)
        self.prompt_tokens = sum(len(p.ids) for p in pieces)
        self.result: GenerationResult | None = None
        self.first_token_s: float | None = None
        self._pieces_in = pieces
        self._out = self._run()

    def __iter__(self) -> "PieceGeneration":
        return self

    def __next__(self) -> str:
        return next(self._out)

    def close(self) -> None:
        self._out.close()

    def _tokens(self) -> Iterator[int]:
        model, params = self.model, self.params
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=model.device).manual_seed(params.seed)
        with model.lock, torch.inference_mode():
            cache, logits, position = _prefill(model, self._pieces_in)
            token = sample_next(logits, params, generator)
        self._pieces_in = []  # states are in the cache now
        budget = min(params.max_new_tokens, model.context_window - position)
        for step in range(budget):
            yield int(token[0])
            if step == budget - 1:
                break
            with model.lock, torch.inference_mode():
                logits = model.hf_model(input_ids=token.view(1, 1), position_ids=torch.tensor([[position]], device=model.device),
                                        use_cache=True, logits_to_keep=1,
                                        **cache_kwargs(model.hf_model, cache)).logits[:, -1]
                token = sample_next(logits, params, generator)
            position += 1

    def _run(self) -> Iterator[str]:
        start = time.perf_counter()
        tokenizer, params = self.model.tokenizer, self.params
        generated: list[int] = []
        shown, text, reason = 0, "", "length"
        for token in self._tokens():
            if self.first_token_s is None:
                self.first_token_s = time.perf_counter() - start
            if token in self.model.eos_token_ids:
                reason = "stop"
                break
            generated.append(token)
            text = tokenizer.decode(generated, skip_special_tokens=True)
            cut = find_stop(text, params.stop)
            if cut >= 0:
                text, reason = text[:cut], "stop"
                break
            match = self.stop_pattern.search(text) if self.stop_pattern is not None else None
            if match:
                text, reason = text[: match.end()], "stop"
                break
            ready = safe_stream_length(text, params.stop)
            if ready > shown:
                yield text[shown:ready]
                shown = ready
        if len(text) > shown:
            yield text[shown:]
        self.result = GenerationResult(text, self.prompt_tokens, len(generated), reason)
