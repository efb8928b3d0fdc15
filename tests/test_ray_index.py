"""Distributed indexing on Ray Data (gem_rag.rag.ray_index) gives the index the single process gives: same chunk
ids, texts, vectors, sentence vectors, file bookkeeping and retrieval; a killed run resumes without embedding a
stored chunk again; `gem-rag index --ray` builds the cached index. Fast tests: the tiny random model, which every
actor builds from its seed (tests/tiny_model.py); one local Ray cluster of one CPU for the module."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a tiny model, but a real Ray cluster and actor processes: 10-20 s a test (make test runs it)

from gem_rag.rag import RagPipeline  # noqa: E402
from gem_rag.rag.ray_index import index_with_ray  # noqa: E402
from tiny_model import build_tiny_model  # noqa: E402

TESTS = Path(__file__).resolve().parent
SETTINGS = {"chunk_tokens": 16, "chunk_overlap": 2, "min_dense_score": None, "k": 4}
QUESTIONS = ["What does the aardvark eat?", "How is an abacus used?", "Which surfaces reflect light?"]
TOPICS = {
    "aardvark.md": "# Aardvark\n\nThe aardvark is a mammal of Africa. It feeds on ants and termites at night. "
                   "Its long snout finds the nests.\n\n- It digs burrows.\n- It sleeps by day.\n\n"
                   "Aardvarks live alone and meet only to mate. Their young stay in the burrow for weeks.\n",
    "abacus.md": "# Abacus\n\nAn abacus is a frame of beads for counting. Merchants used it for sums long before "
                 "paper. Each rod holds a decimal place.\n\nSkilled users add faster than with a calculator.\n",
    "notes/albedo.txt": "Albedo is the share of light a surface reflects. Snow reflects most of it; oceans take "
                        "most of it in. Climate models need albedo values for every surface.\n",
    "notes/copy.txt": "Albedo is the share of light a surface reflects. Snow reflects most of it; oceans take "
                      "most of it in. Climate models need albedo values for every surface.\n",  # a duplicate
}
ROWS = [{"id": "q1", "title": "Counting", "text": "People counted on fingers, then on pebbles, then on beads."},
        {"id": "q2", "title": "Light", "text": "Fresh snow has an albedo near 0.9; asphalt one near 0.05."}]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """A local cluster of one CPU; its workers can import tests/tiny_model.py."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=1, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray") / "docs"
    for name, text in TOPICS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in ROWS) + "\n")
    return folder


@pytest.fixture(scope="module")
def one_shot(tiny_model, docs, tmp_path_factory):
    """The single-process index of ``docs``, saved and reopened."""
    folder = tmp_path_factory.mktemp("single") / "index"
    rag = RagPipeline(tiny_model, **SETTINGS)
    report = rag.index(docs)
    rag.save(folder)
    return RagPipeline.load(folder, model=tiny_model), report


def ray_index(rag, docs, folder, **options):
    options = {"model_factory": build_tiny_model, "batch_size": 4, "flush_chunks": 5, "checkpoint_seconds": 0,
               **options}
    return index_with_ray(rag, docs, folder=folder, **options)


def assert_same_index(got: RagPipeline, want: RagPipeline) -> None:
    ids = want.store.ids()
    assert got.store.ids() == ids and len(ids) > 10
    assert [(c.text, c.metadata) for c in got.store.get(ids)] == [(c.text, c.metadata) for c in want.store.get(ids)]
    assert np.allclose(got.store.vectors(ids), want.store.vectors(ids), atol=1e-5)
    for chunk_id in ids:
        assert got.indexer.units.units(chunk_id) == want.indexer.units.units(chunk_id)
        assert np.array_equal(got.indexer.units.vectors(chunk_id), want.indexer.units.vectors(chunk_id))
    assert got.indexer.sources == want.indexer.sources
    for question in QUESTIONS:
        found, expected = got.retrieve(question), want.retrieve(question)
        assert [c.chunk.id for c in found] == [c.chunk.id for c in expected]
        assert np.allclose([c.score for c in found], [c.score for c in expected], atol=1e-5)


def test_ray_gives_the_index_the_single_process_gives(tiny_model, docs, one_shot, tmp_path):
    want, single = one_shot
    rag = RagPipeline(tiny_model, **SETTINGS)
    report = ray_index(rag, docs, tmp_path / "index")
    assert (report.files_indexed, report.chunks_added, report.chunks_duplicate) == (
        single.files_indexed, single.chunks_added, single.chunks_duplicate)
    assert report.chunks_duplicate >= 1  # notes/copy.txt
    assert any("#q1" in c.metadata["source"] for c in want.store.all_chunks())  # the JSONL rows are chunks too
    assert_same_index(RagPipeline.load(tmp_path / "index", model=tiny_model), want)
    assert_same_index(rag, want)


def test_ray_writes_to_a_chroma_store(tiny_model, docs, tmp_path):
    pytest.importorskip("chromadb")
    from gem_rag.rag import ChromaStore

    single = RagPipeline(tiny_model, ChromaStore(path=tmp_path / "single-db", collection="docs"), **SETTINGS)
    single.index(docs)
    single.save(tmp_path / "single")
    want = RagPipeline.load(tmp_path / "single", model=tiny_model)
    rag = RagPipeline(tiny_model, ChromaStore(path=tmp_path / "db", collection="docs"), **SETTINGS)
    ray_index(rag, docs, tmp_path / "index")
    loaded = RagPipeline.load(tmp_path / "index", model=tiny_model)
    ids = sorted(want.store.ids())
    assert sorted(loaded.store.ids()) == ids and loaded.indexer.sources == want.indexer.sources
    assert np.allclose(loaded.store.vectors(ids), want.store.vectors(ids), atol=1e-5)
    assert all(np.array_equal(loaded.indexer.units.vectors(i), want.indexer.units.vectors(i)) for i in ids)


def test_a_killed_run_resumes_without_embedding_anything_twice(tiny_model, docs, one_shot, tmp_path):
    want, single = one_shot
    folder = tmp_path / "index"
    first: list[str] = []

    def kill_after_first_write(ids: list[str]) -> None:
        first.extend(ids)
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        ray_index(RagPipeline(tiny_model, **SETTINGS), docs, folder, on_write=kill_after_first_write)
    partial = RagPipeline.load(folder, model=tiny_model)
    assert 0 < len(first) < single.chunks_added and sorted(partial.store.ids()) == sorted(first)
    second: list[str] = []
    report = ray_index(partial, docs, folder, on_write=second.extend)
    assert not set(first) & set(second) and report.chunks_added == len(second) == single.chunks_added - len(first)
    assert_same_index(RagPipeline.load(folder, model=tiny_model), want)
    again = ray_index(RagPipeline.load(folder, model=tiny_model), docs, folder, on_write=second.extend)
    assert again.chunks_added == 0 and again.chunks_unchanged == len(want.store)


def test_bad_arguments_are_refused_with_the_fix(tiny_model, docs, monkeypatch):
    rag = RagPipeline(tiny_model)
    with pytest.raises(ValueError, match="actors must be a positive int"):
        index_with_ray(rag, docs, actors=0)
    with pytest.raises(ValueError, match="num_cpus > 0 or num_gpus > 0"):
        index_with_ray(rag, docs, num_cpus=0)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "gem-rag\[ray\]"'):
        index_with_ray(rag, docs)


def test_actors_with_another_model_are_refused(tiny_model, docs, tmp_path):
    with pytest.raises(Exception, match="pass model_factory="):  # raised in the actor, re-raised by Ray
        ray_index(RagPipeline(tiny_model, **SETTINGS), docs, tmp_path / "index", model_factory=OtherModel())


class OtherModel:
    """Builds the tiny model under another name (a model the pipeline was not built with)."""

    def __call__(self):
        model = build_tiny_model()
        model.name = "another-model"
        return model


def test_the_index_command_embeds_on_ray(tiny_model, docs, one_shot, tmp_path, monkeypatch, capsys):
    from gem_rag.rag import ray_index as module
    from gem_rag.server import indexes
    from gem_rag.server.commands import common, index

    monkeypatch.setattr(common, "load_model", lambda backend=None: tiny_model)
    monkeypatch.setattr(indexes, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(module, "ModelLoader", lambda **options: build_tiny_model)  # what each actor loads
    parser = argparse.ArgumentParser()
    index.add_arguments(parser)
    assert index.run(parser.parse_args([str(docs), "--ray", "--ray-batch-size", "8"])) == 0
    out = capsys.readouterr().out
    assert "5 files indexed" in out and str(tmp_path / "cache") in out
    loaded = RagPipeline.load(indexes.index_folder([docs], tiny_model), model=tiny_model)
    single = RagPipeline(tiny_model, min_dense_score=None)
    single.index(docs)
    assert loaded.store.ids() == single.store.ids()
    assert index.run(parser.parse_args(["--ray", str(docs)])) == 2  # the path taken as the address
    assert "put the paths first" in capsys.readouterr().err
    assert index.run(parser.parse_args([])) == 2 and "give the files or folders" in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_model_on_ray_retrieves_what_the_single_process_does(model, tmp_path):
    from gem_rag.server.indexes import BUNDLED_CORPUS

    files = [BUNDLED_CORPUS / "wikipedia" / name for name in ("Aardvark.md", "Abacus.md", "Albedo.md")]
    single = RagPipeline(model)
    single.index(files)
    distributed = RagPipeline(model)
    report = index_with_ray(distributed, files, folder=tmp_path / "index", batch_size=16)
    assert report.chunks_added == len(single.store)
    loaded = RagPipeline.load(tmp_path / "index", model=model)
    for question in ["What do aardvarks eat?", "Who used the abacus?", "What is the albedo of snow?"]:
        assert [c.chunk.id for c in loaded.retrieve(question)] == [c.chunk.id for c in single.retrieve(question)]
