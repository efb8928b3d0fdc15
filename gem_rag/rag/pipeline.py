"""RagPipeline: retrieval-augmented answers from one decoder LLM that embeds (GEM) and generates.

A question goes one way: ``Retriever`` (dense + BM25, fused) -> a reader (``SentenceReader``, the default:
the answering sentences, then a short answer grounded in them; or ``ChunkReader``) -> ``RagAnswer``. The
``Indexer`` keeps the store, the sentence index and the per-file bookkeeping. Every setting lives in one
:class:`RagConfig`, saved with the index.

Example:
    >>> from gem_rag.rag import RagPipeline
    >>> rag = RagPipeline()                              # default model, FAISS store, hybrid retrieval
    >>> rag.index("docs/")                               # IndexReport(files_indexed=..., chunks_added=...)
    >>> a = rag.answer("How do I open a file?"); a.answer, a.supporting_sentences[0].text
    >>> for event in rag.stream_answer("How do I open a file?"): ...   # SourcesEvent, SupportEvent, TokenEvent..., DoneEvent
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
from collections.abc import Generator, Iterator, Sequence

import numpy as np

from gem_rag.core.default import resolve_model
from gem_rag.core.generation import check_sampling
from gem_rag.rag.answer_generation import AnswerGenerator
from gem_rag.rag.chunk_reader import ChunkReader
from gem_rag.rag.cleaning import CLEANING_VERSION
from gem_rag.rag.config import FIXED_ON_LIVE_PIPELINE, RagConfig
from gem_rag.rag.embedding_seed import EmbeddingSeed
from gem_rag.rag.indexer import Indexer
from gem_rag.rag.ingest import Chunker, chunk_id
from gem_rag.rag.kv import ChunkKV, KVCache, model_fingerprint
from gem_rag.rag.manifest import check_manifest, embedder_manifest
from gem_rag.rag.persistence import load_pipeline_state, save_pipeline_state
from gem_rag.rag.prompt import AnswerPrompt, DEFAULT_SYSTEM, DEFAULT_TEMPLATE
from gem_rag.rag.retriever import Retriever
from gem_rag.rag.question_types import defining_pattern, definition_term
from gem_rag.rag.sentence_reader import ReadResult, SentenceReader
from gem_rag.rag.sentences import split_units
from gem_rag.rag.stores import FaissStore, VectorStore
from gem_rag.rag.types import (Chunk, DoneEvent, IndexReport, RagAnswer, RetrievedChunk, SourcesEvent, StreamEvent,
                               TokenEvent)

logger = logging.getLogger(__name__)

_SETTING_NAMES = frozenset(RagConfig.field_names())
SENTENCE_END = re.compile(r"(?<=[a-z0-9%)\]])\.(?=\s)")  # "1982. " but not "U.S. "


class RagPipeline:
    """Index documents, retrieve chunks and answer questions with one model.

    Args:
        model: a GemModel (``None``: the shared default).
        store: a VectorStore (``None``: an empty in-memory :class:`FaissStore`).
        embedder: anything with ``.embed(texts, kind=...)`` and ``.name``; ``None`` = the model itself.
        config: a :class:`RagConfig`; keyword settings (``retrieval="dense"``, ``reader="chunks"``...) change
            single fields of it (see RagConfig for each).
    """

    def __init__(self, model=None, store: VectorStore | None = None, *, embedder=None,
                 config: RagConfig | None = None, **settings):
        if store is not None and not isinstance(store, VectorStore):
            raise TypeError(f"store must be a gem_rag.rag.VectorStore (FaissStore, ChromaStore), got {type(store).__name__}")
        if embedder is not None and not callable(getattr(embedder, "embed", None)):
            raise TypeError("embedder must have an .embed(texts, kind=...) method")
        if config is not None and not isinstance(config, RagConfig):
            raise TypeError(f"config must be a RagConfig, got {type(config).__name__}")
        self.config = (config or RagConfig()).replace(**settings)
        self.model = resolve_model(model)
        self.embedder = embedder if embedder is not None else self.model
        self.store: VectorStore = store if store is not None else FaissStore()
        self._lock = threading.RLock()
        config = self.config
        self.chunker = Chunker(self.model.tokenizer, config.chunk_tokens, config.chunk_overlap)
        prompt = AnswerPrompt(template=config.prompt_template or DEFAULT_TEMPLATE,
                              system=DEFAULT_SYSTEM if config.system_prompt is None else config.system_prompt)
        if config.examples is not None:
            prompt.examples = config.examples
        self.generator = AnswerGenerator(self.model, prompt, SENTENCE_END if config.stop_at_sentence_end else None)
        self.indexer = Indexer(self.model, self.embedder, self.store, self.chunker, config, self._lock)
        self.retriever = Retriever(self.store, self.embedder, config)
        self.indexer.on_added.append(lambda chunks: self.retriever.invalidate())
        self.indexer.on_deleted.append(lambda ids: self.retriever.invalidate())
        if self.store.writes_through and len(self.store):  # chunks a crashed run stored before it could save
            self.indexer.reconcile_sources()
        _check_backend(self.model, config)
        self.kv = self._chunk_kv() if config.kv_reuse else None
        self.sentence_reader = SentenceReader(self.generator, self.indexer.units, config, self.retriever.stem_idf)
        self.chunk_reader = ChunkReader(self.generator, config, self.kv)
        self._check_store_manifest()

    def _chunk_kv(self) -> ChunkKV:
        config = self.config
        start = hashlib.sha256(self.generator.prompt_start().encode()).hexdigest()[:16]  # states depend on it
        cache = KVCache(config.kv_cache_bytes, disk_dir=config.kv_cache_dir, disk_max_bytes=config.kv_cache_disk_bytes,
                        fingerprint=f"{model_fingerprint(self.model)}|{start}")
        kv = ChunkKV(self.model, self.generator, cache, config.embed_token_budget)
        self.indexer.on_added.append(kv.add)
        self.indexer.on_deleted.append(kv.discard)
        return kv

    def configure(self, **changes) -> None:
        """Change reading and retrieval settings in place (``rag.configure(retrieval="bm25")``); settings of the
        index itself (chunking, the unit scope) and of the prompt and KV cache need a new pipeline."""
        fixed = sorted(set(changes) & FIXED_ON_LIVE_PIPELINE)
        if fixed:
            raise ValueError(f"{fixed} cannot change on a live pipeline: build a new RagPipeline with them")
        config = self.config.replace(**changes)
        _check_backend(self.model, config)
        self.config = config
        self.indexer.config = self.retriever.config = self.config
        self.sentence_reader.config = self.chunk_reader.config = self.config

    def __setattr__(self, name: str, value) -> None:
        if name in _SETTING_NAMES:  # "rag.retrieval = 'bm25'" would otherwise change nothing, silently
            raise AttributeError(f"{name} is a setting of the pipeline's RagConfig: use rag.configure({name}=...) "
                                 f"or build a RagPipeline with {name}=...")
        super().__setattr__(name, value)

    @property
    def kv_cache(self) -> KVCache | None:
        return self.kv.cache if self.kv is not None else None

    @property
    def prompt(self) -> AnswerPrompt:
        return self.generator.prompt

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> dict:
        """What this pipeline's vectors are made with (stored with the index, checked on reuse)."""
        return {**embedder_manifest(self.embedder), **self.chunker.settings(), "cleaning": CLEANING_VERSION,
                "unit_scope": self.config.unit_scope}

    def _check_store_manifest(self) -> None:
        stored = getattr(self.store, "manifest", None) or {}
        check_manifest(stored, self.manifest(), f"the store ({type(self.store).__name__})")
        if stored.get("model") is None:
            self.store.manifest = {**stored, **self.manifest()}

    # ------------------------------------------------------------------ indexing
    def index(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, progress: bool = False,
              seed: EmbeddingSeed | None = None) -> IndexReport:
        """Index files and folders (.txt .md .rst .html .jsonl). Unchanged files are skipped (content hash),
        changed files re-indexed (only their new chunks embedded), files gone from an indexed folder removed.
        ``seed``: vectors computed ahead of time (:class:`gem_rag.rag.embedding_seed.EmbeddingSeed`) for the
        texts it holds, used when it was made with this embedder and settings."""
        return self.indexer.index(paths, progress=progress, seed=seed)

    def add_texts(self, texts: Sequence[str], metadatas: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None) -> list[str]:
        """Add ready-made passages, one chunk per text (not re-chunked; a text with an id already stored
        replaces it). Returns the ids (given, or a hash of source + text)."""
        return self.indexer.add_texts(texts, metadatas, ids)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""
        self.indexer.delete(ids)

    def warm_kv_cache(self, chunk_ids: Sequence[str] | None = None) -> int:
        """Compute the KV states of stored chunks missing from the KV cache (all chunks when ``chunk_ids`` is
        None), e.g. after loading a saved index with ``kv_reuse=True``. Returns how many were computed."""
        if self.kv is None:
            raise ValueError("warm_kv_cache needs a pipeline created with kv_reuse=True")
        with self._lock:
            chunks = self.store.all_chunks() if chunk_ids is None else self.store.get(list(chunk_ids))
            missing = self.kv.missing(chunks)
            if missing:
                self.kv.add(missing)
        return len(missing)

    # ------------------------------------------------------------------ retrieval
    def retrieve(self, question: str, k: int | None = None) -> list[RetrievedChunk]:
        """The ``k`` best chunks for ``question`` (dense, BM25 or hybrid per ``config.retrieval``)."""
        return self.retriever.retrieve(question, k or self.config.k).chunks

    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector as the retriever computes it (the embedder's query embedding)."""
        return self.retriever.embed_query(question)

    def stored_vectors(self, chunks: Sequence[RetrievedChunk]) -> np.ndarray | None:
        """(n, dim) vectors the store holds for ``chunks`` when they are this model's own document embeddings,
        so checks comparing with them need not embed again; ``None`` otherwise."""
        if self.embedder is not self.model or not chunks:
            return None
        try:
            return self.store.vectors([c.chunk.id for c in chunks])
        except KeyError:
            return None

    # ------------------------------------------------------------------ answering
    def answer(self, question: str, k: int | None = None, **generation_kwargs) -> RagAnswer:
        """Retrieve ``k`` chunks and answer from them. ``generation_kwargs``: max_new_tokens, temperature,
        top_p, stop, seed."""
        return _drain(self.stream_answer(question, k, **generation_kwargs))

    def answer_from_chunks(self, question: str, chunks: Sequence[RetrievedChunk | Chunk | str],
                           **generation_kwargs) -> RagAnswer:
        """Answer from the given context only (no retrieval): RetrievedChunks, Chunks or plain strings."""
        context = [_as_retrieved(c, rank) for rank, c in enumerate(chunks, start=1)]
        query = self.embed_query(question) if self.config.reader == "sentences" and context else None
        if query is not None:
            self.indexer.ensure_units([c.chunk for c in context])
        return _drain(self._events(question, context, query, False, time.perf_counter(), 0.0, generation_kwargs))

    def stream_answer(self, question: str, k: int | None = None, **generation_kwargs) -> Iterator[StreamEvent]:
        """Yield a SourcesEvent (the chunks), a SupportEvent (the supporting sentences, sentences reader), the
        answer's TokenEvents, then a DoneEvent with the RagAnswer."""
        start = time.perf_counter()
        found = self.retriever.retrieve(question, k or self.config.k)
        for extra in self._definition_chunks(question) if self.config.reader == "sentences" else []:
            if all(c.chunk.id != extra.id for c in found.chunks):
                found.chunks.append(RetrievedChunk(extra, found.chunks[-1].score if found.chunks else 0.0,
                                                   len(found.chunks) + 1))
        self.indexer.ensure_units([c.chunk for c in found.chunks])
        off_topic = (self.config.min_dense_score is not None and self.embedder is self.model
                     and found.best_dense is not None and found.best_dense < self.config.min_dense_score)
        return self._events(question, found.chunks, found.query_vector, off_topic, start,
                            time.perf_counter() - start, generation_kwargs)

    def _definition_chunks(self, question: str) -> list[Chunk]:
        """The chunks a definition question reads beside the retrieved ones: the first chunk of the document its
        term titles ("What is albedo?": the article "Albedo" starts by saying) and the chunk, among those BM25 ranks
        first for the term, that holds a sentence defining it ("What is an abacist?": "The user of an abacus is
        called an abacist."). [] for other questions."""
        term = definition_term(question)
        pattern = defining_pattern(question) if term else None
        if term is None or pattern is None:
            return []
        defining = self.retriever.defining_chunk(
            term, lambda text: any(pattern.search(text[u.start: u.end]) for u in split_units(text)))
        found = {chunk.id: chunk for chunk in (self.retriever.lead_chunk(term), defining) if chunk is not None}
        return list(found.values())

    def _events(self, question: str, chunks: list[RetrievedChunk], query, off_topic: bool, start: float,
                retrieval_s: float, generation_kwargs: dict) -> Iterator[StreamEvent]:
        params = self._generation_params(question, generation_kwargs)
        if self.config.reader == "chunks":
            chunks = self._fit_context(question, chunks, params.max_new_tokens)
        return self._run_reader(question, chunks, query, off_topic, params, start, retrieval_s)

    def _run_reader(self, question, chunks, query, off_topic, params, start, retrieval_s) -> Iterator[StreamEvent]:
        yield SourcesEvent(chunks)
        reading_start = time.perf_counter()
        if off_topic or not chunks:  # nothing (relevant) to answer from
            result = ReadResult(self.prompt.abstain_phrase, True, "abstained")
            yield TokenEvent(result.answer)
        elif self.config.reader == "sentences":
            result = yield from _results(self.sentence_reader.read(question, chunks, query, params))
        else:
            result = yield from _results(self.chunk_reader.read(question, chunks, params))
        end = time.perf_counter()
        first = result.first_token_s if result.first_token_s is not None else end - reading_start
        timings = {"retrieval_s": retrieval_s, "generation_s": end - reading_start,
                   "ttft_s": (reading_start - start) + first, "prefill_s": result.first_token_s or 0.0,
                   "total_s": end - start}
        yield DoneEvent(RagAnswer(question=question, answer=result.answer, chunks=chunks, abstained=result.abstained,
                                  timings=timings, usage=result.usage, supporting_sentences=result.supporting,
                                  how=result.how, raw_answer=result.raw_answer, readings=result.readings,
                                  answer_chunk_ids=result.answer_chunk_ids))

    def _generation_params(self, question: str, kwargs: dict):
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        kwargs = dict(kwargs)
        params = check_sampling(kwargs.pop("max_new_tokens", self.config.max_new_tokens), kwargs.pop("temperature", 0.0),
                                kwargs.pop("top_p", 1.0), kwargs.pop("stop", ["\n"]), kwargs.pop("seed", None))
        if kwargs:
            raise TypeError(f"unknown generation arguments {sorted(kwargs)}; use max_new_tokens, "
                            f"temperature, top_p, stop, seed")
        return params

    def _fit_context(self, question: str, chunks: list[RetrievedChunk], max_new_tokens: int) -> list[RetrievedChunk]:
        """Drop the lowest-ranked chunks while the prompt would not fit the context window."""
        kept = list(chunks)
        while kept and not self.generator.fits(question, [c.chunk.text for c in kept], max_new_tokens):
            logger.warning("prompt too long for the context window: dropping chunk %s", kept[-1].chunk.id)
            kept.pop()
        if chunks and not kept:
            raise ValueError(f"the question and max_new_tokens={max_new_tokens} leave no room for any chunk in the "
                             f"model's context window of {self.model.context_window} tokens: ask a shorter question "
                             f"or lower max_new_tokens")
        return kept

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Persist the index (store, sentence index, manifest, file hashes, settings) to ``folder`` atomically:
        an interrupted save leaves the previous version in place and loadable."""
        with self._lock:
            return save_pipeline_state(folder, self.store, self.indexer.units, self.config, self.manifest(),
                                       self.indexer.sources)

    @classmethod
    def load(cls, folder: str | os.PathLike, model=None, **settings) -> RagPipeline:
        """Reopen a pipeline saved with :meth:`save` (``settings`` override saved reading/retrieval settings).
        Raises IndexMismatchError when ``model`` (or the ``embedder`` keyword) is not what the index was built
        with, CorruptIndexError when damaged."""
        model = resolve_model(model)
        embedder = settings.pop("embedder", None)
        state = load_pipeline_state(folder, embedder_manifest(embedder or model))
        config = state.config.replace(**settings)
        pipeline = cls(model, state.store, embedder=embedder, config=config)
        pipeline.indexer.sources = state.sources
        pipeline.indexer.units.update(state.units)
        if not state.store_in_version:  # a store written as it changes (Chroma): it, not the save, is the truth
            pipeline.indexer.reconcile_sources()
        return pipeline


def _results(items) -> Generator[StreamEvent, None, ReadResult]:
    """Pass a reader's events on; return its ReadResult (the last item)."""
    result = None
    for item in items:
        if isinstance(item, ReadResult):
            result = item
        else:
            yield item
    if result is None:
        raise RuntimeError("the reader ended without a result")
    return result


def _as_retrieved(item, rank: int) -> RetrievedChunk:
    if isinstance(item, RetrievedChunk):
        return item
    if isinstance(item, Chunk):
        return RetrievedChunk(item, 0.0, rank)
    if isinstance(item, str) and item.strip():
        return RetrievedChunk(Chunk(chunk_id("", 0, len(item), item), item, {"source": "", "title": ""}), 0.0, rank)
    raise TypeError(f"chunks must be RetrievedChunk, Chunk or non-empty str items, got {type(item).__name__}")


def _drain(events: Iterator[StreamEvent]) -> RagAnswer:
    for event in events:
        if isinstance(event, DoneEvent):
            return event.answer
    raise RuntimeError("the answer stream ended without a result")


def _check_backend(model, config: RagConfig) -> None:
    """Refuse settings the model's backend cannot run (llama.cpp: no beam search, no reusable KV states)."""
    if config.kv_reuse and not model.supports_kv_states:
        raise ValueError(f"kv_reuse=True needs reusable KV states, which the {model.backend} backend does not give "
                         f"(it reuses the cached prompt start by itself): set kv_reuse=False or use backend='torch'")
    if config.reader == "chunks" and config.beams > 1 and not model.supports_tree_decoding:
        raise ValueError(f"reader='chunks' with beams={config.beams} needs beam search, which the {model.backend} "
                         f"backend lacks: set beams=1 or use backend='torch'")
