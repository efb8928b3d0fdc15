"""The decoding state of prompt rows: the :class:`Decoding` protocol every backend's ``start_decoding`` returns,
and the torch backend's :class:`TorchDecoding`.

A prompt is given as token pieces, the leading ones possibly carrying cached KV states (the prompt's fixed start,
the first chunk: document KV reuse, see gem_rag.rag.kv); the cached states go into the cache as they are and one
forward pass computes the other pieces, so the result is ordinary causal decoding of the concatenated ids.

Continuous batching: the steps of concurrent one-row decodings (server requests generating at the same time) go
through :class:`gem_rag.core.step_batcher.StepBatcher` to :func:`step_decodings`, which stacks their KV caches,
left-padded to the longest, and runs one forward pass for all of them.

Example:
    >>> decoding = model.start_decoding([[Piece(prompt_ids)]])
    >>> logits = decoding.advance([int(decoding.logits.argmax())])  # (1, V)
"""

from __future__ import annotations

from typing import Protocol
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gem_rag.core.generation import Piece, cache_kwargs


def _prefill(model, pieces: list[Piece]):
    """Build the cache from the pieces; return (cache, logits of the last prompt position, prompt length).

    The leading pieces that carry a state are put in the cache as they are (each state must have been computed
    right after the pieces before it); the remaining pieces are computed in one pass after them."""
    from transformers import DynamicCache

    cached = 0
    while cached < len(pieces) - 1 and pieces[cached].state is not None:
        cached += 1
    if any(piece.state is not None for piece in pieces[cached:-1]):
        raise ValueError("only the leading pieces of a prompt may carry cached KV states")
    length = sum(len(piece.ids) for piece in pieces)
    if length >= model.context_window:
        raise ValueError(f"prompt is {length} tokens, the model's context window is {model.context_window}; "
                         f"use fewer or shorter chunks")
    cache = DynamicCache()
    states = [piece.state for piece in pieces[:cached] if piece.state is not None]  # all of them, by the loop above
    if states:
        for piece, piece_state in zip(pieces, states):
            if piece_state.shape[3] != len(piece.ids):
                raise ValueError(f"a cached KV state covers {piece_state.shape[3]} tokens, its piece has {len(piece.ids)}")
        state = torch.cat(states, dim=3).to(device=model.device, dtype=model.dtype)
        for layer in range(state.shape[0]):  # (1, kv_heads, n_cached, head_dim) each
            cache.update(state[layer, 0].unsqueeze(0), state[layer, 1].unsqueeze(0), layer)
    start = sum(len(piece.ids) for piece in pieces[:cached])
    input_ids = torch.tensor([[t for piece in pieces[cached:] for t in piece.ids]], dtype=torch.long, device=model.device)
    positions = torch.arange(start, length, device=model.device).view(1, -1)
    logits = model.hf_model(input_ids=input_ids, position_ids=positions, use_cache=True, logits_to_keep=1,
                            **cache_kwargs(model.hf_model, cache)).logits[:, -1]
    return cache, logits, length


class Decoding(Protocol):
    """What a backend's ``start_decoding(prompts)`` returns: ``logits`` (B, V) at each row's last decoded
    position, ``prompt_length`` (the longest row's) and ``position`` (the next step's), and a step."""

    logits: torch.Tensor
    prompt_length: int
    position: int

    def advance(self, tokens: list[int]) -> torch.Tensor:
        """Decode one token per row; returns (and keeps) their logits (B, V)."""
        ...

    def close(self) -> None: ...


class TorchDecoding:
    """The decoding state of prompt rows on the torch backend: one KV cache, the attention mask and next
    positions per row. One prompt is prefilled from its pieces (leading ones may carry KV states); several are
    left-padded so that every row ends at the same column (positions come from the mask, not the column).
    The steps of a one-row decoding go through ``model.batcher``, batched with those of concurrent ones."""

    def __init__(self, model, prompts: list[list[Piece]]):
        self.model = model
        self._batched = False  # registered with model.batcher (from the first one-row step until close)
        device = model.device
        with model.lock, torch.inference_mode():
            if len(prompts) == 1:
                self.cache, self.logits, length = _prefill(model, prompts[0])
                self.attention = torch.ones((1, length), dtype=torch.long, device=device)
                self.next_positions = torch.tensor([[length]], device=device)
            else:
                if any(piece.state is not None for prompt in prompts for piece in prompt):
                    raise ValueError("cached KV states apply to a single prompt, not to a batch")
                self._prefill_padded([[t for piece in prompt for t in piece.ids] for prompt in prompts])
        self.prompt_length = self.position = self.attention.shape[1]

    def _prefill_padded(self, rows: list[list[int]]) -> None:
        from transformers import DynamicCache

        model = self.model
        length = max(len(r) for r in rows)
        if length >= model.context_window:
            raise ValueError(f"prompt is {length} tokens, the model's context window is {model.context_window}")
        input_ids = torch.full((len(rows), length), model.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding: every row ends at the same position
            input_ids[i, length - len(r):] = torch.tensor(r)
            attention[i, length - len(r):] = 1
        self.attention = attention.to(model.device)
        positions = (self.attention.cumsum(dim=1) - 1).clamp(min=0)  # (B, T)
        self.cache = DynamicCache()
        self.logits = model.hf_model(input_ids=input_ids.to(model.device), attention_mask=self.attention,
                                     position_ids=positions, use_cache=True, logits_to_keep=1,
                                     **cache_kwargs(model.hf_model, self.cache)).logits[:, -1]  # (B, V)
        self.next_positions = positions[:, -1:] + 1

    def advance(self, tokens: list[int]) -> torch.Tensor:
        if len(tokens) == 1:  # one row: batched with the steps of concurrent one-row decodings
            if not self._batched:
                self.model.batcher.opened()
                self._batched = True
            self.logits = self.model.batcher.step((self, tokens[0]))
        else:
            self.logits = self.forward_alone(tokens)
        self.attention = torch.cat([self.attention, torch.ones_like(self.attention[:, :1])], dim=1)
        self.next_positions = self.next_positions + 1
        self.position += 1
        return self.logits

    def forward_alone(self, tokens: list[int]) -> torch.Tensor:
        """One token per row through this decoding's own cache; their logits (B, V). ``advance`` keeps the state."""
        model = self.model
        input_ids = torch.tensor(tokens, device=model.device).view(-1, 1)  # (B, 1)
        attention = torch.cat([self.attention, torch.ones_like(input_ids)], dim=1)
        with model.lock, torch.inference_mode():
            return model.hf_model(input_ids=input_ids, attention_mask=attention, position_ids=self.next_positions,
                                  use_cache=True, logits_to_keep=1,
                                  **cache_kwargs(model.hf_model, self.cache)).logits[:, -1]

    def advance_tree(self, tokens: list[int], positions: list[int], mask: torch.Tensor) -> torch.Tensor:
        """Beam search, one prompt: append ``tokens`` (one per hypothesis) to the cache at ``positions``;
        ``mask`` (n, cached + n) float additive says which cache entries each sees. Returns their logits (n, V)."""
        model, n = self.model, len(tokens)
        with model.lock, torch.inference_mode():
            return model.hf_model(input_ids=torch.tensor([tokens], device=model.device),
                                  position_ids=torch.tensor([positions], device=model.device),
                                  attention_mask=mask.view(1, 1, n, -1).to(model.device), use_cache=True,
                                  logits_to_keep=n, **cache_kwargs(model.hf_model, self.cache)).logits[0]

    def close(self) -> None:
        self.cache = None
        if self._batched:
            self._batched = False
            self.model.batcher.closed()


def step_decodings(steps: Sequence[tuple[TorchDecoding, int]]) -> list[torch.Tensor]:
    """One step of several one-row decodings (each with its next token) in one forward pass; each one's logits (1, V).

    Their caches (1, kv_heads, n_i, head_dim) per layer are left-padded to the longest (n) and stacked into a
    (B, kv_heads, n, head_dim) batch cache; the mask hides the padding and the positions are each row's own, so
    every row decodes as it would alone. Each decoding then keeps its row of the grown cache (a view, unpadded).
    """
    if len(steps) == 1:
        decoding, token = steps[0]
        return [decoding.forward_alone([token])]
    from transformers import DynamicCache

    model = steps[0][0].model
    lengths = [decoding.cache.get_seq_length() for decoding, _ in steps]
    longest = max(lengths)
    attention = torch.zeros((len(steps), longest + 1), dtype=torch.long, device=model.device)
    for row, length in enumerate(lengths):
        attention[row, longest - length:] = 1
    batch = DynamicCache()
    with model.lock, torch.inference_mode():
        for layer in range(len(steps[0][0].cache.layers)):
            rows = [(_layer_tensors(d.cache, layer), longest - n) for (d, _), n in zip(steps, lengths)]
            batch.update(torch.cat([F.pad(keys, (0, 0, pad, 0)) for (keys, _), pad in rows]),
                         torch.cat([F.pad(values, (0, 0, pad, 0)) for (_, values), pad in rows]), layer)
        logits = model.hf_model(input_ids=torch.tensor([[token] for _, token in steps], device=model.device),
                                attention_mask=attention, position_ids=torch.cat([d.next_positions for d, _ in steps]),
                                use_cache=True, logits_to_keep=1, **cache_kwargs(model.hf_model, batch)).logits[:, -1]
        for row, ((decoding, _), length) in enumerate(zip(steps, lengths)):
            own = DynamicCache()
            for layer in range(len(batch.layers)):
                keys, values = _layer_tensors(batch, layer)
                own.update(keys[row:row + 1, :, longest - length:], values[row:row + 1, :, longest - length:], layer)
            decoding.cache = own
    return [logits[row:row + 1] for row in range(len(steps))]


def _layer_tensors(cache, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, values) (B, kv_heads, n, head_dim) of one layer of a DynamicCache (full-attention layers only)."""
    entry = cache.layers[layer]
    return entry.keys, entry.values
