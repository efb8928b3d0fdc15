"""Ingestion, chunking and the vector stores (FAISS, embedded Chroma, a real Chroma server): no generation."""

import json
from pathlib import Path

import numpy as np
import pytest

from gem_rag.rag import Chunk, Chunker, CorruptIndexError, FaissStore, IndexMismatchError, load_documents
from gem_rag.rag.ingest import read_file

DIM = 8


def _vectors(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n, prefix="c"):
    return [Chunk(f"{prefix}{i}", f"text {prefix} {i}", {"source": "s", "start": i, "end": i + 1}) for i in range(n)]


# ---------------------------------------------------------------- ingestion
@pytest.fixture()
def corpus(tmp_path):
    (tmp_path / "a.txt").write_text("Plain text about llamas.")
    (tmp_path / "b.md").write_text("# Markdown Title\n\nBody about alpacas.")
    (tmp_path / "c.rst").write_text("RST Title\n=========\n\nBody about vicunas.")
    (tmp_path / "d.html").write_text("<html><head><title>Page</title><style>p{}</style><script>var x=1;</script></head>"
                                     "<body><p>Visible &amp; kept</p><p>Second</p></body></html>")
    rows = [{"id": "r1", "title": "Row one", "text": "First row text.", "license": "CC0"}, {"text": "Second row."}]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf8")
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{not json\n')
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    (tmp_path / ".hidden.txt").write_text("hidden")
    return tmp_path


def test_load_documents_reads_every_format_and_reports_unreadable(corpus):
    docs, skipped = load_documents([corpus, corpus / "ignored.bin", corpus / "missing.txt"])
    by_title = {d.title: d for d in docs}
    assert set(by_title) == {"a", "Markdown Title", "RST Title", "Page", "Row one", ""}
    assert by_title["Page"].text == "Visible & kept\n\nSecond"  # tags, script and style stripped
    assert by_title["Row one"].source.endswith("e.jsonl#r1") and by_title["Row one"].metadata["license"] == "CC0"
    reasons = dict((Path(p).name, r) for p, r in skipped)
    assert "not UTF-8" in reasons["bad.txt"] and "line 2" in reasons["broken.jsonl"]
    assert "unsupported" in reasons["ignored.bin"] and "no such file" in reasons["missing.txt"]
    assert not any(d.source.endswith(".hidden.txt") for d in docs)


def test_chunker_windows_offsets_overlap_and_stable_ids(model, tmp_path):
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(120))
    (tmp_path / "long.txt").write_text(text)
    chunker = Chunker(model.tokenizer, chunk_tokens=64, overlap=16)
    doc = read_file(tmp_path / "long.txt")[0]
    chunks = chunker.split(doc)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.metadata["start"]: c.metadata["end"]] == c.text
        assert model.count_tokens(c.text) <= 64 + 2  # boundary tokens may merge slightly differently
    assert all(chunks[i].metadata["start"] < chunks[i - 1].metadata["end"] for i in range(1, len(chunks)))  # overlap
    assert chunks[-1].metadata["end"] == len(text)
    assert [c.id for c in chunks] == [c.id for c in chunker.split(doc)]  # stable
    doc.source = "elsewhere.txt"
    assert chunker.split(doc)[0].id != chunks[0].id  # the source is part of the id
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(model.tokenizer, chunk_tokens=64, overlap=40)


# ---------------------------------------------------------------- FAISS
def test_faiss_add_update_delete_search_persist_reload(tmp_path):
    store = FaissStore()
    vectors = _vectors(20)
    store.add([c.id for c in _chunks(20)], vectors, _chunks(20))
    assert len(store) == 20 and store.index_type == "flat"
    top = store.search(vectors[3], k=3)
    assert top[0][0].id == "c3" and top[0][1] == pytest.approx(1.0, abs=1e-5)
    replaced = Chunk("c3", "new text", {"source": "s"})
    store.add(["c3"], vectors[5:6], [replaced])  # update by id
    assert len(store) == 20 and store.get(["c3"])[0].text == "new text"
    assert {c.id for c, _ in store.search(vectors[5], k=2)} == {"c3", "c5"}
    store.delete(["c5", "unknown"])
    assert len(store) == 19 and "c5" not in {c.id for c, _ in store.search(vectors[5], k=19)}
    store.manifest = {"model": "m", "embedding_dim": DIM}
    store.persist(tmp_path / "idx")
    again = FaissStore.load(tmp_path / "idx")
    assert len(again) == 19 and again.manifest["model"] == "m"
    assert [c.id for c, _ in again.search(vectors[7], 4)] == [c.id for c, _ in store.search(vectors[7], 4)]
    with pytest.raises(IndexMismatchError, match="dimension"):
        again.add(["x"], np.ones((1, DIM + 1), np.float32), [Chunk("x", "x", {})])


def test_faiss_switches_to_hnsw_above_threshold_and_deletes(tmp_path):
    store = FaissStore(approximate_threshold=50)
    vectors = _vectors(80, seed=1)
    store.add([c.id for c in _chunks(80)], vectors, _chunks(80))
    assert store.index_type == "hnsw"
    assert store.search(vectors[42], 1)[0][0].id == "c42"
    store.delete([f"c{i}" for i in range(40)])  # tombstones, then a rebuild
    assert len(store) == 40 and all(int(c.id[1:]) >= 40 for c, _ in store.search(vectors[10], 10))
    store.persist(tmp_path / "h")
    assert FaissStore.load(tmp_path / "h").search(vectors[60], 1)[0][0].id == "c60"


def test_faiss_corrupt_index_is_detected(tmp_path):
    store = FaissStore()
    store.add(["a", "b"], _vectors(2), [Chunk("a", "a", {}), Chunk("b", "b", {})])
    store.persist(tmp_path / "idx")
    version = next(p for p in (tmp_path / "idx").iterdir() if p.name.startswith("v-"))
    (version / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(CorruptIndexError, match="index.faiss"):
        FaissStore.load(tmp_path / "idx")
    (version / "manifest.json").write_text("{")
    with pytest.raises(CorruptIndexError, match="manifest.json"):
        FaissStore.load(tmp_path / "idx")
    with pytest.raises(CorruptIndexError, match="CURRENT"):
        FaissStore.load(tmp_path)


# ---------------------------------------------------------------- Chroma
def _exercise_chroma(store):
    vectors = _vectors(10, seed=2)
    chunks = [Chunk(f"id{i}", f"text {i}", {"source": "s", "title": "t", "start": 0, "end": 6, "tags": ["x"]})
              for i in range(10)]
    store.add([c.id for c in chunks], vectors, chunks)
    assert len(store) == 10
    best, score = store.search(vectors[4], k=3)[0]
    assert best.id == "id4" and score == pytest.approx(1.0, abs=1e-4) and best.metadata["tags"] == ["x"]
    store.add(["id4"], vectors[6:7], [Chunk("id4", "updated", {"source": "s"})])
    assert store.get(["id4"])[0].text == "updated" and len(store) == 10
    store.delete(["id6"])
    assert len(store) == 9 and sorted(store.ids()) == sorted(f"id{i}" for i in range(10) if i != 6)
    store.manifest = {"model": "m", "embedding_dim": DIM}
    assert store.manifest["model"] == "m"


def test_chroma_embedded_persistent(tmp_path):
    from gem_rag.rag import ChromaStore

    _exercise_chroma(ChromaStore(path=tmp_path / "db"))
    reopened = ChromaStore.load(tmp_path / "db")
    assert len(reopened) == 9 and reopened.manifest["embedding_dim"] == DIM
    with pytest.raises(IndexMismatchError, match="dimension"):
        reopened.add(["z"], np.ones((1, 3), np.float32), [Chunk("z", "z", {})])


def test_chroma_http_server(chroma_server):
    from gem_rag.rag import ChromaStore

    store = ChromaStore(host="127.0.0.1", port=chroma_server, collection="test_http")
    _exercise_chroma(store)
    again = ChromaStore(host="127.0.0.1", port=chroma_server, collection="test_http")
    assert len(again) == 9 and again.describe()["port"] == chroma_server
