"""One llama.cpp model and one context, through ``llama-cpp-python``'s low-level API: every decode call, the
pool of KV-cache sequences, and the switch between generation passes (base weights, logits) and embedding
passes (the GEM LoRA on, last-layer states).

Attention follows sequences: a token sees the cached tokens of its sequence at an earlier or equal position.
A cached token may belong to several sequences (the KV cache is unified): :meth:`LlamaContext.share` adds a
sequence to cached tokens, which is how one pass gives a text's GEM token the whole text and a unit's GEM
token only its unit (see gem_rag.core.llamacpp.model). Every entry of a batch names one sequence: entries
naming several in one batch were measured to attend wrongly (embeddings off by cosine 0.92-0.97).

Example:
    >>> context = LlamaContext(gguf_path, n_ctx=4096, threads=2)
    >>> logits = context.decode([Entry(token=1, position=0, seq=s, output=True)])    # (1, vocab)
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

INSTALL_HINT = ('pip install "gem-rag[llamacpp]" (llama-cpp-python builds from source: a C++ compiler and cmake '
                'are needed, ~10 min)')
POOLING_UNSPECIFIED = -1  # the model's own: none for a causal LM (one output row per token); naming NONE only adds a warning
LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml's WARN and ERROR; the rest (model loading) is DEBUG


def import_llama_cpp():
    """The ``llama_cpp`` module, or an ImportError saying how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise ImportError(f"backend='llamacpp' needs llama-cpp-python: {INSTALL_HINT}") from None
    return llama_cpp


@dataclass(frozen=True)
class Entry:
    """One token of a batch: a token id, or an input-embedding row (for the GEM token, which the GGUF's vocabulary
    lacks); its position; its sequence; whether its output (logits or state) is read."""

    position: int
    seq: int
    token: int = -1
    row: np.ndarray | None = None  # (n_embd,) float32 when the entry is an input embedding
    output: bool = False


class LlamaContext:
    """A llama.cpp model, its context and the optional GEM LoRA; callers hold the GemModel's lock."""

    def __init__(self, gguf_path: Path, *, n_ctx: int, threads: int, n_seq_max: int = 64,
                 lora_path: Path | None = None):
        lib = import_llama_cpp()
        self.lib = lib
        self.path = gguf_path
        _route_logs(lib)
        lib.llama_backend_init()
        self.model = lib.llama_model_load_from_file(str(gguf_path).encode(), lib.llama_model_default_params())
        if not self.model:
            raise ValueError(f"llama.cpp could not load {gguf_path}: is it a GGUF model file?")
        self.context_train = lib.llama_model_n_ctx_train(self.model)
        if n_ctx > self.context_train:
            logger.info("n_ctx %d is past the model's trained context: using %d", n_ctx, self.context_train)
            n_ctx = self.context_train
        params = lib.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_ubatch = min(512, n_ctx)
        params.n_seq_max = n_seq_max
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True  # tokens shared by several sequences
        params.embeddings = False
        params.pooling_type = POOLING_UNSPECIFIED
        self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise MemoryError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.memory = lib.llama_get_memory(self.ctx)
        self.n_ctx = n_ctx
        self.n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model))
        self.n_embd = lib.llama_model_n_embd(self.model)
        self.n_head = lib.llama_model_n_head(self.model)
        self.n_head_kv = lib.llama_model_n_head_kv(self.model)
        self.free_seqs = list(range(n_seq_max - 1, -1, -1))  # a stack; pop() gives the lowest id
        self.lora = None
        if lora_path is not None:
            self.set_lora(lora_path)

    def set_lora(self, path: Path) -> None:
        self.lora = self.lib.llama_adapter_lora_init(self.model, str(path).encode())
        if not self.lora:
            raise ValueError(f"llama.cpp could not load the LoRA adapter {path}")

    # ------------------------------------------------------------------ sequences
    def acquire(self, n: int = 1) -> list[int]:
        """``n`` unused sequence ids (release them when done)."""
        if n > len(self.free_seqs):
            raise RuntimeError(f"needs {n} KV-cache sequences, {len(self.free_seqs)} are free: too many requests "
                               f"or units at once; lower the batch size")
        return [self.free_seqs.pop() for _ in range(n)]

    def release(self, seqs: Sequence[int]) -> None:
        """Drop the sequences' cached tokens and return the ids to the pool."""
        for seq in seqs:
            self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
            self.free_seqs.append(seq)

    def truncate(self, seq: int, keep: int) -> None:
        """Drop the sequence's cached tokens at positions >= ``keep``."""
        self.lib.llama_memory_seq_rm(self.memory, seq, keep, -1)

    def share(self, source: int, target: int, start: int, end: int) -> None:
        """Make the cached tokens of ``source`` at positions ``start <= p < end`` also tokens of ``target``
        (no copy: a cell can belong to several sequences)."""
        self.lib.llama_memory_seq_cp(self.memory, source, target, start, end)

    # ------------------------------------------------------------------ decoding
    def decode(self, entries: Sequence[Entry], *, embedding: bool = False) -> np.ndarray:
        """Run ``entries`` (all tokens or all embedding rows) through the model, adding them to the KV cache.

        Returns the outputs of the entries marked ``output``, in order: (n_out, vocab) logits of the base model,
        or with ``embedding`` (n_out, n_embd) last-layer states, the LoRA on for every entry. (llama.cpp's
        embedding mode outputs every token of a batch, so it is switched on only for a batch that reads outputs:
        an embedding pass decodes the text without outputs, then the GEM tokens.)
        """
        lib = self.lib
        as_rows = entries[0].row is not None
        batch = lib.llama_batch_init(len(entries), self.n_embd if as_rows else 0, 1)
        try:
            outputs = self._fill(batch, entries, as_rows)
            if embedding:
                self._switch_embedding(True, states=bool(outputs))
            try:
                status = lib.llama_decode(self.ctx, batch)
            finally:
                if embedding:
                    self._switch_embedding(False, states=False)
            if status != 0:
                raise RuntimeError(f"llama.cpp decode failed (status {status}): "
                                   + ("the KV cache is full; shorten the inputs or raise n_ctx" if status == 1 else
                                      "see the log"))
            read = lib.llama_get_embeddings_ith if embedding else lib.llama_get_logits_ith
            width = self.n_embd if embedding else self.n_vocab
            return np.stack([np.ctypeslib.as_array(read(self.ctx, i), shape=(width,)).copy() for i in outputs]) \
                if outputs else np.zeros((0, width), dtype=np.float32)
        finally:
            lib.llama_batch_free(batch)

    def _fill(self, batch, entries: Sequence[Entry], as_rows: bool) -> list[int]:
        outputs = []
        width = self.n_embd * ctypes.sizeof(ctypes.c_float)
        base = ctypes.cast(batch.embd, ctypes.c_void_p).value if as_rows else 0
        for i, entry in enumerate(entries):
            if as_rows:
                row = np.ascontiguousarray(entry.row, dtype=np.float32)
                ctypes.memmove(base + i * width, row.ctypes.data, width)
            else:
                batch.token[i] = entry.token
            batch.pos[i] = entry.position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = entry.seq
            batch.logits[i] = entry.output
            if entry.output:
                outputs.append(i)
        batch.n_tokens = len(entries)
        return outputs

    def _switch_embedding(self, on: bool, *, states: bool) -> None:
        self.lib.llama_set_embeddings(self.ctx, states)
        if self.lora is not None:
            if on:
                adapters = (self.lib.llama_adapter_lora_p_ctypes * 1)(self.lora)
                scales = (ctypes.c_float * 1)(1.0)
                self.lib.llama_set_adapters_lora(self.ctx, adapters, 1, scales)
            else:
                self.lib.llama_set_adapters_lora(self.ctx, None, 0, None)

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.lib.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            self.lib.llama_model_free(self.model)
            self.model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


_log_callback = None  # kept alive: llama.cpp holds the C pointer


def _route_logs(lib) -> None:
    """Send llama.cpp's own log lines (model loading, warnings) to Python logging instead of stderr."""
    global _log_callback
    if _log_callback is not None:
        return
    llama_logger = logging.getLogger("gem_rag.llamacpp")

    def forward(level: int, text: bytes, _user_data) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            llama_logger.log(LOG_LEVELS.get(level, logging.DEBUG), "%s", message)

    _log_callback = lib.llama_log_callback(forward)
    lib.llama_log_set(_log_callback, ctypes.c_void_p(0))
