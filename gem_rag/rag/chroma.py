"""ChromaStore: the VectorStore interface on a Chroma collection (cosine space), embedded
(``PersistentClient``) or over HTTP to a server started with ``chroma run``.

The chunks' units (sentences, list items, code blocks) and unit vectors, which the sentence reader needs, are
kept in a sibling collection ``<collection>__units``: one record per unit, id ``<chunk id>#<n>``, its chunk id,
position, offsets and kind in its metadata. Every process on the collection (``gem-rag serve`` replicas) reads
there the units of the chunks it retrieves instead of embedding them again. Deleting or replacing a chunk
deletes its units; a chunk with no units (markup only) has no record, so each process embeds it once. To start
a collection over, delete both collections.

Example:
    >>> store = ChromaStore(path="chroma-db")                       # embedded, persisted in that folder
    >>> store = ChromaStore(host="127.0.0.1", port=8000)            # a running `chroma run --port 8000`
    >>> rag = RagPipeline(store=store)
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from gem_rag.rag.sentences import Unit
from gem_rag.rag.storage import IndexMismatchError, RagIndexError
from gem_rag.rag.stores import VectorStore, check_vectors
from gem_rag.rag.types import Chunk

MANIFEST_PREFIX = "gem_rag_"
META_KEY = "gem_rag_metadata"  # the chunk's full metadata as JSON (Chroma metadata values must be scalars)
UNITS_SUFFIX = "__units"  # the sibling collection holding the chunks' units
LONGEST_NAME = 63  # characters of a collection name (chromadb's check_index_name)
ID_BATCH = 1000  # chunk ids per request that selects units by chunk id


class ChromaUnavailableError(RagIndexError):
    """No Chroma server answers at the address given."""


def _import_chromadb():
    try:
        import chromadb
    except ImportError:
        raise ImportError('ChromaStore needs chromadb: pip install "gem-rag[chroma]"') from None
    return chromadb


class ChromaStore(VectorStore):
    """Chunks and vectors in a Chroma collection using cosine distance (score = 1 - distance).

    Args:
        path: folder of an embedded persistent Chroma database.
        host, port: a Chroma server instead (``chroma run --path DB --port PORT``).
        collection: collection name.
        client: an existing chromadb client (overrides path/host).
    """

    kind = "ChromaStore"
    writes_through = True

    def __init__(self, path: str | Path | None = None, *, host: str | None = None, port: int = 8000,
                 collection: str = "gem_rag", client=None):
        chromadb = _import_chromadb()
        if len(collection + UNITS_SUFFIX) > LONGEST_NAME:
            raise ValueError(f"collection name {collection!r} is too long: give at most "
                             f"{LONGEST_NAME - len(UNITS_SUFFIX)} characters (its units go in "
                             f"'{collection}{UNITS_SUFFIX}', and Chroma takes {LONGEST_NAME})")
        if client is None:
            if host is not None:
                client = _http_client(chromadb, host, port)
            elif path is not None:
                client = chromadb.PersistentClient(path=str(path))
            else:
                raise ValueError("ChromaStore needs path= (embedded database folder), host=/port= (a `chroma run` "
                                 "server) or client=")
        self.path = str(path) if path is not None and host is None else None
        self.host, self.port, self.name = host, port, collection
        self.client = client
        self._collection = client.get_or_create_collection(collection, configuration={"hnsw": {"space": "cosine"}},
                                                           embedding_function=None)
        space = (self._collection.configuration_json or {}).get("hnsw", {}) or {}
        if space.get("space", "cosine") != "cosine":
            raise IndexMismatchError(f"Chroma collection {collection!r} uses {space.get('space')!r} distance; "
                                     f"ChromaStore needs cosine: use another collection name")
        self._units = client.get_or_create_collection(collection + UNITS_SUFFIX, embedding_function=None)

    # ------------------------------------------------------------------ manifest in collection metadata
    @property
    def manifest(self) -> dict:
        metadata = self._collection.metadata or {}
        return {k[len(MANIFEST_PREFIX):]: v for k, v in metadata.items() if k.startswith(MANIFEST_PREFIX)}

    @manifest.setter
    def manifest(self, values: dict) -> None:
        metadata = {k: v for k, v in (self._collection.metadata or {}).items() if not k.startswith("hnsw:")}
        metadata.update({MANIFEST_PREFIX + k: v for k, v in values.items() if isinstance(v, (str, int, float, bool))})
        self._collection.modify(metadata=metadata)

    @property
    def where(self) -> str:
        """The collection and its database, for messages: "Chroma collection 'docs' at 127.0.0.1:8001"."""
        place = f"at {self.host}:{self.port}" if self.host is not None else f"in {self.path or 'a client given'}"
        return f"Chroma collection {self.name!r} {place}"

    @property
    def dim(self) -> int | None:
        return self.manifest.get("embedding_dim")

    # ------------------------------------------------------------------ VectorStore
    def add(self, ids: Sequence[str], vectors: np.ndarray, chunks: Sequence[Chunk]) -> None:
        ids = list(ids)
        vectors = check_vectors(ids, vectors, chunks, self.dim)
        if not ids:
            return
        if self.dim is None:
            self.manifest = {"embedding_dim": int(vectors.shape[1])}
        self._delete_units(ids)  # a replaced chunk's units are stale; save_units writes the new ones
        step = self._batch()
        for start in range(0, len(ids), step):
            part = slice(start, start + step)
            self._collection.upsert(ids=ids[part], embeddings=vectors[part],
                                    documents=[c.text for c in chunks[part]],
                                    metadatas=[_flatten(c.metadata) for c in chunks[part]])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._collection.delete(ids=list(ids))
            self._delete_units(list(ids))  # after the chunks: see save_units

    # ------------------------------------------------------------------ units, shared by every process
    def save_units(self, ids: Sequence[str], units: Sequence[Sequence[Unit]], vectors: Sequence[np.ndarray]) -> None:
        ids = list(ids)
        self._delete_units(ids)
        rows = [(f"{chunk_id}#{n}", vector, {"chunk_id": chunk_id, "n": n, "count": len(chunk_units),
                                             "start": unit.start, "end": unit.end, "kind": unit.kind})
                for chunk_id, chunk_units, chunk_vectors in zip(ids, units, vectors)
                for n, (unit, vector) in enumerate(zip(chunk_units, np.asarray(chunk_vectors, dtype=np.float32)))]
        step = self._batch()
        for start in range(0, len(rows), step):
            part = rows[start: start + step]
            self._units.upsert(ids=[r[0] for r in part], embeddings=np.stack([r[1] for r in part]),
                               metadatas=[r[2] for r in part])
        stored = set(self._existing(ids))
        gone = [i for i in ids if i not in stored]
        if gone:  # deleted by another process meanwhile (its delete ran before this write): no orphans
            self._delete_units(gone)

    def load_units(self, ids: Sequence[str]) -> dict[str, tuple[list[Unit], np.ndarray]]:
        rows: dict[str, list] = {}
        for part in _batches(list(ids), ID_BATCH):
            found = self._units.get(where={"chunk_id": {"$in": part}}, include=["metadatas", "embeddings"])
            for meta, vector in zip(found["metadatas"], found["embeddings"]):
                rows.setdefault(str(meta["chunk_id"]), []).append((meta, vector))
        out = {}
        for chunk_id, chunk_rows in rows.items():
            chunk_rows.sort(key=lambda row: row[0]["n"])
            if [m["n"] for m, _ in chunk_rows] != list(range(chunk_rows[0][0]["count"])):
                continue  # a write cut short: the reader embeds them again
            out[chunk_id] = ([Unit(int(m["start"]), int(m["end"]), str(m["kind"])) for m, _ in chunk_rows],
                             np.asarray([v for _, v in chunk_rows], dtype=np.float32))
        return out

    def _delete_units(self, ids: list[str]) -> None:
        for part in _batches(ids, ID_BATCH):
            self._units.delete(where={"chunk_id": {"$in": part}})

    def _existing(self, ids: list[str]) -> list[str]:
        return [i for part in _batches(ids, ID_BATCH) for i in self._collection.get(ids=part, include=[])["ids"]]

    def _batch(self) -> int:
        return max(1, min(5000, self.client.get_max_batch_size()))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        count = len(self)
        if not count:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if self.dim is not None and query.shape[1] != self.dim:
            raise IndexMismatchError(f"query vector has dimension {query.shape[1]}, the store holds {self.dim}")
        found = self._collection.query(query_embeddings=query, n_results=min(k, count),
                                       include=["documents", "metadatas", "distances"])
        return [(_chunk(i, d, m), 1.0 - float(dist)) for i, d, m, dist in
                zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0])]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        found = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {i: _chunk(i, d, m) for i, d, m in zip(found["ids"], found["documents"], found["metadatas"])}
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        found = self._collection.get(ids=list(ids), include=["embeddings"])
        by_id = dict(zip(found["ids"], found["embeddings"]))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"no stored vector for chunk id {missing[0]!r}")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def ids(self) -> list[str]:
        out: list[str] = []
        page = 5000
        while True:
            found = self._collection.get(include=[], limit=page, offset=len(out))
            out.extend(found["ids"])
            if len(found["ids"]) < page:
                return out

    def all_chunks(self) -> list[Chunk]:
        out: list[Chunk] = []
        page = 5000
        while True:
            found = self._collection.get(include=["documents", "metadatas"], limit=page, offset=len(out))
            out.extend(_chunk(i, d, m) for i, d, m in zip(found["ids"], found["documents"], found["metadatas"]))
            if len(found["ids"]) < page:
                return out

    def __len__(self) -> int:
        return self._collection.count()

    @classmethod
    def load(cls, folder: str | Path, collection: str = "gem_rag") -> ChromaStore:
        """Reopen a store from a folder written by :meth:`persist`, or an embedded Chroma database folder."""
        if (Path(folder) / "CURRENT").is_file():
            return super().load(folder)  # type: ignore[return-value]
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"no Chroma database at {folder}")
        return cls(path=folder, collection=collection)

    def save(self, folder: Path) -> None:
        """Chroma writes through on every change: an index version holds only where the database is (the
        description, saved by ``persist`` and the pipeline)."""

    @classmethod
    def open(cls, description: dict, folder: Path) -> ChromaStore:
        return cls(description.get("path"), host=description.get("host"), port=description.get("port") or 8000,
                   collection=description.get("collection") or "gem_rag")

    def describe(self) -> dict:
        return {"kind": self.kind, "path": self.path, "host": self.host, "port": self.port, "collection": self.name}


def _http_client(chromadb, host: str, port: int):
    try:
        return chromadb.HttpClient(host=host, port=port)
    except (ValueError, OSError) as err:  # chromadb: "Could not connect to a Chroma server. Are you sure it is running?"
        raise ChromaUnavailableError(f"no Chroma server answers at {host}:{port} ({err}): start one there "
                                     f"(chroma run --path DB --host {host} --port {port}) or give the address of "
                                     f"a running one") from None


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def _flatten(metadata: dict) -> dict:
    flat = {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool)) and not k.startswith(META_KEY)}
    flat[META_KEY] = json.dumps(metadata, ensure_ascii=False, default=str)
    return flat


def _chunk(chunk_id: str, text: str, metadata: dict | None) -> Chunk:
    metadata = metadata or {}
    full = json.loads(metadata[META_KEY]) if META_KEY in metadata else {k: v for k, v in metadata.items()}
    return Chunk(chunk_id, text or "", full)
