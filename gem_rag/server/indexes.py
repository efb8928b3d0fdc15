"""Cached indexes for the demo, ``ask``, ``index`` and ``serve``: built once, then loaded in a second.

An index of a set of paths lives under ``<GEM_RAG_CACHE>/indexes/<name>-<key>/``; the key hashes the
resolved paths, the model and the pipeline settings, so another model or setting gets its own index.
Reopening a cached index re-runs the (incremental) indexing, which only embeds changed files.

Example:
    >>> pipeline, report = open_index(BUNDLED_CORPUS, progress=True)
    >>> pipeline.answer("How do I define a class?").answer
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Sequence

from gem_rag.core.loading import cache_root
from gem_rag.core.model import GemModel

logger = logging.getLogger(__name__)

BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo_corpus"
INDEX_FORMAT = 1  # bump when the cached layout written here changes


def index_folder(paths: Sequence[Path], model: GemModel) -> Path:
    """Cache folder of the index over ``paths`` built with ``model``."""
    resolved = sorted(str(Path(p).expanduser().resolve()) for p in paths)
    key_text = "\n".join([f"format={INDEX_FORMAT}", f"model={model.name}", *resolved])
    key = hashlib.sha1(key_text.encode("utf-8")).hexdigest()[:12]
    stem = "demo" if resolved == [str(BUNDLED_CORPUS)] else re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(resolved[0]).name)[:40]
    return cache_root() / "indexes" / f"{stem or 'docs'}-{key}"


def open_index(paths: Path | Sequence[Path], model: GemModel | None = None, *, progress: bool = False):
    """Load the cached index over ``paths`` (building or updating it as needed) -> (pipeline, report).

    ``report`` is the :class:`gem_rag.rag.IndexReport` of the update run; files that did not change are
    not embedded again, so a second call costs about a second.
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
    report = pipeline.index(paths, progress=progress)
    if report.chunks_added or report.chunks_removed or not folder.exists():
        pipeline.save(folder)
    return pipeline, report


def display_source(source: str) -> str:
    """A short form of a chunk's source path: relative to the bundled corpus, else the path itself."""
    marker = "/data/demo_corpus/"
    return source.split(marker, 1)[1] if marker in source else source
