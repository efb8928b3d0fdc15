"""Rebuild the bundled corpus's embedding seed (gem_rag/data/demo_corpus/embeddings.npz) with the shipped model.

The demo's first start takes the corpus's vectors from this file instead of embedding 371 chunks for minutes
(see gem_rag/rag/embedding_seed.py). It embeds in fp32 whatever the CPU, so the seed holds the reference vectors
(tests/test_embedding_seed.py holds them to 1e-4 of an fp32 model's). Run it after the corpus, the chunker, the
sentence splitter or the shipped weights change: a seed that no longer fits is ignored chunk by chunk (those chunks
are embedded at first start), never used wrongly, and tests/test_embedding_seed.py fails until it is rebuilt.

    .venv/bin/python demos/build_demo_embeddings.py
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("build_demo_embeddings")


def main() -> None:
    from gem_rag import GemModel
    from gem_rag.rag import RagPipeline
    from gem_rag.rag.embedding_seed import EmbeddingSeed
    from gem_rag.server.indexes import BUNDLED_CORPUS, BUNDLED_SEED

    model = GemModel.from_pretrained(dtype="float32")  # the reference precision: bf16 vectors differ by ~1e-4
    pipeline = RagPipeline(model)
    started = time.perf_counter()
    report = pipeline.index(BUNDLED_CORPUS)
    logger.info("embedded %d chunks in %.0f s", report.chunks_added, time.perf_counter() - started)
    seed = EmbeddingSeed.from_index(pipeline)
    with tempfile.NamedTemporaryFile(dir=BUNDLED_SEED.parent, suffix=".npz", delete=False) as partial:
        seed.save(partial.name)
    EmbeddingSeed.load(partial.name)  # it reads back before it replaces the old seed
    Path(partial.name).chmod(0o644)  # a temporary file is the owner's only
    Path(partial.name).replace(BUNDLED_SEED)
    logger.info("wrote %s: %d chunks, %d units, model %s, artefact %s", BUNDLED_SEED, len(seed),
                len(seed.unit_spans), seed.header["model"], seed.header["gem_artefact"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
