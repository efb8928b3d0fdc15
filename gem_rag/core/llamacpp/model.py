"""GemModel on llama.cpp: one set of the GGUF's weights (re-stored as F16 by default, see
:func:`converted_gguf`) embeds and generates in one process, one model, one context.
``GemModel.from_pretrained(backend="llamacpp")`` returns this class.

- **Generation** runs the base weights. Each open generation owns a KV-cache sequence; the last prompt stays
  cached in a sequence of its own, so a new prompt starting the same way (the RAG prompt's fixed instruction)
  only decodes what differs.
- **Embedding**: the text's tokens, then the GEM token, fed as its trained input-embedding row (the GGUF's
  vocabulary lacks it) in a second batch on the same sequence, with the artefact's LoRA switched on for both
  batches (gem_rag.core.llamacpp.lora). The embedding is the last-layer state at the GEM token, as on torch.
- **Unit embeddings** (gem_rag.core.units) come from the same two batches: after the text, its unit's cached
  tokens are added to a sequence of the unit's own (no copy), and the unit's GEM token, placed after the unit,
  decodes in that sequence, so it sees exactly its unit (and a BOS sink).
- **Continuous batching**: the decode steps of concurrent generations (server requests) run as one batch
  (gem_rag.core.step_batcher).
- Tokenization is the transformers tokenizer's, so token ids, chat template, stop handling and the decode
  loop's text are the torch backend's (gem_rag.core.generation).

Not here: beam search and reusable KV states (``supports_tree_decoding`` / ``supports_kv_states`` are
False: the chunk reader's beams and ``kv_reuse`` need the torch backend); training.

Example:
    >>> model = GemModel.from_pretrained(backend="llamacpp", threads=2)
    >>> model.embed("a text").shape, model.generate("Hi", max_new_tokens=4).text
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from gem_rag.core import artefact as artefacts
from gem_rag.core.gem import add_special_tokens
from gem_rag.core.generation import Piece
from gem_rag.core.llamacpp.context import Entry, LlamaContext
from gem_rag.core.llamacpp.lora import lora_gguf
from gem_rag.core.loading import DEFAULT_MODEL_NAME, default_gguf_path
from gem_rag.core.model import GemModel, thread_budget
from gem_rag.core.step_batcher import StepBatcher

logger = logging.getLogger(__name__)


def _gguf_file(name_or_path: str | os.PathLike | None) -> tuple[Path, str]:
    if name_or_path is None:
        return default_gguf_path(), DEFAULT_MODEL_NAME
    path = Path(name_or_path).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ValueError(f"backend='llamacpp' needs a .gguf model file, got {str(name_or_path)!r}; convert a "
                         f"transformers folder with llama.cpp's convert_hf_to_gguf.py, or use backend='torch'")
    return path, path.stem


GGUF_TYPES = {"f16": 1, "q8_0": 7, "q4_0": 2}  # llama_ftype values (LLAMA_FTYPE_MOSTLY_*); "stored": the file's own
DEFAULT_GGUF_TYPE = "f16"
# Text tokens per embedding batch: one llama.cpp micro-batch. Larger batches gain no matrix speed, and in the
# unified KV cache every token's attention spans the cells of every text in the batch (masked), so they cost more.
BATCH_TOKENS = 512


def converted_gguf(path: Path, gguf_type: str, threads: int) -> Path:
    """``path`` re-stored as ``gguf_type`` (once, cached beside the other conversions), or ``path`` itself for
    ``"stored"``.

    Why F16 by default: on this AVX2 CPU the default file's Q4_1 weights decode 1.6x faster than F16 but prefill
    1.8x slower, and RAG is mostly prefill (indexing, prompts); F16 also gives the torch backend's answers on 95
    of 95 development questions (docs/benchmarks.md, "Backends")."""
    if gguf_type == "stored":
        return path
    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"gguf_type must be 'stored' (the file's own weights) or one of {sorted(GGUF_TYPES)}, "
                         f"got {gguf_type!r}")
    import ctypes
    import hashlib

    from gem_rag.core.llamacpp.context import import_llama_cpp
    from gem_rag.core.loading import cache_root

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_root() / "llamacpp" / f"{path.stem}-{key}.{gguf_type}.gguf"
    if not target.is_file():
        lib = import_llama_cpp()
        params = lib.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = GGUF_TYPES[gguf_type], True, threads
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        if lib.llama_model_quantize(str(path).encode(), str(tmp).encode(), ctypes.byref(params)) != 0:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"llama.cpp could not convert {path} to {gguf_type}")
        os.replace(tmp, target)
        logger.info("Converted %s to %s (%s)", path.name, gguf_type, target)
    return target


def _mean_token_row(gguf_path: Path) -> np.ndarray:
    """(n_embd,) mean input-embedding row of the GGUF (an untrained GEM token starts there, as on torch)."""
    import gguf

    tensor = next(t for t in gguf.GGUFReader(str(gguf_path)).tensors if t.name == "token_embd.weight")
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32).mean(axis=0)


class LlamaCppGemModel(GemModel):
    """A GemModel whose forward passes run in llama.cpp (see the module docstring)."""

    backend = "llamacpp"
    supports_kv_states = False
    supports_tree_decoding = False

    def __init__(self, context: LlamaContext, tokenizer, *, name: str, special_token_ids: Sequence[int],
                 special_rows: np.ndarray, query_instruction: str = "", max_length: int = 512,
                 card: dict | None = None):
        self.context = context
        self.special_rows = np.asarray(special_rows, dtype=np.float32)  # (n_special, n_embd)
        vocab = context.lib.llama_model_get_vocab(context.model)
        eos = [context.lib.llama_vocab_eos(vocab), context.lib.llama_vocab_eot(vocab)]
        self._init_common(tokenizer, name=name, special_token_ids=special_token_ids,
                          query_instruction=query_instruction, max_length=max_length, card=card,
                          embedding_dim=context.n_embd, context_window=context.n_ctx,
                          extra_eos=[i for i in eos if i >= 0])
        self.embedding_adapter = None
        self.batcher = StepBatcher(self._decode_steps)  # decode steps of concurrent generations, batched
        self._prompt_seq = context.acquire(1)[0]  # holds the last prompt's tokens
        self._prompt_ids: list[int] = []

    @classmethod
    def load(cls, name_or_path, *, gem_weights, num_special_tokens: int, query_instruction: str, max_length: int,
             threads: int | None, n_ctx: int, gguf_type: str | None = None) -> LlamaCppGemModel:
        """See ``GemModel.from_pretrained`` (``backend="llamacpp"``)."""
        from transformers import AutoTokenizer

        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 2 * max_length:
            raise ValueError(f"n_ctx must be an int >= 2 * max_length ({2 * max_length}), got {n_ctx!r}")
        path, name = _gguf_file(name_or_path)
        gem_weights = artefacts.resolve_gem_weights(gem_weights, name_or_path)
        card = artefacts.read_card(gem_weights) if gem_weights is not None else {}
        if card:
            num_special_tokens = int(card.get("num_special_tokens", 1))
            query_instruction = query_instruction or card.get("query_instruction", "")
        threads = thread_budget(threads) or os.cpu_count() or 1
        gguf_type = gguf_type or DEFAULT_GGUF_TYPE
        context = LlamaContext(converted_gguf(path, gguf_type, threads), n_ctx=n_ctx, threads=threads)
        if gem_weights is not None:
            context.set_lora(lora_gguf(gem_weights, n_head=context.n_head, n_head_kv=context.n_head_kv))
            rows = _special_rows(gem_weights, num_special_tokens, context.n_embd)
        else:
            rows = np.tile(_mean_token_row(path), (num_special_tokens, 1))
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        special_ids = add_special_tokens(tokenizer, num_special_tokens)
        model = cls(context, tokenizer, name=name + ("-GEM" if card else ""), special_token_ids=special_ids,
                    special_rows=rows, query_instruction=query_instruction, max_length=max_length, card=card)
        GemModel.load_count += 1
        logger.info("Loaded %s on llama.cpp (%s as %s, %d threads, %d-token context)", model.name, path.name,
                    gguf_type, threads, n_ctx)
        return model

    @property
    def device(self) -> torch.device:  # type: ignore[override]  # a property on GemModel too; mypy sees the mixins' annotation
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:  # type: ignore[override]  # as above
        return torch.float32

    # ------------------------------------------------------------------ embedding
    def _embed_batch(self, rows: list[list[int]]) -> torch.Tensor:
        """rows: token ids ending with the special tokens -> (b, dim) mean special-token state."""
        n_special = len(self.special_token_ids)
        views = []
        for row in rows:
            end = len(row) - n_special  # every GEM token sees the whole text, not the other GEM tokens
            views.append((row[:end], [(end + j, [(0, end)]) for j in range(n_special)]))
        states = self._gem_states(views)  # (b * n_special, dim)
        return torch.from_numpy(states).view(len(rows), n_special, -1).mean(dim=1)

    def _unit_forward(self, rows: list[list[int]], layouts: list) -> torch.Tensor:
        """Unit-layout rows -> (b, T, dim) last-layer states, filled at the GEM-token slots (zeros elsewhere)."""
        n_special = len(self.special_token_ids)
        views, slots = [], []
        for row, layout in zip(rows, layouts):
            text_end = layout.first_unit - n_special
            text_queries = [(text_end + j, [(0, text_end)]) for j in range(n_special)]
            unit_queries = [(layout.positions[layout.first_unit + q], ranges) for q, ranges in enumerate(layout.keys)]
            views.append((row[:text_end], text_queries + unit_queries))
            slots.append(range(text_end, layout.length))
        states = torch.from_numpy(self._gem_states(views))
        hidden = torch.zeros(len(rows), max(len(r) for r in rows), self.embedding_dim)
        start = 0
        for b, row_slots in enumerate(slots):
            hidden[b, list(row_slots)] = states[start: start + len(row_slots)]
            start += len(row_slots)
        return hidden

    def _gem_states(self, views: list[tuple[list[int], list[tuple[int, list[tuple[int, int]]]]]]) -> np.ndarray:
        """Last-layer states of GEM tokens placed after texts: ``views`` holds, per text, its token ids and its GEM
        tokens as (position, the ranges of text positions it sees); the first sees the whole text. Returns
        (all GEM tokens, dim) in order. The texts decode in one batch, each in the sequence of its first GEM token;
        every other GEM token gets a sequence holding only its ranges (shared cache cells, no copy), then all GEM
        tokens decode in a second batch, the LoRA on for both. Split in parts of at most ``BATCH_TOKENS`` text tokens
        that fit the sequence pool."""
        with self.lock:  # the sequence pool is read and taken under one lock
            group: list = []
            queries = tokens = 0
            for i, (ids, row_queries) in enumerate(views):
                if group and (queries + len(row_queries) > len(self.context.free_seqs)
                              or tokens + len(ids) > BATCH_TOKENS):
                    return np.concatenate([self._gem_states(group), self._gem_states(views[i:])])
                group.append((ids, row_queries))
                queries, tokens = queries + len(row_queries), tokens + len(ids)
            n_special = len(self.special_token_ids)
            seqs = self.context.acquire(queries)
            try:
                text, gem, first = [], [], 0
                for ids, row_queries in views:
                    text += [Entry(position=p, seq=seqs[first], token=t) for p, t in enumerate(ids)]
                    first += len(row_queries)
                self.context.decode(text, embedding=True)
                first = 0
                for _, row_queries in views:
                    for j, (position, ranges) in enumerate(row_queries):
                        if j:  # the first GEM token's sequence holds the text already
                            for start, end in ranges:
                                if end > start:
                                    self.context.share(seqs[first], seqs[first + j], start, end)
                        gem.append(Entry(position=position, seq=seqs[first + j], row=self.special_rows[j % n_special],
                                         output=True))
                    first += len(row_queries)
                return self.context.decode(gem, embedding=True)
            finally:
                self.context.release(seqs)

    def _row_logprobs(self, rows: list[list[int]], starts: list[int], token_budget: int) -> list[np.ndarray]:
        out = []
        for row, start in zip(rows, starts):
            with self.lock:
                seq = self.context.acquire(1)
                try:
                    logits = self.context.decode([Entry(position=p, seq=seq[0], token=t, output=p >= start - 1)
                                                  for p, t in enumerate(row)])  # (n_out, V)
                finally:
                    self.context.release(seq)
            logprobs = torch.log_softmax(torch.from_numpy(logits[:-1]), dim=-1)  # predictions of row[start:]
            out.append(logprobs.gather(1, torch.tensor(row[start:]).unsqueeze(1))[:, 0].numpy())
        return out

    # ------------------------------------------------------------------ generation
    def _decode_steps(self, steps: Sequence[list[Entry]]) -> list[np.ndarray]:
        """The steps of concurrent generations (their entries) in one ``llama_decode``: each one's logits (rows, V)."""
        with self.lock:
            logits = self.context.decode([entry for entries in steps for entry in entries])
        starts = np.cumsum([0] + [len(entries) for entries in steps])
        return [logits[a:b] for a, b in zip(starts[:-1], starts[1:])]

    def start_decoding(self, prompts: Sequence[Sequence[Piece]]) -> LlamaDecoding:
        """Prefill each prompt's concatenated piece ids (KV states they carry are not used: the cached last prompt
        gives the same saving for a shared prompt start)."""
        return LlamaDecoding(self, [[t for piece in prompt for t in piece.ids] for prompt in prompts])

    def close(self) -> None:
        """Free llama.cpp's model and context now (they are also freed when the object is collected)."""
        self.context.close()


class LlamaDecoding:
    """The decoding state of prompt rows on llama.cpp: one KV-cache sequence per row, ``logits`` (B, V) of each
    row's last decoded token, ``position`` the next position (of the longest row). A single row reuses the
    cached start of the model's previous prompt."""

    def __init__(self, model: LlamaCppGemModel, rows: list[list[int]]):
        self.model, context = model, model.context
        length = max(len(r) for r in rows)
        if length >= model.context_window:
            raise ValueError(f"prompt is {length} tokens, the model's context window is {model.context_window}; "
                             f"use fewer or shorter chunks")
        with model.lock:
            self.seqs = context.acquire(len(rows))
            try:
                if len(rows) == 1:
                    self.logits = self._reuse_prompt(rows[0], self.seqs[0])
                else:
                    self.logits = torch.from_numpy(context.decode(
                        [Entry(position=p, seq=seq, token=t, output=p == len(row) - 1)
                         for seq, row in zip(self.seqs, rows) for p, t in enumerate(row)]))
            except BaseException:
                context.release(self.seqs)
                raise
        model.batcher.opened()
        self.positions = [len(r) for r in rows]
        self.prompt_length = self.position = length

    def _reuse_prompt(self, ids: list[int], seq: int) -> torch.Tensor:
        """Decode ``ids`` in ``seq``, reusing the cached start of the previous prompt; cache this prompt after.
        Returns the last token's logits (1, V)."""
        model, context = self.model, self.model.context
        cached, keep = model._prompt_ids, 0
        limit = min(len(cached), len(ids) - 1)  # the last token is always decoded: its logits are needed
        while keep < limit and cached[keep] == ids[keep]:
            keep += 1
        context.share(model._prompt_seq, seq, 0, keep)
        logits = context.decode([Entry(position=p, seq=seq, token=ids[p], output=p == len(ids) - 1)
                                 for p in range(keep, len(ids))])
        context.truncate(model._prompt_seq, 0)
        context.share(seq, model._prompt_seq, 0, len(ids))
        model._prompt_ids = list(ids)
        return torch.from_numpy(logits)

    def advance(self, tokens: list[int]) -> torch.Tensor:
        """Decode one token per row; returns the logits (B, V)."""
        entries = [Entry(position=p, seq=s, token=t, output=True) for p, s, t in zip(self.positions, self.seqs, tokens)]
        self.logits = torch.from_numpy(self.model.batcher.step(entries))
        self.positions = [p + 1 for p in self.positions]
        self.position += 1
        return self.logits

    def close(self) -> None:
        if self.seqs:
            with self.model.lock:
                self.model.context.release(self.seqs)
            self.seqs = []
            self.model.batcher.closed()


def _special_rows(artefact: Path, num_special: int, n_embd: int) -> np.ndarray:
    from safetensors.numpy import load_file

    rows = load_file(str(artefact / artefacts.WEIGHTS_FILE)).get("special_embeddings")
    if rows is None or rows.shape != (num_special, n_embd):
        raise artefacts.ArtefactError(f"{artefact}: special_embeddings should be ({num_special}, {n_embd}) for this "
                                      f"model: the artefact was made for another base model")
    return rows.astype(np.float32)
