"""RagPipeline: ingestion, hybrid retrieval and grounded answers with one GEM model (see the contract in
docs and the package docstring).

Example:
    >>> from gem_rag.rag import RagPipeline
    >>> rag = RagPipeline()                              # default model, FAISS store, hybrid retrieval
    >>> rag.index("docs/")                               # IndexReport(files_indexed=..., chunks_added=...)
    >>> rag.answer("How do I open a file?").answer
    >>> for event in rag.stream_answer("How do I open a file?"): ...
    >>> rag.save("my-index"); rag = RagPipeline.load("my-index")
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from gem_rag.core.default import resolve_model
from gem_rag.core.generation import check_sampling
from gem_rag.rag.bm25 import BM25Index
from gem_rag.rag.decoding import CopySpanConstraint, Piece, PieceGeneration
from gem_rag.rag.fusion import DEFAULT_DENSE_WEIGHT, DEFAULT_FUSION, FUSION_METHODS, fuse
from gem_rag.rag.ingest import Chunker, UnreadableFile, chunk_id, content_hash, iter_files, read_file, text_key
from gem_rag.rag.kv import KVCache, compute_kv, compute_states, model_fingerprint
from gem_rag.rag.manifest import check_manifest, embedder_manifest
from gem_rag.rag.prompt import AnswerPrompt, DEFAULT_SYSTEM, DEFAULT_TEMPLATE
from gem_rag.rag.storage import IndexMismatchError, current_version, read_json, write_version
from gem_rag.rag.stores import FaissStore, VectorStore
from gem_rag.rag.types import Chunk, IndexReport, RagAnswer, Reading, RetrievedChunk

logger = logging.getLogger(__name__)

RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
ANSWER_MODES = ("extractive", "generative")
READINGS = ("joint", "per_chunk")
# per-chunk reading: a lower-ranked chunk's answer must be this many nats more probable per rank to win
# (chosen on the reader dev set, benchmarks/rag_prompt_dev.py --retrieve-from; see docs/benchmarks.md)
READING_RANK_PENALTY = 2.0
# abstain without reading when the best dense hit's cosine is below this (the default GEM model as the embedder
# only): 0.1 below the lowest best hit of the on-topic dev questions (0.554); it turns away 67-70 % of questions
# asked of the other dev corpus (benchmarks/offtopic_dev.py; see docs/benchmarks.md)
DEFAULT_MIN_DENSE_SCORE = 0.45
PIPELINE_FILE = "pipeline.json"
# settings saved since the retrieval and answer options were added; an older save lacks them: defaults apply
LATER_SETTINGS = ("fusion", "dense_weight", "rrf_k", "answer_mode", "beams", "reading", "prefer_spans",
                  "min_dense_score")
FLUSH_CHUNKS = 256  # chunks embedded together while indexing
SENTENCE_END = re.compile(r"(?<=[a-z0-9%)\]])\.(?=\s)")  # "1982. " but not "U.S. "


class RagPipeline:
    """Retrieval-augmented answers from one decoder LLM that embeds (GEM) and generates.

    Args:
        model: a GemModel (``None``: the shared default).
        store: a VectorStore (``None``: an empty in-memory :class:`FaissStore`).
        embedder: anything with ``.embed(texts, kind=...)`` and ``.name``; ``None`` = the model itself.
        retrieval: ``"dense"``, ``"bm25"`` or ``"hybrid"`` (both, fused by ``fusion``).
        fusion: how hybrid fuses the two rankings: ``"zscore"`` or ``"minmax"`` (weighted sum of each list's
            normalised scores) or ``"rrf"`` (reciprocal rank fusion with constant ``rrf_k``); see gem_rag.rag.fusion.
        dense_weight: the dense ranking's weight in zscore/minmax fusion (BM25 gets the rest).
        prompt_template: the user turn, with ``{context}`` then ``{question}``.
        kv_reuse: compute each chunk's KV state at indexing (after the prompt's fixed start) and reuse it when
            the chunk opens an answer prompt: the first chunk, or every chunk with ``reading="per_chunk"``.
            Exact: answers are those without reuse (see gem_rag.rag.kv).
        chunk_tokens, chunk_overlap: chunking in model tokens.
        max_new_tokens: default answer length limit (answers also stop at a newline).
        system_prompt: the system instruction (default asks for a short span or the abstention phrase).
        examples: few-shot (context, question, answer) turns; ``()`` for none.
        kv_cache_bytes, kv_cache_dir, kv_cache_disk_bytes: KV cache budgets (RAM, optional disk tier).
        embed_token_budget: padded tokens per embedding batch while indexing (bounds peak memory).
        candidates: how many results each retriever contributes to fusion.
        answer_mode: ``"generative"`` (free text, then post-processed to a short answer) or ``"extractive"``
            (decoding constrained to spans copied from the context chunks, or the abstention phrase: every answer
            is text the documents contain; with SmolLM2-135M it picks short wrong spans, often years, once the
            context is several paragraphs long, see docs/benchmarks.md).
        beams: beam-search width for greedy answers (1 = greedy decoding, streamed token by token; more
            finds the most probable whole answer, which then arrives in one piece). Sampling
            (temperature > 0) always decodes one hypothesis.
        reading: ``"joint"`` (one answer from all chunks in one prompt, streamed with ``beams=1``) or
            ``"per_chunk"`` (the model answers from each chunk alone; the non-abstaining answer with the
            highest log-probability wins, less 2 nats per retrieval rank below the first; ``RagAnswer.readings``
            lists them all, and the winner's ``chunk_ids`` say which chunk the answer came from).
        prefer_spans: with beams, take the most probable answer that the context contains word for word (case
            and punctuation aside), or the abstention, when one of the finished hypotheses is; else the most
            probable answer that passes the answer checks (not a few-shot example's answer, not an echo of the
            question, not an announcement such as "the following code:"). A reading where no hypothesis
            passes never wins: another reading's answer does or, when no reading passed, the abstention.
        min_dense_score: when the model itself embeds (``embedder=None``) and dense or hybrid retrieval's best
            hit has a cosine below this, the question is taken to be off the documents' topic: the answer is
            the abstention phrase, without reading (the chunks are still returned). ``None`` turns it off.
        stop_at_sentence_end: end answers at the first sentence end (they are meant to be short spans;
            post-processing keeps only the first sentence anyway, so this only saves decoding time).
    """

    def __init__(self, model=None, store: VectorStore | None = None, *, embedder=None, retrieval: str = "hybrid",
                 prompt_template: str | None = None, kv_reuse: bool = False, chunk_tokens: int = 256,
                 chunk_overlap: int = 32, max_new_tokens: int = 64, system_prompt: str | None = None,
                 examples: Sequence[tuple[str, str, str]] | None = None, kv_cache_bytes: int = 256 * 2**20,
                 kv_cache_dir: str | os.PathLike | None = None, kv_cache_disk_bytes: int = 4 * 2**30,
                 embed_token_budget: int = 512, candidates: int = 50,
                 fusion: str = DEFAULT_FUSION, dense_weight: float = DEFAULT_DENSE_WEIGHT, rrf_k: int = 60,
                 answer_mode: str = "generative", beams: int = 8, reading: str = "per_chunk",
                 prefer_spans: bool = True, min_dense_score: float | None = DEFAULT_MIN_DENSE_SCORE,
                 stop_at_sentence_end: bool = True):
        if retrieval not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval must be one of {RETRIEVAL_MODES}, got {retrieval!r}")
        if answer_mode not in ANSWER_MODES:
            raise ValueError(f"answer_mode must be one of {ANSWER_MODES}, got {answer_mode!r}")
        if min_dense_score is not None and (isinstance(min_dense_score, bool) or
                                            not isinstance(min_dense_score, (int, float)) or
                                            not -1 <= min_dense_score <= 1):
            raise ValueError(f"min_dense_score must be a cosine in [-1, 1] or None, got {min_dense_score!r}")
        if reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
        if isinstance(beams, bool) or not isinstance(beams, int) or not 1 <= beams <= 64:
            raise ValueError(f"beams must be an int in 1..64, got {beams!r}")
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {fusion!r}")
        if isinstance(dense_weight, bool) or not isinstance(dense_weight, (int, float)) or not 0 <= dense_weight <= 1:
            raise ValueError(f"dense_weight must be a number in [0, 1], got {dense_weight!r}")
        if store is not None and not isinstance(store, VectorStore):
            raise TypeError(f"store must be a gem_rag.rag.VectorStore (FaissStore, ChromaStore), got {type(store).__name__}")
        if embedder is not None and not callable(getattr(embedder, "embed", None)):
            raise TypeError("embedder must have an .embed(texts, kind=...) method")
        check_sampling(max_new_tokens, 0.0, 1.0, None, None)
        self.model = resolve_model(model)
        self.embedder = embedder if embedder is not None else self.model
        self.store: VectorStore = store if store is not None else FaissStore()
        self.retrieval = retrieval
        self.prompt = AnswerPrompt(
            template=DEFAULT_TEMPLATE if prompt_template is None else prompt_template,
            system=DEFAULT_SYSTEM if system_prompt is None else system_prompt,
            **({} if examples is None else {"examples": tuple(examples)}))
        self.chunker = Chunker(self.model.tokenizer, chunk_tokens, chunk_overlap)
        self.max_new_tokens = max_new_tokens
        self.embed_token_budget = embed_token_budget
        self.candidates = candidates
        self.fusion = fusion
        self.dense_weight = float(dense_weight)
        self.rrf_k = rrf_k
        self.answer_mode = answer_mode
        self.beams = beams
        self.reading = reading
        self.prefer_spans = bool(prefer_spans)
        self.min_dense_score = min_dense_score
        self.stop_pattern = SENTENCE_END if stop_at_sentence_end else None
        self.kv_reuse = bool(kv_reuse)
        self.kv_cache: KVCache | None = None
        if self.kv_reuse:
            # states depend on the model and on the prompt start they were computed after
            prompt_start = hashlib.sha256(self._prompt_start().encode()).hexdigest()[:16]
            self.kv_cache = KVCache(kv_cache_bytes, disk_dir=kv_cache_dir, disk_max_bytes=kv_cache_disk_bytes,
                                    fingerprint=f"{model_fingerprint(self.model)}|{prompt_start}")
        self._prefix: dict[str, Piece] = {}  # prompt start text -> its ids and KV state (one entry)
        self._sources: dict[str, dict] = {}  # source file -> {"hash", "chunk_ids"}
        self._text_keys: dict[str, str] | None = None  # dedup key -> chunk id, built lazily
        self._bm25: tuple[BM25Index, list[str]] | None = None
        self._lock = threading.RLock()
        self._check_store_manifest()

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> dict:
        """What this pipeline's vectors are made with (stored with the index, checked on reuse)."""
        return {**embedder_manifest(self.embedder), **self.chunker.settings()}

    def _check_store_manifest(self) -> None:
        stored = getattr(self.store, "manifest", None) or {}
        check_manifest(stored, self.manifest(), f"the store ({type(self.store).__name__})")
        if stored.get("model") is None:
            self.store.manifest = {**stored, **self.manifest()}

    # ------------------------------------------------------------------ indexing
    def index(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, progress: bool = False) -> IndexReport:
        """Index files and folders (.txt .md .rst .html .jsonl). Unchanged files are skipped (content hash),
        changed files re-indexed (only their new chunks embedded), files gone from an indexed folder removed.

        Example:
            >>> report = rag.index(["docs/", "notes.md"]); report.chunks_added, report.files_skipped
        """
        start = time.perf_counter()
        report = IndexReport()
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [Path(p) for p in paths]
        seen: set[str] = set()
        pending: list[tuple[str, str, list[Chunk]]] = []  # (source, hash, chunks) waiting for embedding
        with self._lock:
            files = list(iter_files(paths))
            iterator = files
            if progress:
                from tqdm import tqdm

                iterator = tqdm(files, desc="indexing", unit="file")
            for file, reason in iterator:
                if reason is not None:
                    report.files_skipped.append((str(file), reason))
                    continue
                source = str(file.resolve())
                seen.add(source)
                try:
                    raw = file.read_bytes()
                    digest = content_hash(raw)
                    if self._sources.get(source, {}).get("hash") == digest:
                        report.chunks_unchanged += len(self._sources[source]["chunk_ids"])
                        continue
                    chunks = [c for doc in read_file(Path(source), raw) for c in self.chunker.split(doc)]
                except (OSError, UnreadableFile) as err:
                    reason = str(err) if isinstance(err, UnreadableFile) else f"cannot read: {err}"
                    report.files_skipped.append((str(file), reason))
                    continue
                pending.append((source, digest, chunks))
                report.files_indexed += 1
                if sum(len(c) for _, _, c in pending) >= FLUSH_CHUNKS:
                    self._flush(pending, report)
                    pending = []
            self._flush(pending, report)
            for folder in (p.resolve() for p in paths if p.is_dir()):
                prefix = str(folder) + os.sep
                for source in [s for s in self._sources if s.startswith(prefix) and s not in seen]:
                    report.chunks_removed += self._remove_source(source)
        report.seconds = time.perf_counter() - start
        logger.info("indexed %s", report)
        return report

    def _flush(self, pending: list[tuple[str, str, list[Chunk]]], report: IndexReport) -> None:
        """Embed and store the new chunks of ``pending`` files, drop their stale chunks, record their hashes."""
        keys = self._dedup_keys()
        new: list[Chunk] = []
        kept_by_source: dict[str, list[str]] = {}
        for source, _, chunks in pending:
            old_ids = set(self._sources.get(source, {}).get("chunk_ids", []))
            kept = []
            for chunk in chunks:
                if chunk.id in old_ids:
                    report.chunks_unchanged += 1
                    kept.append(chunk.id)
                    continue
                key = text_key(chunk.text)
                if key in keys:
                    report.chunks_duplicate += 1
                    continue
                keys[key] = chunk.id
                new.append(chunk)
                kept.append(chunk.id)
            kept_by_source[source] = kept
            stale = old_ids - set(kept)
            if stale:
                self._delete_ids(sorted(stale))
                report.chunks_removed += len(stale)
        self._add_chunks(new)
        report.chunks_added += len(new)
        for source, digest, _ in pending:
            self._sources[source] = {"hash": digest, "chunk_ids": kept_by_source[source]}

    def _dedup_keys(self) -> dict[str, str]:
        if self._text_keys is None:
            self._text_keys = {text_key(c.text): c.id for c in self.store.all_chunks()}
        return self._text_keys

    def _remove_source(self, source: str) -> int:
        ids = self._sources.pop(source, {}).get("chunk_ids", [])
        self._delete_ids(ids)
        return len(ids)

    def _add_chunks(self, chunks: list[Chunk]) -> None:
        for start in range(0, len(chunks), FLUSH_CHUNKS):
            batch = chunks[start: start + FLUSH_CHUNKS]
            vectors = self._embed_documents([c.text for c in batch], [c.id for c in batch])
            self.store.add([c.id for c in batch], vectors, batch)
            if self._text_keys is not None:
                self._text_keys.update({text_key(c.text): c.id for c in batch})
            self._bm25 = None

    def _embed_documents(self, texts: list[str], ids: list[str]) -> np.ndarray:
        if self.kv_cache is not None:
            self._cache_states(texts, ids)
        if self.embedder is self.model:
            return self.model.embed(texts, kind="document", token_budget=self.embed_token_budget)
        return np.asarray(self.embedder.embed(texts, kind="document"), dtype=np.float32)

    def _cache_states(self, texts: list[str], ids: list[str]) -> None:
        cache = self.kv_cache
        compute_states(self.model, [self._ids(t) for t in texts], self._prefix_piece().state,
                       token_budget=self.embed_token_budget, on_state=lambda i, state: cache.put(ids[i], state))

    def warm_kv_cache(self, chunk_ids: Sequence[str] | None = None) -> int:
        """Compute the KV states of stored chunks that have none in the KV cache (all chunks when ``chunk_ids``
        is None), e.g. after loading a saved index with ``kv_reuse=True``. Returns how many were computed.

        Example:
            >>> rag = RagPipeline.load("my-index", kv_reuse=True); rag.warm_kv_cache()
        """
        if self.kv_cache is None:
            raise ValueError("warm_kv_cache needs a pipeline created with kv_reuse=True")
        with self._lock:
            chunks = self.store.all_chunks() if chunk_ids is None else self.store.get(list(chunk_ids))
            missing = [c for c in chunks if c.id not in self.kv_cache]
            for start in range(0, len(missing), FLUSH_CHUNKS):
                batch = missing[start: start + FLUSH_CHUNKS]
                self._cache_states([c.text for c in batch], [c.id for c in batch])
        return len(missing)

    def _delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        if self._text_keys is not None:
            gone = set(ids)
            self._text_keys = {k: v for k, v in self._text_keys.items() if v not in gone}
        self.store.delete(list(ids))
        if self.kv_cache is not None:
            self.kv_cache.discard(ids)
        self._bm25 = None

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None) -> list[str]:
        """Add ready-made passages, one chunk per text (not re-chunked; a text with an id already stored
        replaces it). Returns the ids (given, or a hash of source + text).

        Example:
            >>> rag.add_texts(["Paris is the capital of France."], [{"source": "geo"}])
        """
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
            self._delete_ids([c.id for c in chunks if self.store.get([c.id])])
            self._add_chunks(chunks)
        return [c.id for c in chunks]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""
        if isinstance(ids, str):
            raise TypeError("delete() takes a list of ids, got a single str")
        gone = set(ids)
        with self._lock:
            self._delete_ids(list(ids))
            for record in self._sources.values():
                record["chunk_ids"] = [i for i in record["chunk_ids"] if i not in gone]

    # ------------------------------------------------------------------ retrieval
    def retrieve(self, question: str, k: int = 4) -> list[RetrievedChunk]:
        """The ``k`` best chunks for ``question`` (dense, BM25 or hybrid per ``self.retrieval``).

        Example:
            >>> [(r.rank, r.chunk.metadata["source"]) for r in rag.retrieve("open a file", k=2)]
        """
        return self._retrieve(question, k)[0]

    def _retrieve(self, question: str, k: int) -> tuple[list[RetrievedChunk], float | None]:
        """The k best chunks and the best dense hit's score (None without a dense ranking)."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        with self._lock:
            if not len(self.store):
                return [], None
            fetch = max(k, self.candidates) if self.retrieval == "hybrid" else k
            rankings = self._rankings(question, fetch)
            if self.retrieval == "hybrid":
                scored = fuse(rankings, method=self.fusion, dense_weight=self.dense_weight, rrf_k=self.rrf_k)[:k]
            else:
                scored = rankings[0][:k]
            chunks = {c.id: c for c in self.store.get([i for i, _ in scored])}
        results = [RetrievedChunk(chunks[i], float(s), rank) for rank, (i, s) in enumerate(scored, start=1)]
        best_dense = rankings[0][0][1] if self.retrieval != "bm25" and rankings[0] else None
        return results, best_dense

    def _rankings(self, question: str, fetch: int) -> list[list[tuple[str, float]]]:
        """The (id, score) rankings of the retrievers ``self.retrieval`` uses ([dense, BM25] for hybrid), each
        ``fetch`` long."""
        rankings: list[list[tuple[str, float]]] = []
        if self.retrieval in ("dense", "hybrid"):
            rankings.append([(c.id, s) for c, s in self.store.search(self._embed_query(question), fetch)])
        if self.retrieval in ("bm25", "hybrid"):
            bm25, row_ids = self._bm25_index()
            rankings.append([(row_ids[row], s) for row, s in bm25.search(question, fetch)])
        return rankings

    def _embed_query(self, question: str) -> np.ndarray:
        return np.asarray(self.embedder.embed(question, kind="query"), dtype=np.float32)

    def stored_vectors(self, chunks: Sequence[RetrievedChunk]) -> np.ndarray | None:
        """(n, dim) vectors the store holds for ``chunks`` when they are this model's own document
        embeddings (single-model pipeline), so checks that compare with them need not embed the chunks
        again; ``None`` when another embedder made them or a chunk is not stored.

        Example:
            >>> answer_consistency(model, q, a.answer, texts, chunk_embeddings=rag.stored_vectors(a.chunks))
        """
        if self.embedder is not self.model or not chunks:
            return None
        try:
            return self.store.vectors([c.chunk.id for c in chunks])
        except KeyError:
            return None

    def _bm25_index(self) -> tuple[BM25Index, list[str]]:
        if self._bm25 is None:
            chunks = self.store.all_chunks()
            self._bm25 = (BM25Index([c.text for c in chunks]), [c.id for c in chunks])
        return self._bm25

    # ------------------------------------------------------------------ answering
    def answer(self, question: str, k: int = 3, **generation_kwargs) -> RagAnswer:
        """Retrieve ``k`` chunks and answer from them. ``generation_kwargs``: max_new_tokens, temperature,
        top_p, stop (default: newline), seed.

        Example:
            >>> a = rag.answer("Who wrote it?"); a.answer, a.abstained, [c.chunk.id for c in a.chunks]
        """
        events = self.stream_answer(question, k, **generation_kwargs)
        return _drain(events)

    def answer_from_chunks(self, question: str, chunks: Sequence[RetrievedChunk | Chunk | str],
                           **generation_kwargs) -> RagAnswer:
        """Answer from the given context only (no retrieval): RetrievedChunks, Chunks or plain strings."""
        context = [_as_retrieved(c, rank) for rank, c in enumerate(chunks, start=1)]
        return _drain(self._answer_events(question, context, time.perf_counter(), 0.0, generation_kwargs))

    def stream_answer(self, question: str, k: int = 3, **generation_kwargs) -> Iterator[dict]:
        """Yield ``{"type": "sources", "chunks"}``, then ``{"type": "token", "text"}`` pieces, then
        ``{"type": "done", "answer": RagAnswer}``."""
        start = time.perf_counter()
        chunks, best_dense = self._retrieve(question, k)
        retrieval_s = time.perf_counter() - start
        off_topic = (self.min_dense_score is not None and self.embedder is self.model and best_dense is not None
                     and best_dense < self.min_dense_score)
        return self._answer_events(question, chunks, start, retrieval_s, generation_kwargs, off_topic)

    def _answer_events(self, question: str, chunks: list[RetrievedChunk], start: float,
                       retrieval_s: float, generation_kwargs: dict, off_topic: bool = False) -> Iterator[dict]:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        params = check_sampling(generation_kwargs.pop("max_new_tokens", self.max_new_tokens),
                                generation_kwargs.pop("temperature", 0.0), generation_kwargs.pop("top_p", 1.0),
                                generation_kwargs.pop("stop", ["\n"]), generation_kwargs.pop("seed", None))
        if generation_kwargs:
            raise TypeError(f"unknown generation arguments {sorted(generation_kwargs)}; use max_new_tokens, "
                            f"temperature, top_p, stop, seed")
        chunks = self._fit_context(question, chunks, params.max_new_tokens)
        return self._events(question, chunks, params, start, retrieval_s, off_topic)

    def _events(self, question, chunks, params, start, retrieval_s, off_topic: bool) -> Iterator[dict]:
        yield {"type": "sources", "chunks": chunks}
        generation_start = time.perf_counter()
        readings: list[Reading] = []
        first = None
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        abstention = Reading([], self.prompt.abstain_phrase, "", True, 0.0, 0)
        if not chunks or off_topic:  # nothing (relevant) to answer from
            best = abstention
        elif self.reading == "per_chunk" and len(chunks) > 1:
            for chunk in chunks:  # each chunk read alone; the answers are compared once all are in
                run = self._generation(question, [chunk], params)
                readings.append(self._reading(run, "".join(run), [chunk], question, usage))
            best = best_reading(readings) or abstention
            first = time.perf_counter() - generation_start
            yield {"type": "token", "text": best.raw_answer}
        else:
            run = self._generation(question, chunks, params)
            try:
                for piece in run:
                    if run.beams == 1:  # greedy or sampled: streamed as decoded (no checks to fail)
                        yield {"type": "token", "text": piece}
            finally:
                run.close()
            readings.append(self._reading(run, run.result.text, chunks, question, usage))
            best, first = best_reading(readings) or abstention, run.first_token_s
            if run.beams > 1:  # the beam search's answer arrives whole, once it is checked
                yield {"type": "token", "text": best.raw_answer}
        end = time.perf_counter()
        ttft = (generation_start - start) + (first if first is not None else end - generation_start)
        timings = {"retrieval_s": retrieval_s, "generation_s": end - generation_start, "ttft_s": ttft,
                   "prefill_s": first if first is not None else 0.0, "total_s": end - start}
        yield {"type": "done", "answer": RagAnswer(question, best.answer, chunks, best.abstained, timings, usage,
                                                   best.raw_answer, readings, best.chunk_ids)}

    def _generation(self, question: str, chunks: list[RetrievedChunk], params) -> PieceGeneration:
        """The decoding of an answer from ``chunks`` (beam search when greedy and ``beams > 1``)."""
        beams = self.beams if params.temperature == 0.0 else 1
        texts = [c.chunk.text for c in chunks]
        accept = [self.prompt.grounded_in(texts, question)] if beams > 1 else []
        if beams > 1 and self.prefer_spans:
            accept.insert(0, self.prompt.grounded_in(texts, question, spans_only=True))
        return PieceGeneration(self.model, self._pieces(question, chunks), params,
                               self.stop_pattern, self._constraint(chunks), beams, accept)

    def _reading(self, run: PieceGeneration, raw: str, chunks: list[RetrievedChunk], question: str,
                 usage: dict[str, int]) -> Reading:
        """The finished ``run`` as a Reading (its token counts added to ``usage``)."""
        usage["prompt_tokens"] += run.result.prompt_tokens
        usage["completion_tokens"] += run.result.completion_tokens
        answer, abstained = self.prompt.postprocess(raw, question)
        return Reading([c.chunk.id for c in chunks], answer, raw, abstained, run.logprob, run.result.completion_tokens,
                       run.passed_checks)

    def _fit_context(self, question: str, chunks: list[RetrievedChunk], max_new_tokens: int) -> list[RetrievedChunk]:
        """Drop the lowest-ranked chunks while the prompt would not fit the context window."""
        chunks = list(chunks)
        while chunks:
            prompt = self.prompt.render(self.model, [c.chunk.text for c in chunks], question)
            if self.model.count_tokens(prompt) + max_new_tokens < self.model.context_window:
                break
            logger.warning("prompt too long for the context window: dropping chunk %s", chunks[-1].chunk.id)
            chunks.pop()
        return chunks

    def _pieces(self, question: str, chunks: list[RetrievedChunk]) -> list[Piece]:
        """The prompt as pieces; with kv_reuse the fixed start and the first chunk carry their cached states."""
        segments = self.prompt.segments(self.model, [c.chunk.text for c in chunks], question)
        pieces = [self._prefix_piece(segments.before_context)]
        for i, retrieved in enumerate(chunks):
            if i:
                pieces.append(Piece(self._ids(segments.separator)))
            ids = self._ids(retrieved.chunk.text)
            reuse = self.kv_cache is not None and i == 0  # a state is exact only right after the prompt start
            pieces.append(Piece(ids, self._chunk_state(retrieved.chunk, ids) if reuse else None))
        pieces.append(Piece(self._ids(segments.before_question)))
        pieces.append(Piece(self._ids(question)))
        pieces.append(Piece(self._ids(segments.after_question)))
        return [p for p in pieces if p.ids]

    def _constraint(self, chunks: list[RetrievedChunk]) -> CopySpanConstraint | None:
        if self.answer_mode != "extractive":
            return None
        return CopySpanConstraint(self.model.tokenizer, [self._ids(c.chunk.text) for c in chunks],
                                  [self._ids(self.prompt.abstain_phrase)], self.model.eos_token_ids)

    def _ids(self, text: str) -> list[int]:
        return self.model.tokenizer(text, add_special_tokens=False).input_ids if text else []

    def _prompt_start(self) -> str:
        """The prompt's fixed start (system instruction, few-shot turns, the template up to the context)."""
        return self.prompt.segments(self.model, [], "").before_context

    def _prefix_piece(self, text: str | None = None) -> Piece:
        """The prompt's fixed start (``text``, rendered when not given) with its KV state, tokenized and computed
        once and reused (exact: it starts at 0)."""
        text = self._prompt_start() if text is None else text
        if text not in self._prefix:
            ids = self._ids(text)
            self._prefix = {text: Piece(ids, compute_kv(self.model, ids))}
        return self._prefix[text]

    def _chunk_state(self, chunk: Chunk, ids: list[int]) -> torch.Tensor:
        """The chunk's cached KV state (computed after the prompt start, and cached, when missing)."""
        state = self.kv_cache.get(chunk.id)
        if state is None or state.shape[3] != len(ids):
            state = compute_kv(self.model, ids, prefix=self._prefix_piece().state)
            self.kv_cache.put(chunk.id, state)
        return state

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Persist the index (store, manifest, file hashes, settings) to ``folder`` atomically: an
        interrupted save leaves the previous version in place and loadable."""
        with self._lock:
            def write(tmp: Path) -> None:
                if isinstance(self.store, FaissStore):
                    self.store.write_files(tmp)
                else:
                    self.store.persist(None)
                (tmp / PIPELINE_FILE).write_text(_json(self._settings()))

            return write_version(folder, write)

    def _settings(self) -> dict:
        return {"format": "gem_rag.pipeline/1", "manifest": self.manifest(), "store": self.store.describe(),
                "retrieval": self.retrieval, **{key: getattr(self, key) for key in LATER_SETTINGS},
                "prompt_template": self.prompt.template, "system_prompt": self.prompt.system,
                "examples": [list(e) for e in self.prompt.examples], "chunk_tokens": self.chunker.chunk_tokens,
                "chunk_overlap": self.chunker.overlap, "max_new_tokens": self.max_new_tokens,
                "sources": self._sources}

    @classmethod
    def load(cls, folder: str | os.PathLike, model=None, **kwargs) -> "RagPipeline":
        """Reopen a pipeline saved with :meth:`save`. Raises IndexMismatchError when ``model`` (or the
        ``embedder`` keyword) is not what the index was built with, CorruptIndexError when damaged."""
        version = current_version(folder)
        settings = read_json(version / PIPELINE_FILE)
        if settings.get("format") != "gem_rag.pipeline/1":
            raise IndexMismatchError(f"{folder} is not a saved RagPipeline (format {settings.get('format')!r})")
        model = resolve_model(model)
        stored = settings["manifest"]
        check_manifest(stored, embedder_manifest(kwargs.get("embedder") or model), str(folder))
        store = open_store(settings["store"], version)
        store.manifest = {**stored, **getattr(store, "manifest", {})}
        options = {key: settings[key] for key in ("retrieval", "prompt_template", "system_prompt", "chunk_tokens",
                                                   "chunk_overlap", "max_new_tokens")}
        options.update({key: settings[key] for key in LATER_SETTINGS if key in settings})
        options["examples"] = [tuple(e) for e in settings["examples"]]
        pipeline = cls(model, store, **{**options, **kwargs})
        pipeline._sources = settings["sources"]
        return pipeline


def open_store(description: dict, version: Path) -> VectorStore:
    """Reopen the store a pipeline was saved with."""
    kind = description.get("kind")
    if kind == "FaissStore":
        return FaissStore.read_files(version)
    if kind == "ChromaStore":
        from gem_rag.rag.chroma import ChromaStore

        return ChromaStore.from_description(description)
    raise IndexMismatchError(f"unknown store kind {kind!r} in the saved pipeline")


def _as_retrieved(item, rank: int) -> RetrievedChunk:
    if isinstance(item, RetrievedChunk):
        return item
    if isinstance(item, Chunk):
        return RetrievedChunk(item, 0.0, rank)
    if isinstance(item, str) and item.strip():
        return RetrievedChunk(Chunk(chunk_id("", 0, len(item), item), item, {"source": "", "title": ""}), 0.0, rank)
    raise TypeError(f"chunks must be RetrievedChunk, Chunk or non-empty str items, got {type(item).__name__}")


def best_reading(readings: list[Reading], rank_penalty: float = READING_RANK_PENALTY,
                 checked_only: bool = True) -> Reading | None:
    """The non-abstaining reading (in retrieval order) with the highest log-probability less ``rank_penalty``
    per rank below the first, among those whose answer passed the answer checks; the first reading when all
    abstain. When answers came but none passed the checks: None (abstain) with ``checked_only``, else the best
    of them."""
    answered = [(r.logprob - rank_penalty * rank, r) for rank, r in enumerate(readings)
                if not r.abstained and r.answer]
    checked = [pair for pair in answered if pair[1].passed_checks]
    if checked or (answered and not checked_only):
        return max(checked or answered, key=lambda pair: pair[0])[1]
    return None if answered else readings[0]


def _drain(events: Iterator[dict]) -> RagAnswer:
    for event in events:
        if event["type"] == "done":
            return event["answer"]
    raise RuntimeError("the answer stream ended without a result")


def _json(data: dict) -> str:
    import json

    return json.dumps(data, indent=1, ensure_ascii=False)
