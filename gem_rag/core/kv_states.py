"""KV states of token rows computed by the model (generation weights), for document KV reuse: each row's keys
and values after a given prefix state, batched with right padding. See gem_rag.rag.kv for why and where a
state may be reused.

A state is one tensor (layers, 2, kv_heads, tokens, head_dim) in the model's dtype.

Example:
    >>> prefix = compute_kv(model, prompt_start_ids)
    >>> state = compute_kv(model, chunk_ids, prefix=prefix)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gem_rag.core.generation import cache_kwargs


def compute_states(model, rows: Sequence[Sequence[int]], prefix: torch.Tensor | None = None, *,
                   token_budget: int = 2048, on_state: Callable[[int, torch.Tensor], None] | None = None
                   ) -> list[torch.Tensor]:
    """KV states of token ``rows``, each computed after ``prefix`` (the state of the tokens before them, at
    positions 0..P-1) or alone (P = 0); a row's state covers positions P..P+n-1 (generation-mode weights).

    Rows are batched by ``token_budget`` padded tokens (right padding). With ``on_state(i, state)`` each state
    is handed over as soon as its batch is done and not kept (the list returned is then empty).
    """
    from transformers import DynamicCache

    decoder = model.hf_model.base_model
    start = 0 if prefix is None else prefix.shape[3]
    states: list[torch.Tensor | None] = [None] * len(rows)
    for batch in model._length_batches([list(r) for r in rows], 64, token_budget):
        length = max(len(rows[i]) for i in batch)
        input_ids = torch.full((len(batch), length), model.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), start + length), dtype=torch.long)
        attention[:, :start] = 1
        for j, i in enumerate(batch):
            input_ids[j, : len(rows[i])] = torch.tensor(list(rows[i]))
            attention[j, start: start + len(rows[i])] = 1
        positions = torch.arange(start, start + length).expand(len(batch), -1)  # (b, T)
        cache = DynamicCache()
        if prefix is not None:
            state = prefix.to(device=model.device, dtype=model.dtype)
            for layer in range(state.shape[0]):  # (1, kv_heads, P, head_dim) per row of the batch
                cache.update(state[layer, 0].expand(len(batch), -1, -1, -1).contiguous(),
                             state[layer, 1].expand(len(batch), -1, -1, -1).contiguous(), layer)
        with model.lock, torch.inference_mode():
            decoder(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                    position_ids=positions.to(model.device), use_cache=True, **cache_kwargs(decoder, cache))
        for j, i in enumerate(batch):
            state = torch.stack([torch.stack([layer.keys[j, :, start: start + len(rows[i])],
                                              layer.values[j, :, start: start + len(rows[i])]])
                                 for layer in cache.layers]).clone()  # (layers, 2, kv_heads, n, head_dim)
            if on_state is None:
                states[i] = state
            else:
                on_state(i, state)
        del cache
    return [] if on_state is not None else states  # type: ignore[return-value]


def compute_kv(model, token_ids: Sequence[int], prefix: torch.Tensor | None = None) -> torch.Tensor:
    """KV state of ``token_ids``, after ``prefix`` (a state at positions 0..P-1) or alone (positions 0..n-1)."""
    return compute_states(model, [token_ids], prefix)[0]
