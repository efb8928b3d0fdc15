"""RagConfig: every setting of a RagPipeline, declared once, validated in one place, saved and loaded by the
same code (``to_dict`` / ``from_dict``), so a loaded pipeline behaves exactly as the saved one did.

Example:
    >>> config = RagConfig(retrieval="dense", k=4)
    >>> RagConfig.from_dict(config.to_dict()) == config
    True
    >>> config.replace(reader="chunks").reader
    'chunks'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from gem_rag.rag.fusion import DEFAULT_DENSE_WEIGHT, DEFAULT_FUSION, FUSION_METHODS

CONFIG_FORMAT = "gem_rag.rag_config/1"
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
READERS = ("sentences", "chunks")
READINGS = ("joint", "per_chunk")
ANSWER_MODES = ("extractive", "generative")
UNIT_SCOPES = ("unit", "prefix")
# settings a live pipeline cannot change (RagPipeline.configure): the index's own, the prompt's, the KV cache's
FIXED_ON_LIVE_PIPELINE = frozenset({"chunk_tokens", "chunk_overlap", "unit_scope", "prompt_template", "system_prompt",
                                    "examples", "stop_at_sentence_end", "kv_reuse", "kv_cache_bytes", "kv_cache_dir",
                                    "kv_cache_disk_bytes"})


@dataclass(frozen=True)
class RagConfig:
    """Settings of one pipeline; see docs/benchmarks.md ("RAG pipeline") for why the defaults are what they are."""

    # ---- chunking (part of the index: changing them re-indexes)
    chunk_tokens: int = 256  # longest chunk, in model tokens
    chunk_overlap: int = 32  # tokens shared by consecutive chunks
    # ---- indexing
    embed_token_budget: int = 4096  # padded tokens per embedding batch (bounds peak memory while indexing)
    unit_scope: str = "unit"  # what a sentence's GEM token attends to: its own tokens ("unit") or all before it
    # ---- retrieval
    retrieval: str = "hybrid"  # "dense" (GEM), "bm25" or "hybrid" (both, fused)
    fusion: str = DEFAULT_FUSION  # hybrid: "zscore" / "minmax" (weighted sum of normalised scores) or "rrf"
    dense_weight: float = DEFAULT_DENSE_WEIGHT  # zscore/minmax: the dense ranking's weight (BM25 gets the rest)
    rrf_k: int = 60  # rrf: the rank constant
    candidates: int = 50  # hybrid: results each retriever contributes to fusion
    # chunks retrieved per question (``answer(k=...)`` overrides it); 5: the sentence reader finds the answering
    # sentence among more candidates (76.6 % of development questions against 73.8 % at 3, docs/benchmarks.md)
    k: int = 5
    # abstain without reading when the best dense hit's cosine is below this (the model itself embedding only)
    min_dense_score: float | None = 0.45
    # ---- reading
    reader: str = "sentences"  # "sentences": find the answering sentences, then a short answer grounded in them;
    #                            "chunks": the model reads whole chunks (the options below marked "chunks")
    support_sentences: int = 1  # sentences shown as the answer's support (highlighted in their chunk)
    min_support_score: float = 0.8  # sentences: abstain when the best sentence scores below this
    lexical_weight: float = 1.0  # sentences: weight of the question's words found in a sentence, beside the cosine
    reading: str = "per_chunk"  # chunks: "per_chunk" (each chunk read alone, best answer wins) or "joint"
    answer_mode: str = "generative"  # chunks: "generative" or "extractive" (a span copied from the chunks)
    beams: int = 8  # chunks: beam width for greedy answers (1 = greedy, streamed token by token)
    prefer_spans: bool = True  # chunks, beams: prefer answers the context contains word for word
    max_new_tokens: int = 64  # longest generated answer
    stop_at_sentence_end: bool = True  # end generated answers at the first sentence end
    prompt_template: str | None = None  # the user turn with {context} then {question}; None = the default
    system_prompt: str | None = None  # None = the default instruction
    examples: tuple[tuple[str, str, str], ...] | None = None  # few-shot (context, question, answer); None = default
    # ---- KV reuse (chunks reader)
    kv_reuse: bool = False  # compute chunks' KV states at indexing and reuse them in answer prompts (exact)
    kv_cache_bytes: int = 256 * 2**20  # RAM budget of the KV cache
    kv_cache_dir: str | None = None  # optional disk tier of the KV cache
    kv_cache_disk_bytes: int = 4 * 2**30  # its budget
    def __post_init__(self) -> None:
        if self.examples is not None:
            object.__setattr__(self, "examples", tuple(tuple(e) for e in self.examples))
        if self.kv_cache_dir is not None:
            object.__setattr__(self, "kv_cache_dir", str(self.kv_cache_dir))
        for name, (check, expected) in _CHECKS.items():
            value = getattr(self, name)
            if not check(value):
                raise ValueError(f"{name} must be {expected}, got {value!r}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise ValueError(f"chunk_overlap must be an int in [0, chunk_tokens/2), got {self.chunk_overlap!r}")
        if self.examples is not None and not all(len(e) == 3 and all(isinstance(s, str) for s in e)
                                                 for e in self.examples):
            raise ValueError("examples must be (context, question, answer) string triples")

    def replace(self, **changes: Any) -> RagConfig:
        """A copy with ``changes`` (validated like a new config; unknown names are a TypeError naming them)."""
        unknown = sorted(set(changes) - self.field_names())
        if unknown:
            raise TypeError(f"unknown RagPipeline settings {unknown}; known: {sorted(self.field_names())}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls) if f.init}

    def to_dict(self) -> dict:
        """JSON-ready settings with the format version."""
        data = {name: getattr(self, name) for name in sorted(self.field_names())}
        data["examples"] = None if self.examples is None else [list(e) for e in self.examples]
        return {"format": CONFIG_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict) -> RagConfig:
        """The config ``to_dict`` wrote; settings it lacks (added later) take their defaults."""
        if data.get("format") != CONFIG_FORMAT:
            raise ValueError(f"not a saved RagConfig (format {data.get('format')!r}, expected {CONFIG_FORMAT!r})")
        return cls(**{k: v for k, v in data.items() if k != "format" and k in cls.field_names()})


def _int_in(low: int, high: float = math.inf):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
            f"an int in [{low}, {high}]")


def _number_in(low: float, high: float, optional: bool = False):
    def check(v) -> bool:
        if v is None:
            return optional
        return isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
    return check, f"a number in [{low}, {high}]" + (" or None" if optional else "")


def _one_of(options: tuple):
    return (lambda v: v in options), f"one of {options}"


def _optional_str():
    return (lambda v: v is None or isinstance(v, str)), "a str or None"


_BOOL = ((lambda v: isinstance(v, bool)), "True or False")
_CHECKS = {
    "chunk_tokens": _int_in(16, 8192), "chunk_overlap": _int_in(0, 4096), "embed_token_budget": _int_in(1),
    "unit_scope": _one_of(UNIT_SCOPES), "retrieval": _one_of(RETRIEVAL_MODES), "fusion": _one_of(FUSION_METHODS),
    "dense_weight": _number_in(0, 1), "rrf_k": _int_in(1), "candidates": _int_in(1), "k": _int_in(1, 100),
    "min_dense_score": _number_in(-1, 1, optional=True), "reader": _one_of(READERS),
    "support_sentences": _int_in(1, 10), "min_support_score": _number_in(-10, 10), "lexical_weight": _number_in(0, 10),
    "reading": _one_of(READINGS), "answer_mode": _one_of(ANSWER_MODES), "beams": _int_in(1, 64),
    "prefer_spans": _BOOL, "max_new_tokens": _int_in(1, 4096), "stop_at_sentence_end": _BOOL,
    "prompt_template": _optional_str(), "system_prompt": _optional_str(), "kv_reuse": _BOOL,
    "kv_cache_bytes": _int_in(0), "kv_cache_dir": _optional_str(), "kv_cache_disk_bytes": _int_in(0),
}
