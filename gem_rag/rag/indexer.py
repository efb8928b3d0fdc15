"""Indexer: files and folders -> chunks -> vectors in the store, with the bookkeeping that makes re-indexing
incremental (a content hash per file: unchanged files are skipped, changed ones re-chunked and only their new
chunks embedded, files gone from an indexed folder removed) and de-duplication by text.

Every chunk's units (sentences, list items, code blocks) are embedded in the same pass and kept in the
:class:`UnitIndex`; ``on_added`` / ``on_deleted`` callbacks let the retriever and the KV cache follow changes.

Example:
    >>> indexer = Indexer(model, model, store, Chunker(model.tokenizer), RagConfig())
    >>> indexer.index(["docs/"]).chunks_added
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from collections.abc import Callable, Sequence

from gem_rag.rag.config import RagConfig
from gem_rag.rag.ingest import Chunker, UnreadableFile, chunk_id, content_hash, iter_files, read_file, text_key
from gem_rag.rag.stores import VectorStore
from gem_rag.rag.types import Chunk, IndexReport
from gem_rag.rag.unit_index import UnitIndex, embed_units

logger = logging.getLogger(__name__)

FLUSH_CHUNKS = 256  # chunks embedded and stored together


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

    def index(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, progress: bool = False) -> IndexReport:
        start = time.perf_counter()
        report = IndexReport()
        folders: list[Path] = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        seen: set[str] = set()
        pending: list[tuple[str, str, list[Chunk]]] = []  # (source, hash, chunks) waiting for embedding
        with self._lock:
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
                    pending.append(entry)
                    report.files_indexed += 1
                if sum(len(c) for _, _, c in pending) >= FLUSH_CHUNKS:
                    self._flush(pending, report)
                    pending = []
            self._flush(pending, report)
            for folder in (p.resolve() for p in folders if p.is_dir()):
                prefix = str(folder) + os.sep
                for source in [s for s in self.sources if s.startswith(prefix) and s not in seen]:
                    report.chunks_removed += self._remove_source(source)
        report.seconds = time.perf_counter() - start
        logger.info("indexed %s", report)
        return report

    def _read(self, file: Path, source: str, report: IndexReport) -> tuple[str, str, list[Chunk]] | None:
        """(source, hash, chunks) of a new or changed file; None when unchanged or unreadable (reported)."""
        try:
            raw = file.read_bytes()
            digest = content_hash(raw)
            if self.sources.get(source, {}).get("hash") == digest:
                report.chunks_unchanged += len(self.sources[source]["chunk_ids"])
                return None
            chunks = [c for doc in read_file(Path(source), raw) for c in self.chunker.split(doc)]
            for chunk in chunks:  # the store itself then says which file version each chunk came from
                chunk.metadata["source_hash"] = digest
            return source, digest, chunks
        except (OSError, UnreadableFile) as err:
            reason = str(err) if isinstance(err, UnreadableFile) else f"cannot read: {err}"
            report.files_skipped.append((str(file), reason))
            return None

    def _flush(self, pending: list[tuple[str, str, list[Chunk]]], report: IndexReport) -> None:
        """Embed and store the new chunks of ``pending`` files, drop their stale chunks, record their hashes."""
        keys = self._dedup_keys()
        new: list[Chunk] = []
        kept_by_source: dict[str, list[str]] = {}
        for source, _, chunks in pending:
            old_ids = set(self.sources.get(source, {}).get("chunk_ids", []))
            kept = []
            for chunk in chunks:
                key = text_key(chunk.text)
                if chunk.id in old_ids:
                    report.chunks_unchanged += 1
                elif key in keys:
                    report.chunks_duplicate += 1
                    continue
                else:
                    keys[key] = chunk.id
                    new.append(chunk)
                kept.append(chunk.id)
            kept_by_source[source] = kept
            stale = old_ids - set(kept)
            if stale:
                self.delete_ids(sorted(stale))
                report.chunks_removed += len(stale)
        self.add_chunks(new)
        report.chunks_added += len(new)
        for source, digest, _ in pending:
            self.sources[source] = {"hash": digest, "chunk_ids": kept_by_source[source]}

    def reconcile_sources(self) -> int:
        """Make the per-file bookkeeping agree with what the store holds (a store written outside ``save``, such
        as a Chroma collection after a crash mid-update): a file whose stored chunks carry one content hash
        gets that record; one whose chunks carry several (an update cut short), or whose recorded chunks are
        partly gone, gets no hash, so the next ``index`` re-reads it and drops what is stale; a record whose
        chunks are all gone is dropped. Returns how many records changed."""
        stored: dict[str, dict] = {}
        for chunk in self.store.all_chunks():
            digest = chunk.metadata.get("source_hash")
            if digest is not None and chunk.metadata.get("source"):
                entry = stored.setdefault(chunk.metadata["source"], {"hashes": set(), "chunk_ids": []})
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

    def add_chunks(self, chunks: list[Chunk]) -> None:
        """Embed ``chunks`` (and their units) and store them."""
        for start in range(0, len(chunks), FLUSH_CHUNKS):
            batch = chunks[start: start + FLUSH_CHUNKS]
            vectors, units, unit_vectors = embed_units(
                self.embedder, self.model, [c.text for c in batch], [c.metadata.get("title", "") for c in batch],
                self.config.embed_token_budget, self.config.unit_scope)
            self.store.add([c.id for c in batch], vectors, batch)
            self.units.add([c.id for c in batch], units, unit_vectors)
            if self._text_keys is not None:
                self._text_keys.update({text_key(c.text): c.id for c in batch})
            for callback in self.on_added:
                callback(batch)

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
        """Embed the units of stored chunks that have none (an index saved without them, a shared store)."""
        missing = [c for c in chunks if c.id not in self.units]
        if missing:
            _, units, unit_vectors = embed_units(self.embedder, self.model, [c.text for c in missing],
                                                 [c.metadata.get("title", "") for c in missing],
                                                 self.config.embed_token_budget, self.config.unit_scope)
            self.units.add([c.id for c in missing], units, unit_vectors)

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
