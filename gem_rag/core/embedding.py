"""The embedding half of GemModel: a text's embedding is the last-layer hidden state of the GEM token(s)
appended after it; its units' embeddings come from the same forward pass (gem_rag.core.units).

Batches are length-sorted and bounded by texts and padded tokens, so memory stays flat on long texts; the
LM head is never run (the base model's hidden states are read directly).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from gem_rag.core import units
from gem_rag.core.gem import append_special_tokens, build_gem_attention_mask

logger = logging.getLogger(__name__)

EMBED_KINDS = ("document", "query")


def _check_texts(texts: object, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty: embedding or generating from an empty text is meaningless")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"{name}[{i}] is not valid text: it holds a lone surrogate ({text[err.start]!r} at "
                             f"character {err.start}); decode your input with errors='replace'") from None
    return list(texts)


def _normalised(vector: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(vector, dim=-1).cpu().numpy()


class EmbeddingMixin:
    """GemModel's embedding methods (they use its weights, tokenizer, lock and special tokens)."""

    # set by GemModel.__init__
    hf_model: Any
    tokenizer: Any
    lock: threading.RLock
    special_token_ids: list[int]
    bos_ids: list[int]
    eos_token_ids: set[int]
    pad_token_id: int
    max_length: int
    context_window: int
    embedding_dim: int
    query_instruction: str
    device: torch.device
    dtype: torch.dtype
    embedding_pass: Callable[[], contextlib.AbstractContextManager]  # GemModel's method
    _compiled_decoder: Any = None  # set by compile_embedding_pass

    def compile_embedding_pass(self, **options: Any) -> None:
        """Run every later embedding pass through ``torch.compile(decoder, **options)`` (e.g. ``dynamic=True``).

        Off by default: on 2 CPU cores it made a query embedding 1.17x faster after 141-276 s of compiling
        (docs/compiled_query.json), which pays only in a long-running server. Generation is not compiled.
        """
        self._compiled_decoder = torch.compile(self.hf_model.base_model, **options)

    def _embedding_decoder(self) -> Any:
        """The decoder embedding passes run: the compiled one after compile_embedding_pass, else the model's."""
        return self._compiled_decoder if self._compiled_decoder is not None else self.hf_model.base_model

    def embed(
        self,
        texts: str | Sequence[str],
        kind: str = "document",
        *,
        batch_size: int = 32,
        normalize: bool = True,
        max_length: int | None = None,
        token_budget: int = 8192,
    ) -> np.ndarray:
        """Embed texts as the last-layer hidden state of the GEM token(s) appended after each text.

        ``str`` -> (dim,), list -> (n, dim) float32. Batches are length-sorted and hold at most
        ``batch_size`` texts and ``token_budget`` padded tokens, so memory stays flat on long texts.

        Example:
            >>> model.embed(["first doc", "second doc"]).shape
            (2, 576)
            >>> model.embed("where is the doc?", kind="query").shape
            (576,)
        """
        single = isinstance(texts, str)
        if isinstance(texts, (list, tuple)) and len(texts) == 0:
            return np.empty((0, self.embedding_dim), dtype=np.float32)
        items = _check_texts(texts)
        if kind not in EMBED_KINDS:
            raise ValueError(f"kind must be one of {EMBED_KINDS}, got {kind!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(token_budget, int) or token_budget < 1:
            raise ValueError(f"token_budget must be a positive int, got {token_budget!r}")
        shortest = len(self.special_token_ids) + len(self.bos_ids) + 1
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                       or max_length < shortest):
            raise ValueError(f"max_length must be None (the model's {self.max_length}) or an int >= {shortest} "
                             f"(room for one text token and the GEM token), got {max_length!r}")
        max_length = max_length or self.max_length
        if kind == "query" and self.query_instruction:
            items = [self.query_instruction + t for t in items]
        rows = self._embedding_rows(items, max_length)
        out = np.zeros((len(rows), self.embedding_dim), dtype=np.float32)
        for batch in self._length_batches(rows, batch_size, token_budget):
            vectors = self._embed_batch([rows[i] for i in batch])  # (b, dim)
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            out[batch] = vectors.float().cpu().numpy()
        return out[0] if single else out

    def _embedding_rows(self, texts: list[str], max_length: int) -> list[list[int]]:
        room = max_length - len(self.special_token_ids) - len(self.bos_ids)
        encoded = self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True).input_ids
        truncated = sum(len(ids) > room for ids in encoded)
        if truncated:
            logger.warning("%d of %d texts were longer than %d tokens and were truncated", truncated, len(texts), max_length)
        return [append_special_tokens(self.bos_ids + ids[:room], self.special_token_ids) for ids in encoded]

    @staticmethod
    def _length_batches(rows: list[list[int]], batch_size: int, token_budget: int) -> Iterator[list[int]]:
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        batch: list[int] = []
        for i in order:  # longest first, so the first row of a batch sets its padded length
            if batch and (len(batch) >= batch_size or (len(batch) + 1) * len(rows[batch[0]]) > token_budget):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _embedding_inputs(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows ending with the special tokens -> right-padded (input_ids, attention, mask), each (b, T) but the
        mask, which is the 4D GEM mask when there are several special tokens (they must not see each other)."""
        n_special = len(self.special_token_ids)
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):  # right padding: every row starts at position 0
            input_ids[i, : len(r)] = torch.tensor(r)
            attention[i, : len(r)] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        mask: torch.Tensor = attention
        if n_special > 1:
            prefix = attention.sum(dim=1) - n_special
            mask = build_gem_attention_mask(prefix, n_special, attention, dtype=self.dtype, sink_tokens=len(self.bos_ids))
        return input_ids, attention, mask

    def _special_states(self, hidden: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """(b, T, dim) last hidden states -> (b, dim) float mean over each row's special tokens (ends from the mask)."""
        n_special = len(self.special_token_ids)
        ends = attention.sum(dim=1)  # (b,) real length
        positions = ends.unsqueeze(1) - n_special + torch.arange(n_special, device=hidden.device)  # (b, n)
        special_states = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # (b, n, dim)
        return special_states.float().mean(dim=1)

    def _embed_batch(self, rows: list[list[int]]) -> torch.Tensor:
        """rows: token ids ending with the special tokens -> (b, dim) mean special-token hidden state."""
        input_ids, attention, mask = self._embedding_inputs(rows)
        with self.lock, torch.inference_mode(), self.embedding_pass():
            hidden = self._embedding_decoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (b, T, dim)
        return self._special_states(hidden, attention)

    def embed_with_units(self, texts: Sequence[str], unit_spans: Sequence[Sequence[tuple[int, int]]], *,
                         scope: str = "unit", batch_size: int = 32, token_budget: int = 8192
                         ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Document embeddings of ``texts`` and, from the same forward pass, of their units: ``unit_spans[i]``
        are character spans (start, end) of ``texts[i]`` (see gem_rag.core.units). Returns the (n, dim) text
        vectors (equal to ``embed(texts)``) and one (m_i, dim) array per text, L2-normalised; a unit cut off by
        ``max_length`` gets a zero row.

        Example:
            >>> vectors, units = model.embed_with_units(["Run it. Then stop."], [[(0, 7), (8, 18)]])
            >>> units[0].shape
            (2, 576)
        """
        items = _check_texts(list(texts))
        if len(unit_spans) != len(items):
            raise ValueError(f"got {len(items)} texts but {len(unit_spans)} lists of unit spans")
        n_special, bos = len(self.special_token_ids), len(self.bos_ids)
        room = self.max_length - n_special - bos
        encoded = self.tokenizer(items, add_special_tokens=False, return_offsets_mapping=True,
                                 split_special_tokens=True)  # "<|gem_0|>" in a text is text, not the token
        rows, layouts = [], []
        for ids, offsets, spans in zip(encoded.input_ids, encoded.offset_mapping, unit_spans):
            ids, offsets = ids[:room], offsets[:room]
            layout = units.unit_layout(ids, units.char_to_token_spans(offsets, spans), n_special, bos, scope)
            rows.append(self.bos_ids + ids + self.special_token_ids * (1 + sum(1 for s in layout.unit_slots if s)))
            layouts.append(layout)
        text_out = np.zeros((len(rows), self.embedding_dim), dtype=np.float32)
        unit_out = [np.zeros((len(s), self.embedding_dim), dtype=np.float32) for s in unit_spans]
        for batch in self._length_batches(rows, batch_size, token_budget):
            hidden = self._unit_forward([rows[i] for i in batch], [layouts[i] for i in batch])  # (b, T, dim)
            for row, i in enumerate(batch):
                layout = layouts[i]
                text_slots = list(range(layout.first_unit - n_special, layout.first_unit))
                text_out[i] = _normalised(hidden[row, text_slots].mean(dim=0))
                for u, slots in enumerate(layout.unit_slots):
                    if slots:  # no slots: the unit was truncated away
                        unit_out[i][u] = _normalised(hidden[row, slots].mean(dim=0))
        return text_out, unit_out

    def _unit_forward(self, rows: list[list[int]], layouts: list) -> torch.Tensor:
        """Right-padded forward pass of unit-layout rows -> (b, T, dim) last hidden states (float)."""
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, layout) in enumerate(zip(rows, layouts)):
            input_ids[i, : len(r)] = torch.tensor(r)
            positions[i, : len(r)] = torch.tensor(layout.positions)
        mask = units.unit_mask(layouts, len(self.special_token_ids), len(self.bos_ids), self.dtype)
        with self.lock, torch.inference_mode(), self.embedding_pass():
            hidden = self._embedding_decoder()(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                               position_ids=positions.to(self.device)).last_hidden_state
        return hidden.float()
