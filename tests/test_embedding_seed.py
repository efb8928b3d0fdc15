"""The embedding seed: vectors computed ahead of time replace forward passes only where they fit (fast tier, tiny
model), and the shipped seed of the bundled corpus fits the shipped model and today's chunker (slow tier)."""

from __future__ import annotations

import numpy as np
import pytest

from gem_rag.rag import RagPipeline
from gem_rag.rag.embedding_seed import EmbeddingSeed
from gem_rag.rag.indexer import embed_chunks

TEXTS = {"aardvark.md": "# Aardvark\n\nThe aardvark is a mammal. It feeds almost exclusively on ants and termites.\n",
         "venv.md": "# Environments\n\nTo create one, run:\n\n    python3 -m venv tutorial-env\n\nThen activate it.\n"}


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text)
    return folder


def seeded_pipeline(tiny_model, docs, tmp_path) -> tuple[RagPipeline, EmbeddingSeed]:
    built = RagPipeline(tiny_model, min_dense_score=None, k=2)
    built.index(docs)
    EmbeddingSeed.from_index(built).save(tmp_path / "seed.npz")
    return built, EmbeddingSeed.load(tmp_path / "seed.npz")


def test_a_seeded_index_embeds_nothing_and_holds_the_same_vectors(tiny_model, docs, tmp_path, embedded):
    built, seed = seeded_pipeline(tiny_model, docs, tmp_path)
    embedded.clear()
    again = RagPipeline(tiny_model, min_dense_score=None, k=2)
    report = again.index(docs, seed=seed)
    assert embedded == [] and report.chunks_added == len(built.store) == len(seed) == 2
    ids = sorted(c.id for c in built.store.all_chunks())
    assert [c.id for c in again.store.all_chunks()] == [c.id for c in built.store.all_chunks()]  # same order
    np.testing.assert_array_equal(again.store.vectors(ids), built.store.vectors(ids))
    for chunk_id in ids:
        assert again.indexer.units.units(chunk_id) == built.indexer.units.units(chunk_id)
        np.testing.assert_array_equal(again.indexer.units.vectors(chunk_id), built.indexer.units.vectors(chunk_id))


def test_only_texts_the_seed_lacks_are_embedded(tiny_model, docs, tmp_path, embedded):
    _, seed = seeded_pipeline(tiny_model, docs, tmp_path)
    (docs / "venv.md").write_text(TEXTS["venv.md"].replace("Then activate it.", "Then activate it with source."))
    embedded.clear()
    pipeline = RagPipeline(tiny_model, min_dense_score=None, k=2)
    pipeline.index(docs, seed=seed)
    assert len(embedded) == 1 and "activate it with source" in embedded[0]
    changed = next(c for c in pipeline.store.all_chunks() if "with source" in c.text)
    fresh, _, _ = embed_chunks(tiny_model, tiny_model, [changed], pipeline.config)
    np.testing.assert_allclose(pipeline.store.vectors([changed.id])[0], fresh[0], atol=1e-6)


def test_a_seed_of_other_settings_is_not_used(tiny_model, docs, tmp_path, embedded):
    _, seed = seeded_pipeline(tiny_model, docs, tmp_path)
    embedded.clear()
    RagPipeline(tiny_model, min_dense_score=None, embed_token_budget=1024).index(docs, seed=seed)
    assert len(embedded) == 2  # vectors of another token budget would be other vectors


def test_a_damaged_seed_is_named(tmp_path):
    bad = tmp_path / "seed.npz"
    bad.write_bytes(b"not a seed")
    with pytest.raises(ValueError, match=r"seed\.npz is not an embedding seed.*rebuild it"):
        EmbeddingSeed.load(bad)


def test_the_bundled_seed_fits_the_shipped_model_and_corpus(model, tmp_path, monkeypatch, embedded):
    """The demo's first start embeds nothing, and the seed's vectors are the model's (tolerance: bf16 rounding
    where the model runs in bf16; fp32 agrees to 1e-4). Rebuild with demos/build_demo_embeddings.py when it fails."""
    from gem_rag.server.indexes import BUNDLED_CORPUS, BUNDLED_SEED, open_index

    monkeypatch.setenv("GEM_RAG_CACHE", str(tmp_path / "cache"))
    pipeline, report = open_index(BUNDLED_CORPUS, model)
    assert embedded == [], f"{len(embedded)} chunks are not in {BUNDLED_SEED}: rebuild it"
    assert report.chunks_added == len(pipeline.store) == len(EmbeddingSeed.load(BUNDLED_SEED)) > 300
    chunks = pipeline.store.all_chunks()[::120]
    fresh, _, fresh_units = embed_chunks(model, model, chunks, pipeline.config)
    tolerance = 1e-4 if str(model.dtype) == "torch.float32" else 2e-2
    stored = pipeline.store.vectors([c.id for c in chunks])
    assert np.abs((stored * fresh).sum(axis=1) - 1).max() < tolerance
    for chunk, units in zip(chunks, fresh_units):
        assert np.abs((pipeline.indexer.units.vectors(chunk.id) * units).sum(axis=1) - 1).max() < tolerance + 2e-3


def test_the_bundled_seed_is_offered_for_the_bundled_corpus_only(tmp_path):
    from gem_rag.server.indexes import BUNDLED_CORPUS, bundled_seed

    assert isinstance(bundled_seed([BUNDLED_CORPUS]), EmbeddingSeed)
    assert isinstance(bundled_seed([BUNDLED_CORPUS / "wikipedia", tmp_path]), EmbeddingSeed)  # part of it, with others
    assert bundled_seed([tmp_path]) is None
