"""Indexer: files and folders -> chunks -> vectors in the store, with the bookkeeping that makes re-indexing
incremental (a content hash per file: unchanged files are skipped, changed ones re-chunked and only their new
chunks embedded, files gone from an indexed folder removed) and de-duplication by text.

Every chunk's units (sentences, list items, code blocks) are embedded in the same pass and kept in the
:class:`UnitIndex`, and in the store when it keeps them for other processes (``VectorStore.save_units``:
Chroma); ``on_added`` / ``on_deleted`` callbacks let the retriever and the KV cache follow changes.
The steps are public for indexing whose embedding runs elsewhere (gem_rag.rag.ray_index): ``read_changed``
(new and changed files, chunked), ``plan`` (what to embed after de-duplication), :func:`embed_chunks`,
``add_embedded`` (store what was embedded), ``record`` (the files' hashes), ``remove_missing``.

Example:
    >>> indexer = Indexer(model, model, store, Chunker(model.tokenizer), RagConfig())
    >>> indexer.index(["docs/"]).chunks_added
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from gem_rag.rag.config import RagConfig
from gem_rag.rag.ingest import (Chunker, UnreadableFile, chunk_id, content_hash, iter_files, read_file, source_file,
                                text_key)
from gem_rag.rag.sentences import Unit
from gem_rag.rag.stores import VectorStore
from gem_rag.rag.types import Chunk, IndexReport
from gem_rag.rag.embedding_seed import EmbeddingSeed, split_seeded
from gem_rag.rag.unit_index import UnitIndex, embed_units

logger = logging.getLogger(__name__)

FLUSH_CHUNKS = 256  # chunks embedded and stored together


@dataclass
class FilePlan:
    """A new or changed file as :meth:`Indexer.plan` leaves it: its chunks still to embed and store, and the
    ids of every chunk it has once they are stored (the new ones and those unchanged since the last version)."""

    source: str
    digest: str
    new: list[Chunk]
    chunk_ids: list[str]


def as_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """One path or several, as a list of Paths."""
    return [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]


def embed_chunks(embedder, model, chunks: Sequence[Chunk], config: RagConfig
                 ) -> tuple[np.ndarray, list[list[Unit]], list[np.ndarray]]:
    """(vectors, units, unit vectors) of ``chunks``: the one embedding step of indexing, whether it runs in this
    process (:meth:`Indexer.add_chunks`) or on Ray actors (gem_rag.rag.ray_index)."""
    return embed_units(embedder, model, [c.text for c in chunks], [c.metadata.get("title", "") for c in chunks],
                       config.embed_token_budget, config.unit_scope)


class Indexer:
    def __init__(self, model, embedder, store: VectorStore, chunker: Chunker, config: RagConfig,
                 lock: threading.RLock | None = None):
        self.model = model
        self.embedder = embedder
        self.store = store
        self.chunker = chunker
        self.config = config
        self.units = UnitIndex()
        self.sources: dict[str, dict] = {}  # source file -> {"hash", "chunk_ids"}
        self.on_added: list[Callable[[list[Chunk]], None]] = []
        self.on_deleted: list[Callable[[list[str]], None]] = []
        self._text_keys: dict[str, str] | None = None  # dedup key -> chunk id, built lazily
        self._lock = lock or threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """The lock every change to the index holds (the pipeline's)."""
        return self._lock

    def index(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, progress: bool = False,
              seed: EmbeddingSeed | None = None) -> IndexReport:
        start = time.perf_counter()
        report = IndexReport()
        if seed is not None and not seed.fits(self.embedder, self.config):
            logger.info("the embedding seed was made with another model or settings (%s); embedding instead", seed.header)
            seed = None
        folders = as_paths(paths)
        seen: set[str] = set()
        pending: list[tuple[str, str, list[Chunk]]] = []  # (source, hash, chunks) waiting for embedding
        with self._lock:
            for entry in self.read_changed(folders, report, seen, progress=progress):
                pending.append(entry)
                if sum(len(c) for _, _, c in pending) >= FLUSH_CHUNKS:
                    self._flush(pending, report, seed)
                    pending = []
            self._flush(pending, report, seed)
            self.remove_missing(folders, seen, report)
        report.seconds = time.perf_counter() - start
        logger.info("indexed %s", report)
        return report

    def read_changed(self, folders: Sequence[Path], report: IndexReport, seen: set[str], *,
                     progress: bool = False) -> Iterator[tuple[str, str, list[Chunk]]]:
        """(source, hash, chunks) of every new or changed file under ``folders``, in file order; unchanged,
        unreadable and unsupported files are counted in ``report``, every file found is added to ``seen``."""
        files = list(iter_files(folders))
        if progress:
            from tqdm import tqdm

            files = tqdm(files, desc="indexing", unit="file")
        for file, reason in files:
            if reason is not None:
                report.files_skipped.append((str(file), reason))
                continue
            source = str(file.resolve())
            seen.add(source)
            entry = self._read(file, source, report)
            if entry is not None:
                report.files_indexed += 1
                yield entry

    def remove_missing(self, folders: Sequence[Path], seen: set[str], report: IndexReport) -> None:
        """Drop the chunks of files gone from the indexed ``folders`` (``seen``: the files found there now)."""
        for folder in (p.resolve() for p in folders if p.is_dir()):
            prefix = str(folder) + os.sep
            for source in [s for s in self.sources if s.startswith(prefix) and s not in seen]:
                report.chunks_removed += self._remove_source(source)

    def _read(self, file: Path, source: str, report: IndexReport) -> tuple[str, str, list[Chunk]] | None:
        """(source, hash, chunks) of a new or changed file; None when unchanged or unreadable (reported)."""
        try:
            raw = file.read_bytes()
            digest = content_hash(raw)
            if self.sources.get(source, {}).get("hash") == digest:
                report.chunks_unchanged += len(self.sources[source]["chunk_ids"])
                return None
            chunks = [c for doc in read_file(Path(source), raw) for c in self.chunker.split(doc)]
            for chunk in chunks:  # the store itself then says which file (version) each chunk came from: a JSONL
                chunk.metadata["source_hash"] = digest  # row's chunks have "path#id" as source, "path" as file
                chunk.metadata["source_file"] = source
            return source, digest, chunks
        except (OSError, UnreadableFile) as err:
            reason = str(err) if isinstance(err, UnreadableFile) else f"cannot read: {err}"
            report.files_skipped.append((str(file), reason))
            return None

    def _flush(self, pending: list[tuple[str, str, list[Chunk]]], report: IndexReport,
               seed: EmbeddingSeed | None = None) -> None:
        """Embed and store the new chunks of ``pending`` files, drop their stale chunks, record their hashes."""
        plans = self.plan(pending, report)
        new = [chunk for plan in plans for chunk in plan.new]
        self.add_chunks(new, seed)
        report.chunks_added += len(new)
        self.record(plans)

    def plan(self, pending: Sequence[tuple[str, str, list[Chunk]]], report: IndexReport) -> list[FilePlan]:
        """What storing ``pending`` files (from :meth:`read_changed`) takes, file by file: the chunks to embed
        (their text neither stored nor planned earlier in ``pending``) and the ids the file keeps. The stale
        chunks of changed files are dropped now; nothing is added."""
        keys = self._dedup_keys()
        planned: set[str] = set()  # dedup keys of the chunks planned here (the stored ones change when stored)
        plans = []
        for source, digest, chunks in pending:
            old_ids = set(self.sources.get(source, {}).get("chunk_ids", []))
            plan = FilePlan(source, digest, [], [])
            for chunk in chunks:
                key = text_key(chunk.text)
                if chunk.id in old_ids:
                    report.chunks_unchanged += 1
                elif key in keys or key in planned:
                    report.chunks_duplicate += 1
                    continue
                else:
                    planned.add(key)
                    plan.new.append(chunk)
                plan.chunk_ids.append(chunk.id)
            stale = old_ids - set(plan.chunk_ids)
            if stale:
                self.delete_ids(sorted(stale))
                report.chunks_removed += len(stale)
                keys = self._dedup_keys()  # without the deleted texts
            plans.append(plan)
        return plans

    def record(self, plans: Sequence[FilePlan]) -> None:
        """Record the hash and chunk ids of planned files whose new chunks are stored."""
        for plan in plans:
            self.sources[plan.source] = {"hash": plan.digest, "chunk_ids": plan.chunk_ids}

    def reconcile_sources(self) -> int:
        """Make the per-file bookkeeping agree with what the store holds (a store written outside ``save``, such
        as a Chroma collection after a crash mid-update): a file whose stored chunks carry one content hash
        gets that record; one whose chunks carry several (an update cut short), or whose recorded chunks are
        partly gone, gets no hash, so the next ``index`` re-reads it and drops what is stale; a record whose
        chunks are all gone is dropped. Records are by file: a chunk's ``source_file``, or for chunks stored
        without one the file its ``source`` names (a JSONL row's ``path#id``: ``path``). Returns how many records
        changed."""
        stored: dict[str, dict] = {}
        for chunk in self.store.all_chunks():
            meta = chunk.metadata
            digest = meta.get("source_hash")
            if digest is not None and meta.get("source"):
                file = meta.get("source_file") or source_file(meta["source"], meta.get("doc_id"))
                entry = stored.setdefault(file, {"hashes": set(), "chunk_ids": []})
                entry["hashes"].add(digest)
                entry["chunk_ids"].append(chunk.id)
        changed = 0
        for source, entry in stored.items():
            digest = next(iter(entry["hashes"])) if len(entry["hashes"]) == 1 else None
            record = {"hash": digest, "chunk_ids": sorted(entry["chunk_ids"])}
            old = self.sources.get(source)
            if old is None or old["hash"] != digest or sorted(old["chunk_ids"]) != record["chunk_ids"]:
                if old is not None and digest == old["hash"] and set(old["chunk_ids"]) - set(entry["chunk_ids"]):
                    record["hash"] = None  # chunks of this version are missing: re-read the file
                self.sources[source] = record
                changed += 1
        for source in [s for s, r in self.sources.items() if s not in stored and r["chunk_ids"]]:
            del self.sources[source]  # every chunk of it is gone from the store
            changed += 1
        return changed

    def _dedup_keys(self) -> dict[str, str]:
        if self._text_keys is None:
            self._text_keys = {text_key(c.text): c.id for c in self.store.all_chunks()}
        return self._text_keys

    def _remove_source(self, source: str) -> int:
        ids = self.sources.pop(source, {}).get("chunk_ids", [])
        self.delete_ids(ids)
        return len(ids)

    def add_chunks(self, chunks: list[Chunk], seed: EmbeddingSeed | None = None) -> None:
        """Embed ``chunks`` (and their units) and store them; the texts ``seed`` holds (a seed that fits this
        embedder) take its vectors instead of a forward pass."""
        for start in range(0, len(chunks), FLUSH_CHUNKS):
            batch = chunks[start: start + FLUSH_CHUNKS]
            self.add_embedded(batch, *self._embedded(batch, seed))

    def _embedded(self, batch: list[Chunk], seed: EmbeddingSeed | None
                  ) -> tuple[np.ndarray, list[list[Unit]], list[np.ndarray]]:
        """:func:`embed_chunks` of ``batch``, in its order, with the chunks ``seed`` holds taken from it."""
        found, missing = split_seeded(seed, [c.text for c in batch])
        if not found:
            return embed_chunks(self.embedder, self.model, batch, self.config)
        logger.info("%d of %d chunks take their vectors from the embedding seed", len(found), len(batch))
        if missing:
            vectors, units, unit_vectors = embed_chunks(self.embedder, self.model, [batch[i] for i in missing],
                                                        self.config)
            found.update({i: (vectors[j], units[j], unit_vectors[j]) for j, i in enumerate(missing)})
        rows = [found[i] for i in range(len(batch))]
        return np.stack([row[0] for row in rows]), [row[1] for row in rows], [row[2] for row in rows]

    def add_embedded(self, chunks: Sequence[Chunk], vectors: np.ndarray, units: Sequence[Sequence[Unit]],
                     unit_vectors: Sequence[np.ndarray]) -> None:
        """Store chunks embedded already, by :func:`embed_chunks` (elsewhere: a Ray actor), with their units."""
        if not (len(chunks) == len(vectors) == len(units) == len(unit_vectors)):
            raise ValueError(f"got {len(chunks)} chunks, {len(vectors)} vectors, {len(units)} unit lists and "
                             f"{len(unit_vectors)} unit vector arrays: give one of each per chunk")
        chunks = list(chunks)
        ids = [c.id for c in chunks]
        self.store.add(ids, vectors, chunks)
        self.units.add(ids, units, unit_vectors)
        self.store.save_units(ids, units, unit_vectors)  # a store shared by processes keeps them for the others
        if self._text_keys is not None:
            self._text_keys.update({text_key(c.text): c.id for c in chunks})
        for callback in self.on_added:
            callback(chunks)

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        if self._text_keys is not None:
            gone = set(ids)
            self._text_keys = {k: v for k, v in self._text_keys.items() if v not in gone}
        self.store.delete(list(ids))
        self.units.delete(ids)
        for callback in self.on_deleted:
            callback(list(ids))

    def ensure_units(self, chunks: Sequence[Chunk]) -> None:
        """Give the chunks this process holds no units for theirs: those the store keeps (a store shared by
        processes: whoever stored the chunk stored them), else embedded now (an index saved without them, a
        chunk stored by a process that kept none) and given to the store for the other processes."""
        missing = [c for c in chunks if c.id not in self.units]
        if not missing:
            return
        kept = self.store.load_units([c.id for c in missing])
        for chunk in missing:
            if chunk.id in kept and all(u.end <= len(chunk.text) for u in kept[chunk.id][0]):  # not of a stale text
                self.units.add([chunk.id], [kept[chunk.id][0]], [kept[chunk.id][1]])
        missing = [c for c in missing if c.id not in self.units]
        if missing:
            _, units, unit_vectors = embed_chunks(self.embedder, self.model, missing, self.config)
            ids = [c.id for c in missing]
            self.units.add(ids, units, unit_vectors)
            self.store.save_units(ids, units, unit_vectors)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None) -> list[str]:
        """Add ready-made passages, one chunk per text (a text with an id already stored replaces it)."""
        if isinstance(texts, str) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("texts must be a list of non-empty strings")
        metadatas = [dict(m) for m in metadatas] if metadatas is not None else [{} for _ in texts]
        if len(metadatas) != len(texts) or (ids is not None and len(ids) != len(texts)):
            raise ValueError(f"got {len(texts)} texts, {len(metadatas)} metadatas and "
                             f"{'no' if ids is None else len(ids)} ids: give one per text")
        if ids is None:
            ids = [chunk_id(str(m.get("source", "")), 0, len(t), t) for t, m in zip(texts, metadatas)]
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")
        chunks = [Chunk(str(i), t, {"source": m.get("source", ""), "title": m.get("title", ""), "start": 0,
                                    "end": len(t), **m}) for i, t, m in zip(ids, texts, metadatas)]
        with self._lock:
            self.delete_ids([c.id for c in chunks if self.store.get([c.id])])
            self.add_chunks(chunks)
        return [c.id for c in chunks]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""
        if isinstance(ids, str):
            raise TypeError("delete() takes a list of ids, got a single str")
        gone = set(ids)
        with self._lock:
            self.delete_ids(list(ids))
            for record in self.sources.values():
                record["chunk_ids"] = [i for i in record["chunk_ids"] if i not in gone]
