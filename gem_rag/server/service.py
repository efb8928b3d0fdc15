"""RagService: the app's live index (a RagPipeline on the shared model), its status, and answers as JSON.

Indexing (uploads, a folder) runs in a background thread; while it runs, questions are refused with a
clear message rather than read from a half-written index.

Example:
    >>> service = RagService(model, pipeline)
    >>> service.answer("How do I open a file?", k=3)["answer"]
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from gem_rag.core.model import GemModel
from gem_rag.server.indexes import display_source

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 400


class IndexBusyError(RuntimeError):
    """Documents are being indexed; ask again when the status says ready."""


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

    def __init__(self, model: GemModel, pipeline=None, *, corpus_label: str = "", uploads_folder: Path | None = None):
        self.model = model
        self.pipeline = pipeline
        self.corpus_label = corpus_label
        self.uploads_folder = uploads_folder
        self._lock = threading.Lock()
        self._indexing = False
        self._last_event = "ready" if pipeline is not None else "no documents indexed yet"
        self._check = consistency_checker()

    # ------------------------------------------------------------------ status and indexing
    def status(self) -> dict:
        store = self.pipeline.store if self.pipeline is not None else None
        with self._lock:
            state = "indexing" if self._indexing else ("ready" if self.pipeline is not None else "empty")
            message = self._last_event
        return {
            "state": state,
            "message": message,
            "corpus": self.corpus_label,
            "chunks": len(store) if store is not None else 0,
            "model": self.model.name,
            "consistency_available": self._check is not None,
        }

    def start_indexing(self, paths: list[Path], label: str) -> None:
        """Index ``paths`` into the live pipeline in a background thread (raises IndexBusyError if one runs)."""
        with self._lock:
            if self._indexing:
                raise IndexBusyError("documents are already being indexed; wait until the status says ready")
            self._indexing = True
            self._last_event = f"indexing {label}…"
        threading.Thread(target=self._index, args=(paths, label), name="gem-rag-index", daemon=True).start()

    def _index(self, paths: list[Path], label: str) -> None:
        try:
            if self.pipeline is None:
                from gem_rag.rag import RagPipeline

                self.pipeline = RagPipeline(self.model)
            report = self.pipeline.index(paths)
            skipped = f"; skipped {len(report.files_skipped)} ({report.files_skipped[0][1]})" if report.files_skipped else ""
            event = (f"indexed {label}: {report.files_indexed} files, {report.chunks_added} new chunks "
                     f"in {report.seconds:.1f} s{skipped}")
        except Exception as err:  # reported on the page, the previous index stays usable
            logger.exception("Indexing %s failed", label)
            event = f"indexing {label} failed: {err}"
        with self._lock:
            self._indexing, self._last_event = False, event

    def save_uploads(self, files: list[tuple[str, str]]) -> Path:
        """Write uploaded (name, text) files into a fresh folder under ``uploads_folder``; returns it."""
        if self.uploads_folder is None:
            raise RuntimeError("this server accepts no uploads (no uploads folder configured)")
        folder = self.uploads_folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        for name, text in files:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name).lstrip(".") or "upload.txt"
            (folder / safe).write_text(text, encoding="utf-8")
        return folder

    def _ready_pipeline(self):
        with self._lock:
            if self._indexing:
                raise IndexBusyError("documents are being indexed; ask again in a moment (see /api/status)")
            if self.pipeline is None:
                raise IndexBusyError("no documents are indexed yet: upload some or index a folder first")
            return self.pipeline

    # ------------------------------------------------------------------ answers
    def answer(self, question: str, k: int = 3, **generation) -> dict:
        """Answer ``question`` from the index -> the API's JSON body."""
        answer = self._ready_pipeline().answer(question, k=k, **generation)
        return self._answer_json(answer)

    def stream_answer(self, question: str, k: int = 3, **generation) -> Iterator[dict]:
        """Events: {"type": "sources", "sources": [...]}, {"type": "token", "text"}..., {"type": "done", ...answer}.

        Raises IndexBusyError at once (not when iterated) if the index cannot answer now.
        """
        return self._events(self._ready_pipeline().stream_answer(question, k=k, **generation))

    def _events(self, events) -> Iterator[dict]:
        try:
            for event in events:
                if event["type"] == "sources":
                    yield {"type": "sources", "sources": [source_json(c) for c in event["chunks"]]}
                elif event["type"] == "token":
                    yield {"type": "token", "text": event["text"]}
                elif event["type"] == "done":
                    yield {"type": "done", **self._answer_json(event["answer"])}
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _answer_json(self, answer) -> dict:
        return {
            "question": answer.question,
            "answer": answer.answer,
            "abstained": answer.abstained,
            "sources": [source_json(c) for c in answer.chunks],
            "answer_source_ids": list(answer.answer_chunk_ids),
            "timings": {name: round(float(value), 3) for name, value in answer.timings.items()},
            "usage": dict(answer.usage),
            "consistency": self._consistency(answer),
            "model": self.model.name,
        }

    def _consistency(self, answer) -> dict | None:
        if self._check is None:
            return None
        try:
            started = time.perf_counter()
            report = self._check(self.model, answer.question, answer.answer, [c.chunk.text for c in answer.chunks],
                                 scores=[c.score for c in answer.chunks],
                                 abstained=answer.abstained or None,  # None: detect it from the text too
                                 chunk_embeddings=self.pipeline.stored_vectors(answer.chunks))
            return {**report.to_dict(), "seconds": round(time.perf_counter() - started, 3)}
        except Exception:  # the indicator is an extra: never lose the answer because of it
            logger.exception("The consistency check failed")
            return None
