"""Document KV reuse: key/value states of chunks computed once (at indexing) and reused at answer time.

Reuse is exact: a chunk's KV state is computed by a causal pass over the chunk's tokens placed right after
the answer prompt's fixed start (system instruction, few-shot turns, "Context:"), whose own state is
computed once, and a state is only ever reused where it was computed: as the first chunk of a prompt.
The answer is then the one a full pass gives. With ``reading="per_chunk"`` every chunk is the first (and
only) chunk of its own prompt, so every chunk's state is reused.

States are not taken from the embedding pass, nor placed elsewhere in the prompt, because that ruins the
answers (SQuAD, k=3, hybrid retrieval): chunk states computed alone (positions 0.., the embedding pass's view)
and re-rotated into place gave F1 3.1 against 18.3 (100 questions), and states computed after the prompt start
but also used for the 2nd and 3rd chunks (block attention: chunks that never saw each other) gave 3.2 against
22.1 (40 questions); the model answered from the wrong chunk. The shipped GEM adapter also acts only in
embedding passes, so those keys/values differ from generation's anyway.

A KV state is one tensor (layers, 2, kv_heads, tokens, head_dim) in the model's dtype.

Example:
    >>> cache = KVCache(max_bytes=512 * 2**20)
    >>> prefix = compute_kv(model, prompt_start_ids)
    >>> cache.put("chunk-id", compute_kv(model, chunk_ids, prefix=prefix))
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from collections.abc import Sequence

import torch

from gem_rag.core.kv_states import compute_kv, compute_states

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


class ChunkKV:
    """KV reuse for a pipeline: every chunk's state after the answer prompt's start, computed when the chunk is
    indexed (``add``) or first read (``state``), dropped with the chunk (``discard``).

    Example:
        >>> kv = ChunkKV(model, generator, KVCache(256 * 2**20), token_budget=2048)
        >>> kv.add(chunks); kv.state(chunks[0]).shape[3] == len(generator.ids(chunks[0].text))
    """

    def __init__(self, model, generator, cache: KVCache, token_budget: int):
        self.model = model
        self.generator = generator  # gem_rag.rag.answer_generation.AnswerGenerator: the prompt start and ids
        self.cache = cache
        self.token_budget = token_budget

    def add(self, chunks) -> None:
        ids = [c.id for c in chunks]
        compute_states(self.model, [self.generator.ids(c.text) for c in chunks], self.generator.prefix_piece().state,
                       token_budget=self.token_budget, on_state=lambda i, state: self.cache.put(ids[i], state))

    def discard(self, ids: Sequence[str]) -> None:
        self.cache.discard(ids)

    def missing(self, chunks) -> list:
        return [c for c in chunks if c.id not in self.cache]

    def state(self, chunk) -> torch.Tensor:
        """The chunk's state (computed after the prompt start, and cached, when missing)."""
        ids = self.generator.ids(chunk.text)
        state = self.cache.get(chunk.id)
        if state is None or state.shape[3] != len(ids):
            state = compute_kv(self.model, ids, prefix=self.generator.prefix_piece().state)
            self.cache.put(chunk.id, state)
        return state
