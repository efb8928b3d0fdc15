"""Vector stores behind one small interface, and FaissStore, the embedded default.

Adding a store is one new file: subclass :class:`VectorStore`, set ``kind`` (its registry name), implement
the abstract methods, ``save(folder)`` (write what reopens it into an index version folder: its data, or
just where its server is) and the classmethod ``open(description, folder)`` (the inverse, given what
``describe()`` returned and that folder). Defining the class registers it; a pipeline saved with it reopens
through :func:`open_store` with no edit to the pipeline. ``tests/test_rag_stores.py`` adds a numpy store
that way.

Example:
    >>> store = FaissStore(dim=576)
    >>> store.add(["a"], vectors, [Chunk("a", "text", {})])
    >>> store.search(query_vector, k=3)          # [(Chunk, score), ...], best first
    >>> store.persist("index/"); FaissStore.load("index/")
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar
from collections.abc import Sequence

import numpy as np

from gem_rag.rag.sentences import Unit
from gem_rag.rag.storage import CorruptIndexError, IndexMismatchError, current_version, read_json, write_version
from gem_rag.rag.types import Chunk

logger = logging.getLogger(__name__)

FAISS_FORMAT = "gem_rag.faiss/1"


class VectorStore(ABC):
    """Chunks with their (unit-norm) vectors, searchable by inner product / cosine.

    ``manifest`` holds what the vectors were made with (model, embedding_dim, gem_artefact, chunking);
    the pipeline fills it and checks it on load so vectors of different models are never mixed.
    """

    manifest: dict
    kind: ClassVar[str] = ""  # registry name (saved in the pipeline's description of its store)
    writes_through: ClassVar[bool] = False  # True: every change is stored at once (a database), not by ``save``

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            STORE_KINDS[cls.kind] = cls

    @abstractmethod
    def add(self, ids: Sequence[str], vectors: np.ndarray, chunks: Sequence[Chunk]) -> None:
        """Insert or replace (same id) chunks with their vectors, shape (n, dim)."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""

    @abstractmethod
    def search(self, vector: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        """The ``k`` nearest chunks to ``vector`` (dim,) as (chunk, similarity), best first."""

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks with these ids, in that order (missing ids left out)."""

    @abstractmethod
    def ids(self) -> list[str]:
        """Every stored id."""

    @abstractmethod
    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) stored vectors of these ids, in that order; KeyError naming an unknown id."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write what reopens this store into ``folder`` (an index version folder being written)."""

    @classmethod
    @abstractmethod
    def open(cls, description: dict, folder: Path) -> VectorStore:
        """Reopen the store that ``describe()`` described and ``save(folder)`` wrote."""

    def persist(self, folder: str | Path) -> None:
        """Write the store to ``folder`` as a new version, atomically (see gem_rag.rag.storage)."""
        def write(tmp: Path) -> None:
            self.save(tmp)
            (tmp / STORE_FILE).write_text(json.dumps(self.describe()))

        write_version(folder, write)

    @classmethod
    def load(cls, folder: str | Path) -> VectorStore:
        """Reopen a store written by :meth:`persist`."""
        version = current_version(folder)
        description = read_json(version / STORE_FILE) if (version / STORE_FILE).is_file() else {"kind": cls.kind}
        return open_store(description, version)

    def all_chunks(self) -> list[Chunk]:
        return self.get(self.ids())

    def save_units(self, ids: Sequence[str], units: Sequence[Sequence[Unit]], vectors: Sequence[np.ndarray]) -> None:
        """Keep these stored chunks' units and (m, dim) unit vectors in the store itself, replacing what it kept
        for them, so every process that opens the store reads them (:meth:`load_units`) instead of embedding
        them again. The default keeps nothing: the pipeline's UnitIndex holds them and saves them with the index
        version. A store shared by processes (ChromaStore) keeps them, and drops a chunk's units with it."""
        return None

    def load_units(self, ids: Sequence[str]) -> dict[str, tuple[list[Unit], np.ndarray]]:
        """chunk id -> (units, (m, dim) float32 vectors) kept by :meth:`save_units`, for those of ``ids`` the
        store has them for (the default: none)."""
        return {}

    def describe(self) -> dict:
        """JSON-able description from which :func:`open_store` reopens this store (saved by the pipeline)."""
        return {"kind": self.kind}


STORE_FILE = "store.json"
STORE_KINDS: dict[str, type[VectorStore]] = {}
_STORE_MODULES = {"ChromaStore": "gem_rag.rag.chroma"}  # stores in modules that import an optional extra


def open_store(description: dict, folder: Path) -> VectorStore:
    """Reopen a store from its ``describe()`` output and the version folder its ``save`` wrote."""
    kind = description.get("kind")
    if kind not in STORE_KINDS and kind in _STORE_MODULES:
        import importlib

        importlib.import_module(_STORE_MODULES[kind])
    if kind not in STORE_KINDS:
        raise IndexMismatchError(f"unknown store kind {kind!r} (known: {sorted(STORE_KINDS)}); import the module "
                                 f"that defines it before loading")
    return STORE_KINDS[kind].open(description, folder)


def check_vectors(ids: Sequence[str], vectors: np.ndarray, chunks: Sequence[Chunk], dim: int | None) -> np.ndarray:
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or len(chunks) != len(ids):
        raise ValueError(f"add() needs as many ids, vectors (n, dim) and chunks: got {len(ids)} ids, "
                         f"vectors {vectors.shape}, {len(chunks)} chunks")
    if dim is not None and vectors.shape[1] != dim:
        raise IndexMismatchError(f"vectors have dimension {vectors.shape[1]} but this store holds dimension {dim}: "
                                 f"they come from another embedding model; use a new store")
    if len(set(ids)) != len(ids):
        raise ValueError("add() got duplicate ids in one call")
    return vectors


class FaissStore(VectorStore):
    kind = "FaissStore"
    """Embedded FAISS store: exact ``IndexFlatIP`` while small, HNSW once it holds ``approximate_threshold``
    vectors (switched automatically). Vectors should be unit-norm (inner product = cosine).

    Args:
        dim: embedding dimension (``None``: taken from the first ``add``).
        approximate_threshold: size at which search becomes approximate (HNSW, M=``hnsw_m``).
        ef_search: HNSW search breadth (recall vs speed).
    """

    def __init__(self, dim: int | None = None, *, approximate_threshold: int = 50_000, hnsw_m: int = 32,
                 ef_search: int = 128):
        try:
            import faiss  # noqa: F401
        except ImportError:
            raise ImportError('FaissStore needs faiss: pip install "faiss-cpu>=1.8"') from None
        self.dim = dim
        self.approximate_threshold = approximate_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.manifest: dict = {}
        self._chunks: dict[str, Chunk] = {}
        self._labels: dict[str, int] = {}  # chunk id -> faiss int64 label
        self._by_label: dict[int, str] = {}
        self._next_label = 0
        self._removed: set[int] = set()  # HNSW cannot delete: tombstones filtered at search time
        self._index = None

    # ------------------------------------------------------------------ index structure
    @property
    def index_type(self) -> str:
        return "hnsw" if self._index is not None and self._is_hnsw(self._index) else "flat"

    @staticmethod
    def _is_hnsw(index) -> bool:
        import faiss

        return isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat)

    def _new_index(self, approximate: bool):
        import faiss

        if approximate:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def _live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([lab for lab in self._by_label if lab not in self._removed], dtype=np.int64)
        if not len(labels):
            return labels, np.zeros((0, self.dim), dtype=np.float32)
        return labels, np.stack([self._index.reconstruct(int(lab)) for lab in labels])

    def _rebuild(self, approximate: bool) -> None:
        labels, vectors = self._live_vectors()
        index = self._new_index(approximate)
        if len(labels):
            index.add_with_ids(vectors, labels)
        self._index = index
        self._by_label = {lab: cid for lab, cid in self._by_label.items() if lab not in self._removed}
        self._removed.clear()
        logger.info("FaissStore rebuilt as %s with %d vectors", self.index_type, len(labels))

    # ------------------------------------------------------------------ VectorStore
    def add(self, ids: Sequence[str], vectors: np.ndarray, chunks: Sequence[Chunk]) -> None:
        ids = list(ids)
        vectors = check_vectors(ids, vectors, chunks, self.dim)
        if not ids:
            return
        if self._index is None:  # the first add: check_vectors has matched a dim given at construction
            self.dim = vectors.shape[1]
            self._index = self._new_index(False)
        self.delete([i for i in ids if i in self._chunks])  # replace = delete + add
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._next_label += len(ids)
        self._index.add_with_ids(vectors, labels)
        for chunk_id, label, chunk in zip(ids, labels.tolist(), chunks):
            self._labels[chunk_id] = label
            self._by_label[label] = chunk_id
            self._chunks[chunk_id] = chunk
        if self.index_type == "flat" and len(self) >= self.approximate_threshold:
            self._rebuild(approximate=True)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in ids if i not in self._labels]
        if missing:
            raise KeyError(f"no stored vector for chunk id {missing[0]!r}")
        if not ids:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([self._index.reconstruct(self._labels[i]) for i in ids]).astype(np.float32)

    def delete(self, ids: Sequence[str]) -> None:
        labels = []
        for chunk_id in ids:
            if chunk_id in self._labels:
                labels.append(self._labels.pop(chunk_id))
                del self._chunks[chunk_id]
        if not labels:
            return
        if self.index_type == "hnsw":  # HNSW cannot remove: tombstone, rebuild when they pile up
            self._removed.update(labels)
            if len(self._removed) > 0.2 * len(self._by_label):
                self._rebuild(approximate=len(self) >= self.approximate_threshold)
        else:
            self._index.remove_ids(np.asarray(labels, dtype=np.int64))
            for label in labels:
                del self._by_label[label]

    def search(self, vector: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if not len(self):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise IndexMismatchError(f"query vector has dimension {query.shape[1]}, the store holds {self.dim}")
        fetch = min(k + len(self._removed), self._index.ntotal)
        scores, labels = self._index.search(query, fetch)
        out = []
        for score, label in zip(scores[0].tolist(), labels[0].tolist()):
            chunk_id = self._by_label.get(label)
            if chunk_id is not None and label not in self._removed:
                out.append((self._chunks[chunk_id], float(score)))
        return out[:k]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return [self._chunks[i] for i in ids if i in self._chunks]

    def ids(self) -> list[str]:
        return list(self._chunks)

    def __len__(self) -> int:
        return len(self._chunks)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        """Write the store's files into an existing (temporary) folder."""
        import faiss

        if self.index_type == "hnsw" and self._removed:
            self._rebuild(approximate=True)
        order = list(self._chunks)
        if self._index is not None:
            faiss.write_index(self._index, str(folder / "index.faiss"))
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as out:
            for chunk_id in order:
                chunk = self._chunks[chunk_id]
                out.write(json.dumps({"id": chunk_id, "label": self._labels[chunk_id], "text": chunk.text,
                                      "metadata": chunk.metadata}, ensure_ascii=False) + "\n")
        manifest = {**self.manifest, "format": FAISS_FORMAT, "embedding_dim": self.dim, "count": len(order),
                    "index_type": self.index_type, "approximate_threshold": self.approximate_threshold,
                    "hnsw_m": self.hnsw_m, "ef_search": self.ef_search, "next_label": self._next_label}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))

    @classmethod
    def open(cls, description: dict, folder: Path) -> FaissStore:
        """The store :meth:`save` wrote into ``folder`` (raises CorruptIndexError / IndexMismatchError)."""
        import faiss

        manifest = read_json(folder / "manifest.json")
        if manifest.get("format") != FAISS_FORMAT:
            raise IndexMismatchError(f"{folder} holds a {manifest.get('format')!r} index, not a FaissStore ({FAISS_FORMAT})")
        store = cls(manifest.get("embedding_dim"), approximate_threshold=manifest["approximate_threshold"],
                    hnsw_m=manifest["hnsw_m"], ef_search=manifest["ef_search"])
        store.manifest = {k: v for k, v in manifest.items()
                          if k not in ("format", "count", "index_type", "approximate_threshold", "hnsw_m",
                                       "ef_search", "next_label")}
        store._next_label = int(manifest["next_label"])
        try:
            rows = [json.loads(line) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
        except (OSError, json.JSONDecodeError) as err:
            raise CorruptIndexError(f"{folder / 'chunks.jsonl'} is unreadable ({err}); the index is damaged") from None
        if rows:
            try:
                store._index = faiss.read_index(str(folder / "index.faiss"))
            except RuntimeError as err:
                raise CorruptIndexError(f"{folder / 'index.faiss'} is unreadable: {str(err).splitlines()[0]}") from None
            if store._index.d != store.dim:
                raise CorruptIndexError(f"{folder}: index.faiss has dimension {store._index.d}, manifest says {store.dim}")
        for row in rows:
            store._chunks[row["id"]] = Chunk(row["id"], row["text"], row["metadata"])
            store._labels[row["id"]] = row["label"]
            store._by_label[row["label"]] = row["id"]
        if len(rows) != manifest["count"] or (rows and store._index.ntotal != len(rows)):
            raise CorruptIndexError(f"{folder}: manifest says {manifest['count']} chunks, found {len(rows)} chunks and "
                                    f"{store._index.ntotal if rows else 0} vectors; the index is damaged")
        return store
