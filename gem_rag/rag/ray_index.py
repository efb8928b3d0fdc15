"""Distributed indexing on Ray Data (``pip install "gem-rag[ray]"``): the same index ``RagPipeline.index`` builds,
with the embedding spread over a pool of Ray actors, one model each, on CPUs or GPUs of a Ray cluster.

The driver (this process) does what the single-process :class:`Indexer` does before embedding, with the
Indexer's own code: it finds the files (``iter_files``), skips those whose content hash is recorded, reads and
chunks the others (``read_file``, ``Chunker``: the same chunk ids; a ``.jsonl`` corpus of ``{"id", "title",
"text"}`` rows is a file like any other) and drops texts already stored or planned (de-duplication). The chunks left to embed become a Ray Dataset; ``map_batches`` sends them to
:class:`ChunkEmbedder` actors, which embed them with :func:`gem_rag.rag.indexer.embed_chunks`, the function the
single process uses: chunk vectors and unit (sentence) vectors from one forward pass. The driver writes what
comes back through :meth:`Indexer.add_embedded` in file order, whole files at a time, every ``flush_chunks``
chunks, and records each file's hash once all its chunks are stored, so any store works (FAISS, Chroma) and a
killed job, run again, embeds only the files not yet recorded. With ``folder`` the pipeline is saved there after
a write at most every ``checkpoint_seconds`` (0: after every write) and at the end: a kill then loses the
chunks in flight and those written since the last save.

The driver holds the text of the chunks it has yet to store (about the size of the new documents); the
actors' model must be the pipeline's (checked when each actor starts): the default loader builds the default
model on each actor, ``model_factory`` any other (a picklable callable returning a GemModel).

Example:
    >>> import ray; ray.init()                       # or ray.init(address="ray://head:10001")
    >>> rag = RagPipeline()
    >>> index_with_ray(rag, ["docs/"], folder="my-index", actors=2)  # RagPipeline.load("my-index") opens it
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gem_rag.rag.config import RagConfig
from gem_rag.rag.indexer import FLUSH_CHUNKS, FilePlan, as_paths, embed_chunks
from gem_rag.rag.manifest import CHECKED_KEYS, embedder_manifest
from gem_rag.rag.sentences import Unit
from gem_rag.rag.types import Chunk, IndexReport

logger = logging.getLogger(__name__)

INSTALL_HINT = 'distributed indexing needs Ray: pip install "gem-rag[ray]"'


def import_ray():
    """The ``ray`` module with Ray Data, or an ImportError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray without its Data library cannot run the actor pool)
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


@dataclass(frozen=True)
class ModelLoader:
    """What each actor runs to build its model: ``GemModel.from_pretrained`` with these arguments (the default
    model, on the CPU with one thread, when left as they are)."""

    name_or_path: str | None = None
    backend: str = "torch"
    device: str = "cpu"
    threads: int = 1

    def __call__(self):
        from gem_rag.core.model import GemModel

        return GemModel.from_pretrained(self.name_or_path, backend=self.backend, device=self.device,
                                        threads=self.threads)


class ChunkEmbedder:
    """The Ray Data actor: builds one model, then embeds batches of chunk rows (``id``, ``text``, ``title``)
    into rows of ``vector``, ``units`` (JSON spans) and ``unit_vectors`` (float32 bytes)."""

    def __init__(self, make_model: Callable, config: RagConfig, manifest: dict, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.model = make_model()
        self.config = config
        found = embedder_manifest(self.model)
        wrong = [key for key in CHECKED_KEYS if manifest.get(key) != found.get(key)]
        if wrong:
            raise ValueError(f"the Ray actors' model has {', '.join(f'{k}={found.get(k)!r}' for k in wrong)} but the "
                             f"pipeline's has {', '.join(f'{k}={manifest.get(k)!r}' for k in wrong)}: pass "
                             f"model_factory=, a picklable callable that builds the pipeline's model on an actor")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunks = [Chunk(str(i), str(text), {"title": str(title)})
                  for i, text, title in zip(batch["id"], batch["text"], batch["title"])]
        vectors, units, unit_vectors = embed_chunks(self.model, self.model, chunks, self.config)
        return {"id": np.asarray(batch["id"]), "vector": np.asarray(vectors, dtype=np.float32),
                "units": np.array([json.dumps([[u.start, u.end, u.kind] for u in row]) for row in units], dtype=object),
                "unit_vectors": np.array([np.asarray(v, dtype=np.float32).tobytes() for v in unit_vectors],
                                         dtype=object)}


def index_with_ray(pipeline, paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                   folder: str | os.PathLike | None = None, model_factory: Callable | None = None, actors: int = 1,
                   batch_size: int = 32, num_cpus: float = 1, num_gpus: float = 0,
                   flush_chunks: int = FLUSH_CHUNKS, checkpoint_seconds: float = 30.0,
                   on_write: Callable[[list[str]], None] | None = None) -> IndexReport:
    """Index ``paths`` (files and folders, as ``RagPipeline.index`` takes them) into ``pipeline``, embedding on
    ``actors`` Ray actors (``num_cpus``/``num_gpus`` each; one model per actor, ``batch_size`` chunks a call).
    Ray must be started (``ray.init``), else Ray Data starts a local cluster. ``on_write`` is called with the
    ids of each group of chunks written. Returns the IndexReport, as ``RagPipeline.index`` does."""
    ray = import_ray()
    _check_arguments(pipeline, actors, batch_size, num_cpus, num_gpus, flush_chunks, checkpoint_seconds)
    started = time.perf_counter()
    report = IndexReport()
    folders = as_paths(paths)
    indexer = pipeline.indexer
    with indexer.lock:
        seen: set[str] = set()
        plans = indexer.plan(list(indexer.read_changed(folders, report, seen)), report)
        writer = _Writer(pipeline, plans, report, folder, flush_chunks, checkpoint_seconds, on_write)
        rows = [{"id": c.id, "text": c.text, "title": str(c.metadata.get("title", ""))} for p in plans for c in p.new]
        logger.info("Ray indexing: %d files to store, %d chunks to embed on %d actor(s), %d unchanged files skipped",
                    len(plans), len(rows), actors, len(seen) - len(plans))
        if rows:
            threads = max(1, int(num_cpus))
            loader = model_factory or ModelLoader(backend=pipeline.model.backend,
                                                  device="cuda" if num_gpus else "cpu", threads=threads)
            embedded = ray.data.from_items(rows).map_batches(
                ChunkEmbedder, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=num_cpus, num_gpus=num_gpus,
                fn_constructor_args=(loader, pipeline.config, embedder_manifest(pipeline.model), threads))
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                writer.take(batch)
        writer.finish()
        removed = report.chunks_removed
        indexer.remove_missing(folders, seen, report)
        if folder is not None and (writer.unsaved or report.chunks_removed > removed or not Path(folder).exists()):
            pipeline.save(folder)
    report.seconds = time.perf_counter() - started
    logger.info("Ray indexing done: %s", report)
    return report


def _check_arguments(pipeline, actors, batch_size, num_cpus, num_gpus, flush_chunks, checkpoint_seconds) -> None:
    if pipeline.embedder is not pipeline.model:
        raise ValueError("index_with_ray embeds with the pipeline's own model (GEM); a pipeline with a separate "
                         "embedder indexes in this process: pipeline.index(paths)")
    for name, value in (("actors", actors), ("batch_size", batch_size), ("flush_chunks", flush_chunks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("checkpoint_seconds", checkpoint_seconds)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not num_cpus and not num_gpus:
        raise ValueError("each actor needs a CPU or a GPU: give num_cpus > 0 or num_gpus > 0")


class _Writer:
    """Stores embedded rows in plan order, whole files at a time, and saves checkpoints."""

    def __init__(self, pipeline, plans: list[FilePlan], report: IndexReport, folder, flush_chunks: int,
                 checkpoint_seconds: float, on_write):
        self.pipeline, self.plans, self.report = pipeline, plans, report
        self.folder = None if folder is None else Path(folder)
        self.flush_chunks, self.checkpoint_seconds, self.on_write = flush_chunks, checkpoint_seconds, on_write
        self.arrived: dict[str, tuple[np.ndarray, list[Unit], np.ndarray]] = {}
        self.next = 0  # index of the first plan not yet stored
        self.ready: list[FilePlan] = []
        self.total = sum(len(p.new) for p in plans)
        self.started = self.saved = time.monotonic()
        self.unsaved = report.chunks_removed > 0  # changes not in the folder yet (stale chunks dropped by the plan)

    def take(self, batch: dict[str, np.ndarray]) -> None:
        vectors = np.asarray(batch["vector"], dtype=np.float32)
        for row, chunk_id in enumerate(batch["id"]):
            spans = [Unit(int(s), int(e), str(k)) for s, e, k in json.loads(batch["units"][row])]
            unit_vectors = np.frombuffer(batch["unit_vectors"][row], dtype=np.float32).reshape(len(spans),
                                                                                               vectors.shape[1])
            self.arrived[str(chunk_id)] = (vectors[row], spans, unit_vectors)
        self._advance()
        if sum(len(p.new) for p in self.ready) >= self.flush_chunks:
            self._write()

    def finish(self) -> None:
        self._advance()
        if self.next < len(self.plans):
            missing = [c.id for c in self.plans[self.next].new if c.id not in self.arrived]
            raise RuntimeError(f"Ray returned no vectors for {len(missing)} chunks of {self.plans[self.next].source} "
                               f"(first: {missing[0]}); run the indexing again: it resumes from what is stored")
        self._write()

    def _advance(self) -> None:
        """Move the files whose chunks have all arrived, in file order, to ``ready``."""
        while self.next < len(self.plans) and all(c.id in self.arrived for c in self.plans[self.next].new):
            self.ready.append(self.plans[self.next])
            self.next += 1

    def _write(self) -> None:
        chunks = [c for plan in self.ready for c in plan.new]
        if not self.ready:
            return
        rows = [self.arrived.pop(c.id) for c in chunks]
        indexer = self.pipeline.indexer
        if chunks:
            indexer.add_embedded(chunks, np.stack([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows])
        indexer.record(self.ready)
        self.report.chunks_added += len(chunks)
        self.ready = []
        self.unsaved = True
        elapsed = time.monotonic() - self.started
        logger.info("Ray indexing: %d/%d chunks stored, %d/%d files (%.1f chunks/s)", self.report.chunks_added,
                    self.total, self.next, len(self.plans), self.report.chunks_added / max(elapsed, 1e-9))
        if self.folder is not None and time.monotonic() - self.saved >= self.checkpoint_seconds:
            self.pipeline.save(self.folder)
            self.saved, self.unsaved = time.monotonic(), False
            logger.info("Ray indexing: checkpoint saved in %s", self.folder)
        if self.on_write is not None:
            self.on_write([c.id for c in chunks])
