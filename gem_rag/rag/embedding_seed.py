"""EmbeddingSeed: chunk and unit vectors computed ahead of time, so indexing texts it holds costs no forward pass.

A seed is one ``.npz`` file for one model and one set of embedding settings: per chunk text (its SHA-256) the
chunk's vector and its units' spans and vectors, as :func:`gem_rag.rag.indexer.embed_chunks` returned them.
Indexing takes a chunk's vectors from the seed only when the seed was made with the same model, artefact,
dimension, token budget and unit scope, and the chunk's units (re-split now, no model needed) have the spans
the seed holds; any other chunk is embedded as usual. So a seed can make indexing faster, never different.

The bundled demo corpus ships one (``gem_rag/data/demo_corpus/embeddings.npz``, made by
``demos/build_demo_embeddings.py``): the demo's first start loads it instead of embedding the corpus for
minutes. A seed made on another dtype (fp32 here, bf16 on a CPU with bf16 units) differs from a fresh
embedding by rounding only.

Example:
    >>> seed = EmbeddingSeed.from_index(pipeline)       # after pipeline.index(folder)
    >>> seed.save("embeddings.npz")
    >>> other.index(folder, seed=EmbeddingSeed.load("embeddings.npz"))   # no forward pass for those texts
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from gem_rag.rag.config import RagConfig
from gem_rag.rag.ingest import content_hash
from gem_rag.rag.manifest import embedder_manifest
from gem_rag.rag.sentences import Unit, split_units

logger = logging.getLogger(__name__)

SEED_FORMAT = "gem_rag.embedding_seed/1"


def seed_header(embedder, config: RagConfig) -> dict:
    """What a seed's vectors depend on: the embedder's manifest and the embedding settings."""
    return {"format": SEED_FORMAT, **embedder_manifest(embedder), "embed_token_budget": config.embed_token_budget,
            "unit_scope": config.unit_scope}


@dataclass
class EmbeddingSeed:
    header: dict
    digests: list[str]  # (n,) content_hash of each chunk text
    vectors: np.ndarray  # (n, dim) float32 chunk vectors
    unit_counts: np.ndarray  # (n,) units per chunk
    unit_spans: np.ndarray  # (total units, 2) start, end in the chunk text
    unit_vectors: np.ndarray  # (total units, dim) float16, as the UnitIndex keeps them

    def __post_init__(self) -> None:
        offsets = np.concatenate([[0], np.cumsum(self.unit_counts)]).astype(np.int64)
        self._rows = {digest: (row, int(offsets[row]), int(offsets[row + 1])) for row, digest in enumerate(self.digests)}

    def __len__(self) -> int:
        return len(self.digests)

    def fits(self, embedder, config: RagConfig) -> bool:
        """True when the seed was made with this embedder and these embedding settings."""
        return self.header == seed_header(embedder, config)

    def lookup(self, text: str) -> tuple[np.ndarray, list[Unit], np.ndarray] | None:
        """(vector, units, (m, dim) unit vectors) of ``text``, or None when the seed lacks it or its units now
        split differently."""
        found = self._rows.get(content_hash(text))
        if found is None:
            return None
        row, first, last = found
        units = split_units(text)
        if [[u.start, u.end] for u in units] != self.unit_spans[first:last].tolist():
            return None
        return self.vectors[row], units, self.unit_vectors[first:last].astype(np.float32)

    @classmethod
    def from_index(cls, pipeline) -> EmbeddingSeed:
        """A seed of every chunk ``pipeline`` stores, with its embedder and settings (its own units and vectors)."""
        indexer = pipeline.indexer
        chunks = pipeline.store.all_chunks()
        ids = [c.id for c in chunks]
        vectors = np.asarray(pipeline.store.vectors(ids), dtype=np.float32).reshape(len(ids), -1)
        units = [indexer.units.units(i) for i in ids]
        dim = vectors.shape[1]
        unit_vectors = [indexer.units.vectors(i) if u else np.zeros((0, dim), np.float32) for i, u in zip(ids, units)]
        return cls(seed_header(pipeline.embedder, pipeline.config), [content_hash(c.text) for c in chunks], vectors,
                   np.array([len(u) for u in units], np.int64),
                   np.array([[u.start, u.end] for us in units for u in us], np.int64).reshape(-1, 2),
                   np.concatenate(unit_vectors).astype(np.float16) if unit_vectors else np.zeros((0, dim), np.float16))

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), header=np.array(json.dumps(self.header, sort_keys=True)), digests=np.array(self.digests),
                 vectors=self.vectors, unit_counts=self.unit_counts, unit_spans=self.unit_spans,
                 unit_vectors=self.unit_vectors)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSeed:
        """The seed :meth:`save` wrote; ValueError naming the file when it is not one."""
        try:
            with np.load(Path(path), allow_pickle=False) as arrays:
                header = json.loads(str(arrays["header"]))
                if header.get("format") != SEED_FORMAT:
                    raise ValueError(f"format {header.get('format')!r}, expected {SEED_FORMAT!r}")
                return cls(header, [str(d) for d in arrays["digests"]], arrays["vectors"], arrays["unit_counts"],
                           arrays["unit_spans"], arrays["unit_vectors"])
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path} is not an embedding seed ({err}); rebuild it (the bundled corpus's: "
                             f"demos/build_demo_embeddings.py) or index without it") from err


def split_seeded(seed: EmbeddingSeed | None, texts: Sequence[str]
                 ) -> tuple[dict[int, tuple[np.ndarray, list[Unit], np.ndarray]], list[int]]:
    """({position: seeded (vector, units, unit vectors)}, positions to embed) of ``texts``."""
    seeded = {}
    for i, text in enumerate(texts):
        found = seed.lookup(text) if seed is not None else None
        if found is not None:
            seeded[i] = found
    return seeded, [i for i in range(len(texts)) if i not in seeded]
