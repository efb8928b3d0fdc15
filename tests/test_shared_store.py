"""Serving replicas share one index: pipelines (processes) on one Chroma collection answer alike, and none embeds
the units (sentences) another one stored. Fast tier: the tiny model, a real `chroma run` server, pipelines in
this process. Slow tier: `gem-rag index --chroma` then two `gem-rag serve --chroma --no-docs` on the real model."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port
from gem_rag.rag import RagPipeline

DOCS = {"aardvark.md": "# Aardvark\n\nThe aardvark is a mammal. It feeds almost exclusively on ants and termites. "
                       "It lives in Africa.\n",
        "venv.md": "# Environments\n\nRun python3 -m venv tutorial-env to create an environment. Activate it "
                   "before installing anything into it.\n",
        "albedo.md": "# Albedo\n\nAlbedo is the fraction of sunlight that a surface reflects. Fresh snow has a "
                     "high albedo.\n"}
QUESTIONS = ["What does the aardvark eat?", "How do I create an environment?", "What is albedo?"]


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    return folder


def _replica(model, port: int, collection: str = "shared") -> RagPipeline:
    from gem_rag.rag import ChromaStore

    return RagPipeline(model, ChromaStore(host="127.0.0.1", port=port, collection=collection))


def _answer(rag: RagPipeline, question: str) -> tuple:
    a = rag.answer(question, max_new_tokens=8)
    return (a.answer, a.abstained, a.how, [(c.chunk.id, c.score, c.rank) for c in a.chunks],
            [s.to_dict() for s in a.supporting_sentences], list(a.answer_chunk_ids))


def _units_stored(rag: RagPipeline) -> int:
    return rag.store.client.get_collection(rag.store.name + "__units").count()


def _comparable(body: dict) -> dict:
    """The answer's body without timings (the consistency figures to the 4 digits the API gives scores in)."""
    consistency = {k: round(v, 4) if isinstance(v, float) else v for k, v in (body.get("consistency") or {}).items()
                   if k != "seconds"}
    return {**{k: body[k] for k in ("answer", "abstained", "how", "supporting_sentences", "sources",
                                     "answer_source_ids")}, "consistency": consistency}


def test_two_pipelines_on_one_chroma_collection_answer_alike(tiny_model, chroma_server, docs, embedded):
    pytest.importorskip("chromadb")
    first = _replica(tiny_model, chroma_server)
    assert first.index(docs).chunks_added == 3
    ids = sorted(first.store.ids())
    units = {i: len(first.indexer.units.units(i)) for i in ids}
    assert all(units.values()) and _units_stored(first) == sum(units.values())
    embedded.clear()

    second = _replica(tiny_model, chroma_server)  # another replica: opens the collection, indexes nothing
    assert {s: sorted(r["chunk_ids"]) for s, r in second.indexer.sources.items()} == \
        {s: sorted(r["chunk_ids"]) for s, r in first.indexer.sources.items()}
    for question in QUESTIONS:
        assert [(c.chunk.id, c.score) for c in second.retrieve(question)] == \
            [(c.chunk.id, c.score) for c in first.retrieve(question)]
        assert _answer(second, question) == _answer(first, question)
    assert embedded == []  # the second replica read the units the first stored
    for chunk_id in ids:
        assert second.indexer.units.units(chunk_id) == first.indexer.units.units(chunk_id)
        assert np.array_equal(second.indexer.units.vectors(chunk_id), first.indexer.units.vectors(chunk_id))

    report = second.index(docs)  # started with the same docs: nothing read again, nothing added or embedded
    assert (report.files_indexed, report.chunks_added, report.chunks_unchanged) == (0, 0, 3)
    assert sorted(second.store.ids()) == ids and embedded == []

    (docs / "albedo.md").unlink()  # the first replica deletes one document and replaces another
    (docs / "venv.md").write_text(DOCS["venv.md"].replace("tutorial-env", "my-env"))
    report = first.index(docs)
    assert (report.chunks_added, report.chunks_removed) == (1, 2)
    gone = sorted(set(ids) - set(first.store.ids()))
    assert len(gone) == 2 and second.store.load_units(gone) == {}  # no orphans
    kept = second.store.load_units(first.store.ids())
    assert sorted(kept) == sorted(first.store.ids())
    assert _units_stored(second) == sum(len(u) for u, _ in kept.values())
    embedded.clear()
    for question in QUESTIONS:  # its BM25 predates the change: deleted chunks are left out, none is read
        answer = second.answer(question, max_new_tokens=8)
        assert not {c.chunk.id for c in answer.chunks} & set(gone)
    assert embedded == []  # the replaced document's new chunk: its units came from the store


def test_two_replicas_started_together_store_each_chunk_once(tiny_model, chroma_server, docs, embedded):
    pytest.importorskip("chromadb")
    first, second = _replica(tiny_model, chroma_server, "both"), _replica(tiny_model, chroma_server, "both")
    assert first.index(docs).chunks_added == 3
    embedded.clear()
    report = second.index(docs)  # opened before the first indexed: its records were empty, the texts are stored
    assert (report.chunks_added, report.chunks_duplicate) == (0, 3) and len(second.store) == 3 and embedded == []


def test_units_missing_from_the_store_are_embedded_once_and_shared(tiny_model, tmp_path, embedded):
    """A collection indexed before units were kept in it (none in ``<collection>__units``): the first replica
    to read a chunk embeds its units and stores them; the next one reads them."""
    pytest.importorskip("chromadb")
    from gem_rag.rag import ChromaStore

    first = RagPipeline(tiny_model, ChromaStore(path=tmp_path / "db", collection="old"))
    first.add_texts([DOCS["aardvark.md"], DOCS["albedo.md"]])
    ids = first.store.ids()
    first.store._delete_units(ids)  # as an older gem-rag left it: chunks without units
    assert first.store.load_units(ids) == {}
    embedded.clear()
    reader = RagPipeline(tiny_model, ChromaStore(path=tmp_path / "db", collection="old"))
    reader.answer(QUESTIONS[0], max_new_tokens=4)
    assert sorted(embedded) == sorted(DOCS[n] for n in ("aardvark.md", "albedo.md"))
    assert sorted(reader.store.load_units(ids)) == sorted(ids)
    embedded.clear()
    third = RagPipeline(tiny_model, ChromaStore(path=tmp_path / "db", collection="old"))
    assert _answer(third, QUESTIONS[0]) == _answer(reader, QUESTIONS[0]) and embedded == []


def test_gem_rag_index_then_serve_replicas_on_the_collection(tiny_model, chroma_server, docs, embedded, monkeypatch):
    """`gem-rag index --chroma` then two `gem-rag serve --no-docs --chroma` apps (in this process, the tiny
    model, without uvicorn): both answer /v1/rag/answer alike, and neither embeds anything."""
    pytest.importorskip("chromadb")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gem_rag import cli
    from gem_rag.server.commands import common

    apps = []
    monkeypatch.setattr(common, "load_model", lambda backend=None: tiny_model)
    monkeypatch.setattr(common, "serve", lambda app, sock: (apps.append(app), sock.close()))
    address = ["--chroma", f"127.0.0.1:{chroma_server}", "--collection", "served"]
    assert cli.main(["index", str(docs), *address]) == 0
    assert len(embedded) == 3
    embedded.clear()
    assert cli.main(["index", str(docs), *address]) == 0 and embedded == []  # again: nothing embedded
    for _ in range(2):
        assert cli.main(["serve", "--no-docs", *address, "--port", "0"]) == 0
    bodies = []
    for app in apps:
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            bodies.append([client.post("/v1/rag/answer", json={"question": q, "max_tokens": 8}).json()
                           for q in QUESTIONS])
    assert all(body["sources"] for body in bodies[0])
    assert [[_comparable(b) for b in replica] for replica in bodies] == [[_comparable(b) for b in bodies[0]]] * 2
    assert embedded == []


def test_store_options_name_the_problem(tmp_path, monkeypatch, capsys):
    from gem_rag import cli
    from gem_rag.server.commands import common

    assert common.chroma_address("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert common.chroma_address("[::1]:8000") == ("::1", 8000)
    for bad in ("localhost", "host:0", "host:port", ":8000", "h:70000"):
        with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
            common.chroma_address(bad)
    assert common.collection_name("my.docs-2") == "my.docs-2"
    for bad in ("ab", "bad name", "a..b", "_x_", "10.0.0.1", "x" * 57):
        with pytest.raises(argparse.ArgumentTypeError, match="collection name"):
            common.collection_name(bad)

    def no_model(backend=None):
        raise AssertionError("the model was loaded before the store was checked")

    monkeypatch.setattr(common, "load_model", no_model)
    with pytest.raises(SystemExit):
        cli.main(["serve", "--no-docs", "--chroma", "nonsense"])
    assert "is not HOST:PORT of a Chroma server" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--chroma HOST:PORT"):
        cli.main(["serve", "--no-docs", "--collection", "docs"])
    for command in (["serve", "--no-docs"], ["index", str(tmp_path)], ["ask", "Why?", "--no-docs"]):
        assert cli.main([*command, "--chroma", f"127.0.0.1:{free_port()}"]) == 2
        err = capsys.readouterr().err
        assert "no Chroma server answers at 127.0.0.1:" in err and "chroma run --path DB" in err
    assert cli.main(["ask", "Why?", "--no-docs"]) == 2
    assert "give --chroma HOST:PORT" in capsys.readouterr().err


def test_a_collection_of_another_model_is_refused_and_kept(tiny_model, tmp_path):
    pytest.importorskip("chromadb")
    from gem_rag.rag import ChromaStore, IndexMismatchError
    from gem_rag.server.indexes import open_shared_index

    store = ChromaStore(path=tmp_path / "db", collection="docs")
    other = RagPipeline(tiny_model, store)
    other.add_texts(["A stored passage."])
    store.manifest = {"model": "another-model"}
    (tmp_path / "a.md").write_text(DOCS["albedo.md"])
    with pytest.raises(IndexMismatchError, match=r"model='another-model'.*another --collection NAME"):
        open_shared_index(ChromaStore(path=tmp_path / "db", collection="docs"), [tmp_path / "a.md"], tiny_model)
    again = ChromaStore(path=tmp_path / "db", collection="docs")
    assert len(again) == 1 and again.load_units(again.ids())  # nothing lost, nothing added


# ---------------------------------------------------------------- slow: two `gem-rag serve` processes
def _start_serve(address: str, env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    """A `gem-rag serve --no-docs --chroma ADDRESS --port 0` process and its URL (from the line it prints)."""
    proc = subprocess.Popen([sys.executable, "-m", "gem_rag.cli", "serve", "--no-docs", "--chroma", address,
                             "--collection", "demo", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True, env=env)
    deadline = time.time() + 300
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)v1", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"gem-rag serve did not start: {log.read_text()[-2000:]}")


@pytest.mark.slow  # the real default model, in four subprocesses
def test_two_serve_replicas_on_one_chroma_server_answer_alike(chroma_server, tmp_path):
    import httpx

    from gem_rag.server.indexes import BUNDLED_CORPUS
    from test_server_cli import gem_rag, isolated_cache

    env = isolated_cache(tmp_path)
    files = [str(BUNDLED_CORPUS / "wikipedia" / "Albedo.md"), str(BUNDLED_CORPUS / "python-docs/tutorial/venv.rst")]
    address = f"127.0.0.1:{chroma_server}"
    indexed = gem_rag("index", *files, "--chroma", address, "--collection", "demo", env=env)
    assert indexed.returncode == 0, indexed.stderr
    assert "2 files indexed" in indexed.stdout and "index stored in Chroma collection 'demo'" in indexed.stdout
    again = gem_rag("index", *files, "--chroma", address, "--collection", "demo", env=env)
    assert again.returncode == 0 and "0 files indexed, 0 chunks added" in again.stdout, again.stdout
    replicas: list[tuple[subprocess.Popen, str]] = []
    try:
        for i in range(2):
            replicas.append(_start_serve(address, env, tmp_path / f"serve-{i}.log"))
        for question in ("What is albedo?", "How do I create a virtual environment?"):
            bodies = [httpx.post(url + "v1/rag/answer", json={"question": question, "k": 3, "max_tokens": 48},
                                 timeout=300).json() for _, url in replicas]
            assert bodies[0]["sources"] and bodies[0]["answer"], bodies[0]
            assert _comparable(bodies[0]) == _comparable(bodies[1])
    finally:
        for proc, _ in replicas:
            proc.terminate()
            proc.wait(timeout=30)
