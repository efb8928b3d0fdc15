"""Cached indexes for the demo, ``ask``, ``index`` and ``serve``: built once, then loaded in a second.

An index of a set of paths lives under ``<GEM_RAG_CACHE>/indexes/<name>-<key>/``; the key hashes the
resolved paths and the model name, so another model gets its own index (an index the pipeline refuses to
load, e.g. made with other GEM weights, is rebuilt: it is only a cache). Reopening a cached index re-runs
the (incremental) indexing, which only embeds new or changed files. The bundled corpus's first index takes
its vectors from the shipped seed (``BUNDLED_SEED``, :mod:`gem_rag.rag.embedding_seed`) where it fits the
model, so the demo's first start embeds nothing.

With ``--chroma HOST:PORT`` the index is a collection of that Chroma server instead, shared by every process
that opens it (``open_shared_index``): nothing is cached here, the collection is never rebuilt (one indexed
with another model is refused), and indexing into it skips the files whose chunks it holds already.

Example:
    >>> pipeline, report = open_index(BUNDLED_CORPUS, progress=True)
    >>> pipeline.answer("How do I define a class?").answer
    >>> pipeline, report = open_shared_index(chroma_store(("127.0.0.1", 8001), "docs"), [], model)
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from collections.abc import Callable, Sequence

from gem_rag.core.loading import cache_root
from gem_rag.core.model import GemModel

logger = logging.getLogger(__name__)

BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo_corpus" / "texts"  # SOURCE.md: one up
BUNDLED_SEED = BUNDLED_CORPUS.parent / "embeddings.npz"  # the bundled corpus embedded by the shipped model
INDEX_FORMAT = 1  # bump when the cached layout written here changes


def index_folder(paths: Sequence[Path], model: GemModel) -> Path:
    """Cache folder of the index over ``paths`` built with ``model``."""
    resolved = sorted(str(Path(p).expanduser().resolve()) for p in paths)
    key_text = "\n".join([f"format={INDEX_FORMAT}", f"model={model.name}", *resolved])
    key = hashlib.sha1(key_text.encode("utf-8")).hexdigest()[:12]
    stem = "demo" if resolved == [str(BUNDLED_CORPUS)] else re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(resolved[0]).name)[:40]
    return cache_root() / "indexes" / f"{stem or 'docs'}-{key}"


def open_index(paths: Path | Sequence[Path], model: GemModel | None = None, *, progress: bool = False,
               ray: dict | None = None, on_progress: Callable[[float], None] | None = None):
    """Load the cached index over ``paths`` (building or updating it as needed) -> (pipeline, report).

    ``report`` is the :class:`gem_rag.rag.IndexReport` of the update run; files that did not change are
    not embedded again, so a second call costs about a second. ``progress``: a progress bar on stderr;
    ``on_progress(share)``: called after each file with the share (0..1) of the text read so far. ``ray``:
    embed on Ray actors instead, with these keywords of :func:`gem_rag.rag.ray_index.index_with_ray` (which
    saves checkpoints as it goes).
    """
    from gem_rag import resolve_model
    from gem_rag.rag import RagPipeline

    model = resolve_model(model)
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    folder = index_folder(paths, model)
    pipeline = None
    if folder.exists():
        try:
            pipeline = RagPipeline.load(folder, model=model)
            logger.info("Loaded the cached index %s (%d chunks)", folder, len(pipeline.store))
        except (ValueError, OSError) as err:  # damaged or from another version: it is only a cache, rebuild it
            logger.warning("Cached index %s is unusable (%s); rebuilding it", folder, err)
    if pipeline is None:
        pipeline = RagPipeline(model)
    if ray is not None:
        from gem_rag.rag.ray_index import index_with_ray

        return pipeline, index_with_ray(pipeline, paths, folder=folder, **ray)
    seed = bundled_seed(paths)
    if progress or on_progress is not None:
        report = _index_with_progress(pipeline, paths, bar=progress, on_progress=on_progress, seed=seed)
    else:
        report = pipeline.index(paths, seed=seed)
    if report.chunks_added or report.chunks_removed or not folder.exists():
        pipeline.save(folder)
    return pipeline, report


def chroma_store(address: tuple[str, int], collection: str):
    """The ChromaStore of ``collection`` on the ``chroma run`` server at (host, port); ChromaUnavailableError
    (a RagIndexError) when none answers there, ImportError naming the extra without chromadb."""
    from gem_rag.rag.chroma import ChromaStore

    host, port = address
    return ChromaStore(host=host, port=port, collection=collection)


def open_shared_index(store, paths: Sequence[Path], model: GemModel | None = None, *, progress: bool = False,
                      ray: dict | None = None):
    """(pipeline, report) on ``store`` (a ChromaStore), after indexing ``paths`` into it (none: nothing is
    indexed, the pipeline answers from what the store holds). The per-file content hashes come from the
    chunks' metadata, so files indexed already, by any process, are neither read again nor embedded. Raises
    IndexMismatchError, before anything is read or written, when the collection holds another model's vectors."""
    from gem_rag import resolve_model
    from gem_rag.rag import IndexReport, RagPipeline
    from gem_rag.rag.manifest import check_manifest, embedder_manifest

    model = resolve_model(model)
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    check_manifest(store.manifest, embedder_manifest(model), store.where,
                   fix="give another --collection NAME to index your documents into, or start")
    pipeline = RagPipeline(model, store)
    if not paths:
        return pipeline, IndexReport()
    if ray is not None:
        from gem_rag.rag.ray_index import index_with_ray

        return pipeline, index_with_ray(pipeline, paths, **ray)  # resumable from the store: no checkpoint folder
    seed = bundled_seed(paths)
    return pipeline, (_index_with_progress(pipeline, paths, seed=seed) if progress else pipeline.index(paths, seed=seed))


def bundled_seed(paths: Sequence[Path]):
    """The bundled corpus's EmbeddingSeed when ``paths`` hold the corpus (or part of it) and the seed loads,
    else None (indexing then embeds as usual)."""
    from gem_rag.rag.embedding_seed import EmbeddingSeed

    corpus = BUNDLED_CORPUS.resolve()
    if not BUNDLED_SEED.is_file() or not any(Path(p).resolve().is_relative_to(corpus) for p in paths):
        return None
    try:
        return EmbeddingSeed.load(BUNDLED_SEED)
    except ValueError as err:
        logger.warning("%s", err)
        return None


def _index_with_progress(pipeline, paths: list[Path], *, bar: bool = True,
                         on_progress: Callable[[float], None] | None = None, seed=None):
    """``pipeline.index(paths)`` one file at a time, counting bytes (on a progress bar on stderr, and to
    ``on_progress(share)``), so the count moves while chunks are embedded (the slow part), then one pass over
    ``paths`` for removals and skipped files."""
    from tqdm import tqdm

    from gem_rag.rag.ingest import iter_files

    started = time.perf_counter()
    files = [file for file, reason in iter_files(paths) if reason is None]
    added = indexed = unchanged = duplicate = done = 0
    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, desc="indexing", unit="B", unit_scale=True, disable=not bar) as shown:
        for file in files:
            part = pipeline.index(file, seed=seed)
            added, indexed = added + part.chunks_added, indexed + part.files_indexed
            unchanged, duplicate = unchanged + part.chunks_unchanged, duplicate + part.chunks_duplicate
            done += file.stat().st_size
            shown.update(file.stat().st_size)
            if on_progress is not None:
                on_progress(done / total if total else 1.0)
    report = pipeline.index(paths)  # everything is indexed now: this only drops removed files, lists skipped ones
    report.chunks_added, report.files_indexed = added, indexed
    report.chunks_unchanged, report.chunks_duplicate = unchanged, duplicate
    report.seconds = time.perf_counter() - started
    return report


def display_source(source: str) -> str:
    """A short form of a chunk's source path: relative to the bundled corpus, 'upload: name' for an uploaded
    file, else the path itself."""
    marker = "/data/demo_corpus/texts/"
    if marker in source:
        return source.split(marker, 1)[1]
    uploads = str(uploads_folder()) + "/"
    if source.startswith(uploads):
        return "upload: " + Path(source).name
    return source


def uploads_folder() -> Path:
    """Where files uploaded from the page are kept (``<GEM_RAG_CACHE>/uploads``)."""
    return cache_root() / "uploads"
