"""UnitIndex: every stored chunk's units (sentences, list items, code blocks: gem_rag.rag.sentences) with
their embeddings, so the reader can find the sentences that answer a question inside the retrieved chunks
without embedding anything at question time.

With the GEM model as the embedder the unit vectors come from the chunk's own forward pass (one extra token
per unit, ``GemModel.embed_with_units``); another embedder (a two-model pipeline) embeds each unit as a text
of its own, prefixed with its chunk's title. Vectors are kept as float16 (half the memory; cosines move by
under 1e-3).

Saved as two files of an index version: ``units.npy`` (all vectors, one row per unit, chunk after chunk) and
``units.json`` (per chunk id: the units' start, end and kind).

Example:
    >>> units = UnitIndex()
    >>> units.add(["c1"], [[Unit(0, 9, "sentence")]], [np.ones((1, 4), np.float32)])
    >>> units.units("c1"), units.vectors("c1").shape
    ([Unit(start=0, end=9, kind='sentence')], (1, 4))
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from gem_rag.rag.sentences import Unit, split_units

VECTORS_FILE = "units.npy"
UNITS_FILE = "units.json"


class UnitIndex:
    """chunk id -> (units, (m, dim) float16 vectors)."""

    def __init__(self) -> None:
        self._units: dict[str, list[Unit]] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._units)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._units

    def add(self, ids: Sequence[str], units: Sequence[Sequence[Unit]], vectors: Sequence[np.ndarray]) -> None:
        for chunk_id, chunk_units, chunk_vectors in zip(ids, units, vectors):
            self._units[chunk_id] = list(chunk_units)
            self._vectors[chunk_id] = np.asarray(chunk_vectors, dtype=np.float16)

    def update(self, other: UnitIndex) -> None:
        """Take every chunk of ``other`` (replacing chunks of the same id)."""
        self._units.update(other._units)
        self._vectors.update(other._vectors)

    def delete(self, ids: Sequence[str]) -> None:
        for chunk_id in ids:
            self._units.pop(chunk_id, None)
            self._vectors.pop(chunk_id, None)

    def units(self, chunk_id: str) -> list[Unit]:
        return self._units.get(chunk_id, [])

    def vectors(self, chunk_id: str) -> np.ndarray:
        """(m, dim) float32 unit vectors of ``chunk_id`` (KeyError when it has none)."""
        return self._vectors[chunk_id].astype(np.float32)

    def save(self, folder: Path) -> None:
        ids = sorted(self._units)
        meta = {"format": "gem_rag.units/1",
                "chunks": {i: [[u.start, u.end, u.kind] for u in self._units[i]] for i in ids}}
        (folder / UNITS_FILE).write_text(json.dumps(meta, separators=(",", ":")))
        rows = [self._vectors[i] for i in ids if len(self._vectors[i])]
        np.save(folder / VECTORS_FILE, np.concatenate(rows) if rows else np.zeros((0, 0), np.float16))

    @classmethod
    def load(cls, folder: Path) -> UnitIndex:
        """The index :meth:`save` wrote; an empty one when the version has none (units are then computed when
        a chunk is first read)."""
        index = cls()
        if not (folder / UNITS_FILE).is_file():
            return index
        meta = json.loads((folder / UNITS_FILE).read_text())
        vectors = np.load(folder / VECTORS_FILE)
        row = 0
        for chunk_id, spans in meta["chunks"].items():
            units = [Unit(int(s), int(e), str(k)) for s, e, k in spans]
            index.add([chunk_id], [units], [vectors[row: row + len(units)]])
            row += len(units)
        return index


def embed_units(embedder, model, texts: Sequence[str], titles: Sequence[str], token_budget: int, scope: str
                ) -> tuple[np.ndarray, list[list[Unit]], list[np.ndarray]]:
    """(chunk vectors, units, unit vectors) of ``texts``: from one forward pass when ``embedder`` is ``model``
    (GEM), else the embedder's document vectors and one embedding per unit (``"title: unit text"``)."""
    units = [split_units(text) for text in texts]
    if embedder is model:
        spans = [[(u.start, u.end) for u in chunk_units] for chunk_units in units]
        vectors, unit_vectors = model.embed_with_units(list(texts), spans, token_budget=token_budget, scope=scope)
        return vectors, units, unit_vectors
    vectors = np.asarray(embedder.embed(list(texts), kind="document"), dtype=np.float32)
    flat = [f"{title}: {text[u.start:u.end]}" if title else text[u.start:u.end]
            for text, title, chunk_units in zip(texts, titles, units) for u in chunk_units]
    flat_vectors = np.asarray(embedder.embed(flat, kind="document"), dtype=np.float32) if flat else np.zeros((0, 1))
    unit_vectors, row = [], 0
    for chunk_units in units:
        unit_vectors.append(flat_vectors[row: row + len(chunk_units)])
        row += len(chunk_units)
    return vectors, units, unit_vectors
