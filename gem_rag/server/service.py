"""RagService: the app's live index (a RagPipeline on the shared model), its status, and answers as JSON.

Indexing (uploads, a folder) runs in a background thread into a COPY of the live pipeline, while questions
are answered from the live one; the copy replaces it (one assignment, under the lock) once it is complete,
so an answer never reads a half-written index and a failed indexing leaves the live index as it was. (A
pipeline whose store cannot be copied, e.g. a Chroma collection, is indexed in place; questions are then
refused with a clear message until it is done.)

Example:
    >>> service = RagService(model, pipeline)
    >>> service.answer("How do I open a file?", k=3)["answer"]
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from collections.abc import Callable, Iterator

from gem_rag.core.model import GemModel
from gem_rag.rag.types import DoneEvent, SourcesEvent, SupportEvent, TokenEvent
from gem_rag.server.indexes import display_source
from gem_rag.server.limits import ServerLimits, completion_budget, count_within, megabytes

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 400


class IndexBusyError(RuntimeError):
    """Documents are being indexed; ask again when the status says ready."""


class UploadQuotaError(RuntimeError):
    """An upload over the per-request size or the uploads folder's quota (HTTP 413)."""


def copy_pipeline(pipeline):
    """An independent copy of ``pipeline`` to index into while the original answers, or None when its store
    cannot be copied (a Chroma collection would be shared by both, not copied).

    Uses ``pipeline.copy()`` when the pipeline has one; else saves it to a temporary folder and loads it back
    (the copy then has the settings a save records).
    """
    copier = getattr(pipeline, "copy", None)
    if callable(copier):
        return copier()
    from gem_rag.rag import RagPipeline
    from gem_rag.rag.stores import FaissStore

    if type(pipeline) is not RagPipeline or not isinstance(pipeline.store, FaissStore):
        return None
    embedder = getattr(pipeline, "embedder", pipeline.model)
    options = {} if embedder is pipeline.model else {"embedder": embedder}
    with tempfile.TemporaryDirectory(prefix="gem-rag-copy-") as tmp:
        pipeline.save(tmp)
        return RagPipeline.load(tmp, model=pipeline.model, **options)


def consistency_checker():
    """``gem_rag.eval.consistency.answer_consistency`` when it is installed, else None."""
    try:
        from gem_rag.eval.consistency import answer_consistency
    except ImportError:
        return None
    return answer_consistency


def source_json(item) -> dict:
    """A RetrievedChunk as the API shows it."""
    meta = item.chunk.metadata or {}
    source = str(meta.get("source", ""))
    return {
        "rank": item.rank,
        "score": round(float(item.score), 4),
        "id": item.chunk.id,
        "title": meta.get("title") or Path(source).stem,
        "source": display_source(source),
        "text": item.chunk.text,
        "snippet": _snippet(item.chunk.text),
    }


_UNDERLINE = re.compile(r"^\s*([=\-~^#*+`'\"])\1{2,}\s*$", re.MULTILINE)  # reST heading lines
_ROLE = re.compile(r":[\w:.-]+:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")  # :mod:`json` -> json


def _snippet(text: str) -> str:
    """The passage as one readable line: reST/Markdown heading marks and role markup removed, cut to length."""
    text = _UNDERLINE.sub("", text)
    text = _ROLE.sub(r"\1", text)
    text = re.sub(r"^\s*#{1,6}\s+", "", text, flags=re.MULTILINE).replace("``", "")
    text = re.sub(r"={2,}", " ", text)  # ==Section== marks left in Wikipedia text
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


class RagService:
    """Holds the pipeline the app answers from; thread-safe."""

    def __init__(self, model: GemModel, pipeline=None, *, corpus_label: str = "", uploads_folder: Path | None = None,
                 limits: ServerLimits | None = None):
        self.model = model
        self.pipeline = pipeline
        self.corpus_label = corpus_label
        self.uploads_folder = uploads_folder
        self.limits = limits or ServerLimits()
        self._lock = threading.Lock()
        self._indexing = False
        self._in_place = False  # indexing the live pipeline itself (its store cannot be copied): no answers
        self._last_event = "ready" if pipeline is not None else "no documents indexed yet"
        self._check = consistency_checker()

    # ------------------------------------------------------------------ status and indexing
    def status(self) -> dict:
        with self._lock:
            pipeline, indexing, in_place = self.pipeline, self._indexing, self._in_place
            message = self._last_event
        state = "indexing" if indexing else ("ready" if pipeline is not None else "empty")
        return {
            "state": state,
            "message": message,
            "corpus": self.corpus_label,
            "chunks": len(pipeline.store) if pipeline is not None else 0,
            "model": self.model.name,
            "can_answer": pipeline is not None and not in_place,
            "consistency_available": self._check is not None,
        }

    def start_indexing(self, paths: list[Path], label: str) -> None:
        """Index ``paths`` in a background thread, into a copy of the live pipeline that replaces it when done
        (raises IndexBusyError if an indexing runs)."""
        self._claim(label)
        self._start(paths, label)

    def add_uploads(self, files: list[tuple[str, str]]) -> Path:
        """Save uploaded (name, text) files (see :meth:`save_uploads`) and index them in the background.

        Raises IndexBusyError (nothing saved) while an indexing runs, UploadQuotaError over a size limit.
        """
        label = f"{len(files)} uploaded file(s)"
        previous = self._claim(label)
        try:
            folder = self.save_uploads(files)
        except BaseException:
            with self._lock:
                self._indexing, self._last_event = False, previous
            raise
        self._start([folder], label)
        return folder

    def _claim(self, label: str) -> str:
        """Mark an indexing as running (IndexBusyError if one is); returns the status message it replaces."""
        with self._lock:
            if self._indexing:
                raise IndexBusyError("documents are already being indexed; wait until the status says ready")
            previous, self._indexing, self._last_event = self._last_event, True, f"indexing {label}…"
            return previous

    def start_opening(self, open_index: Callable[[Callable[[float], None]], tuple], label: str) -> None:
        """Open the first index in a background thread, ``open_index(progress) -> (pipeline, report)`` (e.g.
        building the cached index of the demo's corpus, gem_rag.server.indexes.open_index), so the page and the
        API serve at once; ``progress(share)`` (0..1) shows in the status, and questions get "ask again in a
        moment" until the pipeline is there (raises IndexBusyError if an indexing runs)."""
        self._claim(label)
        with self._lock:
            self.corpus_label = label

        def progress(share: float) -> None:
            with self._lock:
                self._last_event = f"indexing {label}… {share:.0%} of the text embedded"

        threading.Thread(target=self._run, args=(lambda: open_index(progress), label), name="gem-rag-index",
                         daemon=True).start()

    def _start(self, paths: list[Path], label: str) -> None:
        def job():
            target = self._indexing_target()
            return target, target.index(paths)

        threading.Thread(target=self._run, args=(job, label), name="gem-rag-index", daemon=True).start()

    def _run(self, job: Callable[[], tuple], label: str) -> None:
        """Run an indexing ``job() -> (pipeline, report)``; the pipeline it returns becomes the live one."""
        try:
            target, report = job()
            with self._lock:
                self.pipeline = target  # the swap: answers started before it finish on the previous pipeline
            skipped = f"; skipped {len(report.files_skipped)} ({report.files_skipped[0][1]})" if report.files_skipped else ""
            event = (f"indexed {label}: {report.files_indexed} files, {report.chunks_added} new chunks "
                     f"in {report.seconds:.1f} s{skipped}")
        except Exception as err:  # reported on the page; the live index is unchanged (unless indexed in place)
            logger.exception("Indexing %s failed", label)
            event = f"indexing {label} failed: {err}"
        with self._lock:
            self._indexing, self._in_place, self._last_event = False, False, event

    def _indexing_target(self):
        """The pipeline to index into: a new one, a copy of the live one, or (no copy possible) the live one."""
        live = self.pipeline
        if live is None:
            from gem_rag.rag import RagPipeline

            return RagPipeline(self.model)
        try:
            copy = copy_pipeline(live)
        except Exception:  # answering waits, but the documents still get indexed
            logger.exception("Copying the index failed: indexing in place")
            copy = None
        if copy is not None:
            return copy
        logger.warning("The index (%s store) is not copied: indexing in place, questions wait until it is done",
                       type(live.store).__name__)
        with self._lock:
            self._in_place = True
        return live

    def save_uploads(self, files: list[tuple[str, str]]) -> Path:
        """Write uploaded (name, text) files into a fresh folder under ``uploads_folder``; returns it.

        Raises UploadQuotaError (nothing written) when the texts are over the per-request size or would take
        the uploads folder past its quota, ValueError for a text that cannot be encoded as UTF-8.
        """
        if self.uploads_folder is None:
            raise RuntimeError("this server accepts no uploads (no uploads folder configured)")
        encoded = [(_safe_name(name), text.encode("utf-8")) for name, text in files]  # before anything is written
        self._check_quota(sum(len(data) for _, data in encoded))
        folder = self.uploads_folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        try:
            for i, (name, data) in enumerate(encoded):
                target = folder / name if not (folder / name).exists() else folder / f"{i}-{name}"
                target.write_bytes(data)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    def _check_quota(self, size: int) -> None:
        limit, quota = self.limits.max_upload_bytes, self.limits.uploads_quota_bytes
        if size > limit:
            raise UploadQuotaError(f"the uploaded files hold {size:,} bytes; this server takes at most "
                                   f"{megabytes(limit)} per upload: upload fewer files at a time")
        folder = self.uploads_folder
        used = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0
        if used + size > quota:
            raise UploadQuotaError(f"the uploads folder {folder} holds {used:,} bytes of its {megabytes(quota)} quota, "
                                   f"too little room for these {size:,} bytes: delete old uploads there (or start "
                                   f"the server with a larger --uploads-quota-mb)")

    def _ready_pipeline(self):
        with self._lock:
            if self._in_place:
                raise IndexBusyError("documents are being indexed; ask again in a moment (see /api/status)")
            if self.pipeline is None:
                if self._indexing:
                    raise IndexBusyError("the first documents are being indexed; ask again in a moment "
                                         "(see /api/status)")
                raise IndexBusyError("no documents are indexed yet: upload some or index a folder first")
            return self.pipeline

    # ------------------------------------------------------------------ answers
    def check_budget(self, question: str, max_tokens: int | None) -> None:
        """Raise OverBudget when ``max_tokens`` is over the server's limit, or the answer prompt of ``question``
        with one passage and the answer would not fit the model's context window."""
        pipeline = self.pipeline
        if pipeline is None:
            return  # nothing to answer from: the answer call says so
        try:
            prompt = pipeline.prompt.render(self.model, [], question)
        except (AttributeError, TypeError, ValueError):  # a pipeline without the usual prompt: judge the question
            prompt = question
        passage = getattr(getattr(pipeline, "chunker", None), "chunk_tokens", 0)
        tokens = count_within(self.model, prompt, self.model.context_window) + passage
        requested = max_tokens if max_tokens is not None else getattr(pipeline, "max_new_tokens", 64)
        completion_budget(self.model, tokens, requested, requested, self.limits, prompt_param="question")

    def answer(self, question: str, k: int | None = None, **generation) -> dict:
        """Answer ``question`` from the index (``k`` chunks, default the pipeline's setting) -> the API's JSON body."""
        pipeline = self._ready_pipeline()
        return self._answer_json(pipeline.answer(question, k=k, **generation), pipeline)

    def stream_answer(self, question: str, k: int | None = None, **generation) -> Iterator[dict]:
        """Events: {"type": "sources", "sources": [...]}, {"type": "token", "text"}..., {"type": "done", ...answer}.

        Raises IndexBusyError at once (not when iterated) if the index cannot answer now.
        """
        pipeline = self._ready_pipeline()
        return self._events(pipeline.stream_answer(question, k=k, **generation), pipeline)

    def _events(self, events, pipeline) -> Iterator[dict]:
        try:
            for event in events:
                if isinstance(event, SourcesEvent):
                    yield {"type": "sources", "sources": [source_json(c) for c in event.chunks]}
                elif isinstance(event, SupportEvent):
                    yield {"type": "support", "supporting_sentences": [s.to_dict() for s in event.sentences]}
                elif isinstance(event, TokenEvent):
                    yield {"type": "token", "text": event.text}
                elif isinstance(event, DoneEvent):
                    yield {"type": "done", **self._answer_json(event.answer, pipeline)}
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _answer_json(self, answer, pipeline) -> dict:
        consistency = self._consistency(answer, pipeline)
        if consistency and consistency.get("label") == "unsupported" and not answer.abstained:
            answer = _repaired(answer)  # never shown as if it were the answer
            consistency = {**consistency, "repaired": True}
        return {
            "question": answer.question,
            "answer": answer.answer,
            "abstained": answer.abstained,
            "how": answer.how,
            "supporting_sentences": [s.to_dict() for s in answer.supporting_sentences],
            "sources": [source_json(c) for c in answer.chunks],
            "answer_source_ids": list(answer.answer_chunk_ids),
            "timings": {name: round(float(value), 3) for name, value in answer.timings.items()},
            "usage": dict(answer.usage),
            "consistency": consistency,
            "model": self.model.name,
        }

    def _consistency(self, answer, pipeline) -> dict | None:
        if self._check is None:
            return None
        try:
            started = time.perf_counter()
            report = self._check(self.model, answer.question, answer.answer, [c.chunk.text for c in answer.chunks],
                                 scores=[c.score for c in answer.chunks],
                                 abstained=answer.abstained or None,  # None: detect it from the text too
                                 chunk_embeddings=pipeline.stored_vectors(answer.chunks))
            return {**report.to_dict(), "seconds": round(time.perf_counter() - started, 3)}
        except Exception:  # the indicator is an extra: never lose the answer because of it
            logger.exception("The consistency check failed")
            return None


def _repaired(answer):
    """An answer the consistency check found unsupported: its supporting sentence instead, or the abstention."""
    import dataclasses

    from gem_rag.rag.prompt import ABSTAIN_PHRASE

    if answer.supporting_sentences:
        return dataclasses.replace(answer, answer=" ".join(answer.supporting_sentences[0].text.split()), how="sentence")
    return dataclasses.replace(answer, answer=ABSTAIN_PHRASE, abstained=True, how="abstained")


def _safe_name(name: str) -> str:
    """An uploaded file's name as a plain file name inside the upload's folder (no path, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name).lstrip(".") or "upload.txt"
