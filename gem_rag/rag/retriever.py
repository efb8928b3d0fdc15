"""Retriever: the k best chunks for a question from dense (the embedder's vectors in the store), BM25, or
both fused (gem_rag.rag.fusion).

The BM25 index is built from the store's chunks on first use and rebuilt after the store changes through
this pipeline (``invalidate``); in a store shared by processes it does not follow the changes of the others
until it is rebuilt (the chunks they deleted are left out of the results). The result carries the question's
vector, so the reader compares sentences with it without embedding the question again, and the best dense
score, which tells an off-topic question. The vectors of the last ``QUERY_CACHE`` questions are kept (they depend on
the embedder only, not on the index), so a question asked again, or ranked again in another mode, is not embedded
again.

Example:
    >>> retriever = Retriever(store, model, RagConfig())
    >>> result = retriever.retrieve("open a file", k=3)
    >>> [(r.rank, r.chunk.metadata["source"]) for r in result.chunks], result.best_dense
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from gem_rag.rag.bm25 import BM25Index
from gem_rag.rag.config import RagConfig
from gem_rag.rag.fusion import fuse
from gem_rag.rag.stores import VectorStore
from gem_rag.rag.types import Chunk, RetrievedChunk

QUERY_CACHE = 256  # question vectors kept (576 floats each for SmolLM2: ~0.6 MB)
DEFINING_CANDIDATES = 20  # chunks BM25 ranks first for a defined term, searched for the sentence defining it


@dataclass
class Retrieval:
    """What one retrieval found: the chunks, the question's vector (None for BM25 only) and the best dense
    hit's cosine (None without a dense ranking or when the store is empty)."""

    chunks: list[RetrievedChunk]
    query_vector: np.ndarray | None
    best_dense: float | None


class Retriever:
    def __init__(self, store: VectorStore, embedder, config: RagConfig):
        self.store = store
        self.embedder = embedder
        self.config = config
        self._bm25: tuple[BM25Index, list[str]] | None = None
        self._leads: dict[str, Chunk] | None = None  # document title (normalised) -> its first chunk
        self._lock = threading.RLock()
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # question -> vector, oldest first

    def invalidate(self) -> None:
        """The store changed: rebuild BM25 on next use."""
        with self._lock:
            self._bm25 = None
            self._leads = None

    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector (a copy: callers may change it), from the cache when it was asked lately."""
        with self._lock:
            cached = self._query_vectors.get(question)
            if cached is not None:
                self._query_vectors.move_to_end(question)
                return cached.copy()
        vector = np.asarray(self.embedder.embed(question, kind="query"), dtype=np.float32)
        with self._lock:
            self._query_vectors[question] = vector.copy()
            while len(self._query_vectors) > QUERY_CACHE:
                self._query_vectors.popitem(last=False)
        return vector

    def retrieve(self, question: str, k: int) -> Retrieval:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        mode = self.config.retrieval
        with self._lock:
            if not len(self.store):
                return Retrieval([], None, None)
            fetch = max(k, self.config.candidates) if mode == "hybrid" else k
            query = self.embed_query(question) if mode != "bm25" else None
            rankings = self.rankings(question, fetch, query)
            if mode == "hybrid":
                scored = fuse(rankings, method=self.config.fusion, dense_weight=self.config.dense_weight,
                              rrf_k=self.config.rrf_k)[:k]
            else:
                scored = rankings[0][:k]
            chunks = {c.id: c for c in self.store.get([i for i, _ in scored])}
        scored = [(i, s) for i, s in scored if i in chunks]  # BM25 hits deleted since it was built, by another process
        results = [RetrievedChunk(chunks[i], float(s), rank) for rank, (i, s) in enumerate(scored, start=1)]
        best_dense = rankings[0][0][1] if query is not None and rankings[0] else None
        return Retrieval(results, query, best_dense)

    def rankings(self, question: str, fetch: int, query: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
        """The (chunk id, score) rankings of the retrievers in use ([dense, BM25] for hybrid), ``fetch`` long
        each; ``query`` is the question's vector when already computed."""
        mode = self.config.retrieval
        rankings: list[list[tuple[str, float]]] = []
        if mode in ("dense", "hybrid"):
            query = self.embed_query(question) if query is None else query
            rankings.append([(c.id, s) for c, s in self.store.search(query, fetch)])
        if mode in ("bm25", "hybrid"):
            bm25, row_ids = self._bm25_index()
            rankings.append([(row_ids[row], s) for row, s in bm25.search(question, fetch)])
        return rankings

    def lead_chunk(self, title: str) -> Chunk | None:
        """The first chunk of the document titled ``title`` (case and articles aside), if one is stored: where an
        article or a tutorial page defines its subject."""
        with self._lock:
            self._bm25_index()
            assert self._leads is not None  # built with the BM25 index, from the same scan of the store
            lead = self._leads.get(_title_key(title))
        if lead is not None and self.store.writes_through and not self.store.get([lead.id]):
            return None  # deleted since the scan, by another process on the store
        return lead

    def defining_chunk(self, term: str, defines: Callable[[str], bool]) -> Chunk | None:
        """The chunk BM25 ranks best for ``term``, among its first DEFINING_CANDIDATES, whose text ``defines``
        accepts (holds a sentence that defines the term), else None."""
        with self._lock:
            index, ids = self._bm25_index()
            rows = [row for row, _ in index.search(term, DEFINING_CANDIDATES)]
        return next((chunk for chunk in self.store.get([ids[row] for row in rows]) if defines(chunk.text)), None)

    def stem_idf(self, stem: str) -> float:
        """The rarity of a word stem in the stored chunks (see BM25Index.stem_idf)."""
        with self._lock:
            return self._bm25_index()[0].stem_idf(stem)

    def _bm25_index(self) -> tuple[BM25Index, list[str]]:
        if self._bm25 is None:  # one scan of the store serves BM25 and the documents' first chunks
            chunks = self.store.all_chunks()
            self._bm25 = (BM25Index([c.text for c in chunks]), [c.id for c in chunks])
            leads: dict[str, Chunk] = {}
            for chunk in chunks:
                key = _title_key(str(chunk.metadata.get("title", "")))
                if key and (key not in leads or chunk.metadata.get("start", 0) < leads[key].metadata.get("start", 0)):
                    leads[key] = chunk
            self._leads = leads
        return self._bm25


def _title_key(title: str) -> str:
    return re.sub(r"^(?:the|an?)\s+", "", " ".join(title.lower().split())).strip(" .:")
