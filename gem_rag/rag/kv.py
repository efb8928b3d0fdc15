"""Document KV reuse: key/value states of chunks computed once (while embedding them) and reused at answer time.

A chunk's KV state is computed by a causal pass over the chunk's tokens alone, at positions 0..n-1.
Placed at offset ``o`` in a prompt, its keys are re-rotated by ``o`` (RoPE: R(p + o) = R(o) R(p), exact);
values carry no position. Chunks cached independently do not attend to each other (block attention);
the uncached prompt tokens (instruction, separators, template tail) attend to everything before them.

A KV state is one tensor (layers, 2, kv_heads, tokens, head_dim) in the model's dtype.

Example:
    >>> cache = KVCache(max_bytes=512 * 2**20)
    >>> vectors, states = embed_with_kv(model, ["chunk text"], kind="document")
    >>> cache.put("chunk-id", states[0])
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from gem_rag.core.generation import cache_kwargs

logger = logging.getLogger(__name__)


def model_fingerprint(model) -> str:
    """Name + GEM artefact id: KV states (and vectors) of different fingerprints must never be mixed."""
    from gem_rag.rag.manifest import artefact_id

    return f"{model.name}|{artefact_id(model)}"


class KVCache:
    """Byte-bounded LRU of chunk KV states in RAM, with an optional byte-bounded disk tier.

    Args:
        max_bytes: RAM budget (least recently used states are dropped, or kept only on disk).
        disk_dir: folder for the disk tier (``None``: RAM only). It records the model fingerprint and
            is emptied when opened with another model.
        disk_max_bytes: disk budget.
    """

    def __init__(self, max_bytes: int = 256 * 2**20, *, disk_dir: str | Path | None = None,
                 disk_max_bytes: int = 4 * 2**30, fingerprint: str = ""):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"kv_cache_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.disk_max_bytes = disk_max_bytes
        self._ram: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._ram_bytes = 0
        self.hits = self.misses = 0
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self._disk: OrderedDict[str, int] = OrderedDict()  # key -> bytes, oldest first
        if self.disk_dir is not None:
            self._open_disk(fingerprint)

    def _open_disk(self, fingerprint: str) -> None:
        self.disk_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.disk_dir / "kv_manifest.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
            logger.warning("KV cache at %s was made by another model; emptying it", self.disk_dir)
            for file in self.disk_dir.glob("*.kv"):
                file.unlink()
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
        files = sorted(self.disk_dir.glob("*.kv"), key=lambda f: f.stat().st_mtime)
        for file in files:
            self._disk[file.stem] = file.stat().st_size

    @property
    def nbytes(self) -> int:
        return self._ram_bytes

    def __len__(self) -> int:
        return len(self._ram.keys() | self._disk.keys())

    def __contains__(self, key: str) -> bool:
        return key in self._ram or key in self._disk

    def get(self, key: str) -> torch.Tensor | None:
        state = self._ram.get(key)
        if state is not None:
            self._ram.move_to_end(key)
        elif key in self._disk:
            state = self._read_disk(key)
            if state is not None:
                self._put_ram(key, state)
        self.hits += state is not None
        self.misses += state is None
        return state

    def put(self, key: str, state: torch.Tensor) -> None:
        """Store ``state`` (kept in RAM within budget, and written to the disk tier when there is one)."""
        self._put_ram(key, state)
        if self.disk_dir is not None and key not in self._disk:
            self._write_disk(key, state)

    def discard(self, keys: Sequence[str]) -> None:
        for key in keys:
            state = self._ram.pop(key, None)
            if state is not None:
                self._ram_bytes -= _nbytes(state)
            if self._disk.pop(key, None) is not None:
                (self.disk_dir / f"{key}.kv").unlink(missing_ok=True)

    def _put_ram(self, key: str, state: torch.Tensor) -> None:
        size = _nbytes(state)
        if key in self._ram:
            self._ram_bytes -= _nbytes(self._ram.pop(key))
        if size > self.max_bytes:
            return
        self._ram[key] = state
        self._ram_bytes += size
        while self._ram_bytes > self.max_bytes:
            _, old = self._ram.popitem(last=False)
            self._ram_bytes -= _nbytes(old)

    def _write_disk(self, key: str, state: torch.Tensor) -> None:
        from safetensors.torch import save_file

        path = self.disk_dir / f"{key}.kv"
        tmp = path.with_suffix(".tmp")
        save_file({"kv": state.contiguous()}, str(tmp))
        os.replace(tmp, path)
        self._disk[key] = path.stat().st_size
        while sum(self._disk.values()) > self.disk_max_bytes and len(self._disk) > 1:
            old, _ = self._disk.popitem(last=False)
            (self.disk_dir / f"{old}.kv").unlink(missing_ok=True)

    def _read_disk(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        try:
            state = load_file(str(self.disk_dir / f"{key}.kv"))["kv"]
        except Exception as err:  # a damaged file is a cache miss, not an error
            logger.warning("dropping unreadable KV file for %s: %s", key, err)
            self.discard([key])
            return None
        self._disk.move_to_end(key)
        return state


def _nbytes(state: torch.Tensor) -> int:
    return state.numel() * state.element_size()


def kv_bytes_per_token(model) -> int:
    config = model.hf_model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * torch.finfo(model.dtype).bits // 8


# ---------------------------------------------------------------- computing states
def _stack_cache(cache, row: int, length: int) -> torch.Tensor:
    """(layers, 2, kv_heads, length, head_dim) copy of one batch row's first ``length`` positions."""
    return torch.stack([torch.stack([layer.keys[row, :, :length], layer.values[row, :, :length]])
                        for layer in cache.layers]).clone()


def embed_with_kv(model, texts: Sequence[str], kind: str = "document", *, token_budget: int = 2048,
                  batch_size: int = 32, normalize: bool = True,
                  on_state: Callable[[int, torch.Tensor], None] | None = None) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Embed ``texts`` like ``model.embed`` and also return each text's KV state (its tokens, GEM token excluded).

    The states are the generation-mode keys/values: one pass computes both unless the model's GEM adapter is
    embedding-scoped (``model.embedding_kv_is_generation_kv`` is False), which costs a second pass.

    Returns (vectors (n, dim) float32, states); with ``kind="query"`` the state covers the query instruction too.
    With ``on_state(i, state)`` each state is handed over as soon as its batch is done and not kept (states
    is then empty), so memory holds one batch of states at most.
    """
    from transformers import DynamicCache

    if kind == "query" and model.query_instruction:
        texts = [model.query_instruction + t for t in texts]
    n_special = len(model.special_token_ids)
    rows = model._embedding_rows(list(texts), model.max_length)
    vectors = np.zeros((len(rows), model.embedding_dim), dtype=np.float32)
    states: list[torch.Tensor | None] = [None] * len(rows)
    decoder = model.hf_model.base_model
    for batch in model._length_batches(rows, batch_size, token_budget):
        input_ids, attention, mask = model._embedding_inputs([rows[i] for i in batch])
        cache = DynamicCache()
        with model.lock, torch.inference_mode():
            if model.embedding_kv_is_generation_kv:  # one pass gives both
                hidden = decoder(input_ids=input_ids, attention_mask=mask, use_cache=True,
                                 **cache_kwargs(decoder, cache)).last_hidden_state
            else:  # embedding-scoped adapter: the vectors from an adapter pass, the states from a plain one
                with model.embedding_pass():
                    hidden = decoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
                decoder(input_ids=input_ids, attention_mask=mask, use_cache=True, **cache_kwargs(decoder, cache))
            pooled = model._special_states(hidden, attention)  # (b, dim)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            vectors[batch] = pooled.cpu().numpy()
            for j, i in enumerate(batch):
                state = _stack_cache(cache, j, len(rows[i]) - n_special)
                if on_state is None:
                    states[i] = state
                else:
                    on_state(i, state)
        del cache, hidden
    return vectors, ([] if on_state is not None else states)  # type: ignore[return-value]


def compute_kv(model, token_ids: Sequence[int]) -> torch.Tensor:
    """KV state of ``token_ids`` alone (positions 0..n-1)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    input_ids = torch.tensor([list(token_ids)], dtype=torch.long, device=model.device)
    with model.lock, torch.inference_mode():
        model.hf_model.base_model(input_ids=input_ids, use_cache=True, **cache_kwargs(model.hf_model.base_model, cache))
        return _stack_cache(cache, 0, len(token_ids))


def rerotate_keys(model, keys: torch.Tensor, offset: int) -> torch.Tensor:
    """Keys rotated for positions 0..n-1 -> rotated for offset..offset+n-1 (exact for RoPE).

    keys: (..., tokens, head_dim).
    """
    if offset == 0:
        return keys
    rotary = model.hf_model.base_model.rotary_emb
    angle = offset * rotary.inv_freq.to(device=keys.device, dtype=torch.float64)  # (head_dim/2,)
    angle = torch.cat([angle, angle])
    cos, sin = angle.cos().to(torch.float32), angle.sin().to(torch.float32)
    k = keys.float()
    half = k.shape[-1] // 2
    rotated_half = torch.cat([-k[..., half:], k[..., :half]], dim=-1)
    return (k * cos + rotated_half * sin).to(keys.dtype)


def check_rope(model) -> None:
    """KV reuse relies on plain RoPE; refuse models whose rotary embedding scales cos/sin."""
    rotary = getattr(model.hf_model.base_model, "rotary_emb", None)
    if rotary is None or getattr(rotary, "attention_scaling", 1.0) != 1.0 or \
            getattr(rotary, "rope_type", "default") not in ("default", "linear"):
        raise ValueError(f"kv_reuse needs a model with plain rotary position embeddings; {model.name} does not "
                         f"qualify: create the pipeline with kv_reuse=False")
