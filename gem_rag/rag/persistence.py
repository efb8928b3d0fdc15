"""Saving and loading a pipeline's state as one version of an index folder (gem_rag.rag.storage): the store's
files (or where its server is), the sentence index, and ``pipeline.json`` with the RagConfig, the manifest
and the per-file bookkeeping. One function writes, one reads, from the same keys.

Example:
    >>> save_pipeline_state("my-index", store, units, config, manifest, sources)
    >>> state = load_pipeline_state("my-index", embedder_manifest(model))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gem_rag.rag.config import RagConfig
from gem_rag.rag.manifest import check_manifest
from gem_rag.rag.storage import IndexMismatchError, current_version, read_json, require_keys, write_version
from gem_rag.rag.stores import VectorStore, open_store
from gem_rag.rag.unit_index import UnitIndex

PIPELINE_FILE = "pipeline.json"
PIPELINE_FORMAT = "gem_rag.pipeline/2"
PIPELINE_KEYS = ("format", "config", "manifest", "store", "sources")


@dataclass
class PipelineState:
    config: RagConfig
    store: VectorStore
    units: UnitIndex
    sources: dict
    store_in_version: bool  # the store's data is in the saved version (FAISS), not written as it changes (Chroma)


def save_pipeline_state(folder: str | os.PathLike, store: VectorStore, units: UnitIndex, config: RagConfig,
                        manifest: dict, sources: dict) -> Path:
    def write(tmp: Path) -> None:
        store.save(tmp)
        units.save(tmp)
        state = {"format": PIPELINE_FORMAT, "config": config.to_dict(), "manifest": manifest,
                 "store": store.describe(), "sources": sources}
        (tmp / PIPELINE_FILE).write_text(json.dumps(state, indent=1, ensure_ascii=False))

    return write_version(Path(folder), write)


def load_pipeline_state(folder: str | os.PathLike, embedder: dict) -> PipelineState:
    """The saved state, its manifest checked against ``embedder`` (gem_rag.rag.manifest.embedder_manifest)."""
    version = current_version(Path(folder))
    state = read_json(version / PIPELINE_FILE)
    if state.get("format") != PIPELINE_FORMAT:
        raise IndexMismatchError(f"{folder} is not a RagPipeline index of this version of gem_rag (format "
                                 f"{state.get('format')!r}, expected {PIPELINE_FORMAT!r}): index the documents again")
    require_keys(state, PIPELINE_KEYS, version / PIPELINE_FILE)
    check_manifest(state["manifest"], embedder, str(folder))
    store = open_store(dict(state["store"]), version)
    store.manifest = {**state["manifest"], **(getattr(store, "manifest", None) or {})}
    return PipelineState(RagConfig.from_dict(dict(state["config"])), store, UnitIndex.load(version),
                         {k: dict(v) for k, v in state["sources"].items()}, store.writes_through is False)
