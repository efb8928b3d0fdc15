"""The HTTP server's guarantees (docs/reliability.md, "The HTTP server"), on a tiny random model (fast):
Host checks, body limits, token budgets, the API key and what listening beyond loopback needs, upload quotas,
answers while uploads are indexed, and OpenAI-shaped errors for text that is not valid Unicode or UTF-8."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from test_server_api import write_tiny_corpus  # noqa: E402

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def pipeline(tiny_model, tmp_path_factory):
    from gem_rag.rag import RagPipeline

    rag = RagPipeline(tiny_model)
    rag.index(write_tiny_corpus(tmp_path_factory.mktemp("docs")))
    return rag


def make_client(model, pipeline=None, uploads=None, **options) -> TestClient:
    from gem_rag.server import create_app

    return TestClient(create_app(model, pipeline, uploads_folder=uploads, **options), base_url=LOCAL)


@pytest.fixture(scope="module")
def client(tiny_model, pipeline, tmp_path_factory):
    with make_client(tiny_model, pipeline, tmp_path_factory.mktemp("uploads")) as test_client:
        yield test_client


def assert_openai_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
    for word in words:
        assert word in error["message"], error["message"]
    return error


# ---------------------------------------------------------------- Host header (DNS rebinding)
@pytest.mark.parametrize("method, path, body", [("GET", "/api/status", None), ("GET", "/v1/models", None),
                                                ("POST", "/v1/embeddings", {"input": "x"})])
def test_foreign_host_is_refused(client, method, path, body):
    response = client.request(method, path, json=body, headers={"Host": "evil.example:8000"})
    error = assert_openai_error(response, 421, "evil.example", "--allowed-hosts")
    assert error["code"] == "host_not_allowed"


def test_foreign_host_cannot_index_a_server_folder(tiny_model, pipeline, tmp_path):
    with make_client(tiny_model, pipeline, allow_local_paths=True) as local:  # as `gem-rag demo` on 127.0.0.1
        response = local.post("/api/index-folder", json={"path": str(tmp_path)}, headers={"Host": "evil.example"})
        assert_openai_error(response, 421, "evil.example")
        assert local.get("/api/status").json()["state"] == "ready"  # nothing started


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"])
def test_loopback_hosts_are_answered(client, host):
    assert client.get("/api/status", headers={"Host": host}).status_code == 200


def test_allowed_hosts_option(tiny_model):
    with make_client(tiny_model, allowed_hosts=["gem.example"]) as allowed:
        assert allowed.get("/v1/models", headers={"Host": "gem.example:8000"}).status_code == 200
        assert allowed.get("/v1/models", headers={"Host": "evil.example"}).status_code == 421
    with make_client(tiny_model, allowed_hosts=["*"]) as anyone:  # the check switched off (behind a proxy)
        assert anyone.get("/v1/models", headers={"Host": "evil.example"}).status_code == 200


# ---------------------------------------------------------------- request bodies
def test_oversized_body_is_413_at_once(client):
    body = json.dumps({"input": "x" * (2**20 + 10)}).encode()
    started = time.perf_counter()
    response = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert_openai_error(response, 413, "1 MiB", "--max-body-mb")

    def chunks():  # no Content-Length: judged while it arrives
        for _ in range(40):
            yield b"x" * 65536

    chunked = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert_openai_error(chunked, 413, "1 MiB")
    assert time.perf_counter() - started < 1.0


@pytest.fixture(scope="module")
def live(client):
    """The client's app on a real socket: (host, port)."""
    import uvicorn

    from gem_rag.server.commands.common import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(client.app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    address = sock.getsockname()[:2]
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield address
    server.should_exit = True
    thread.join(timeout=10)


def raw_request(address, head: bytes, body_chunks=(), timeout: float = 5.0) -> tuple[bytes, float]:
    """Send ``head`` then ``body_chunks`` until the server answers -> (response head line, seconds)."""
    started = time.perf_counter()
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(head)
        conn.setblocking(False)
        reply = b""
        for chunk in body_chunks:
            try:
                reply += conn.recv(65536)
            except BlockingIOError:
                pass
            if reply:
                break
            try:
                conn.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        conn.settimeout(timeout)
        while b"\r\n" not in reply:
            reply += conn.recv(65536)
    return reply.split(b"\r\n", 1)[0], time.perf_counter() - started


def test_oversized_body_over_real_http_is_refused_before_it_is_sent(live):
    host, port = live
    head = (f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 2**20}\r\n\r\n").encode()
    status, seconds = raw_request(live, head)  # not one byte of the 50 MB body sent
    assert status.startswith(b"HTTP/1.1 413") and seconds < 1.0, (status, seconds)

    chunked = (f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    status, seconds = raw_request(live, chunked, [piece] * 200)  # stops sending once answered
    assert status.startswith(b"HTTP/1.1 413") and seconds < 1.0, (status, seconds)


# ---------------------------------------------------------------- token budgets
def timed_post(client, path: str, body: dict):
    started = time.perf_counter()
    response = client.post(path, json=body)
    return response, time.perf_counter() - started


def test_embedding_budgets_are_400_at_once(client, tiny_model, monkeypatch):
    embedded: list = []  # what reached the model: an over-budget request must be refused before embedding
    real_embed = tiny_model.embed
    monkeypatch.setattr(tiny_model, "embed", lambda texts, **kw: embedded.append(texts) or real_embed(texts, **kw))
    too_many = client.post("/v1/embeddings", json={"input": ["a text"] * 257})
    assert assert_openai_error(too_many, 400, "257 texts", "at most 256")["param"] == "input"
    passage = "The lantern festival is held on the river every spring. " * 60  # ~660 tokens
    too_long = client.post("/v1/embeddings", json={"input": [passage] * 100})  # ~66k tokens
    assert_openai_error(too_long, 400, "65,536 tokens")
    huge = client.post("/v1/embeddings", json={"input": "word " * 200_000})  # 1 MB in one input
    assert_openai_error(huge, 400, "65,536 tokens")
    assert embedded == []
    fine = client.post("/v1/embeddings", json={"input": [passage] * 3}).json()
    assert fine["usage"]["prompt_tokens"] == 3 * tiny_model.count_tokens(passage) and len(embedded) == 1


def test_generation_budgets_are_400(client, tiny_model):
    messages = [{"role": "user", "content": "Say hi."}]
    over = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 5000})
    assert assert_openai_error(over, 400, "at most 1024")["param"] == "max_tokens"
    long_prompt = [{"role": "user", "content": "word " * 1500}]  # + 1000 new tokens > the 2048-token window
    overflow = client.post("/v1/chat/completions", json={"messages": long_prompt, "max_tokens": 1000})
    assert_openai_error(overflow, 400, "context window", "ask for at most")
    rag_over = client.post("/v1/rag/answer", json={"question": "When is the festival?", "max_tokens": 2000})
    assert assert_openai_error(rag_over, 400, "at most 1024")["param"] == "max_tokens"
    question = "7 " * 1999  # under the 4000-character cap, but more tokens than the window holds
    assert tiny_model.count_tokens(question) > tiny_model.context_window
    rag_long = client.post("/v1/rag/answer", json={"question": question})
    assert assert_openai_error(rag_long, 400, "context window")["param"] == "question"


# ---------------------------------------------------------------- API key, listening beyond loopback
def test_api_key_is_required_when_set(tiny_model, pipeline):
    with make_client(tiny_model, pipeline, api_key="s3cret-key") as keyed:
        for path in ("/v1/models", "/api/status"):
            missing = keyed.get(path)
            assert assert_openai_error(missing, 401, "Authorization: Bearer")["code"] == "missing_api_key"
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = keyed.get(path, headers={"Authorization": "Bearer not-the-key"})
            assert assert_openai_error(wrong, 401, "invalid API key")["code"] == "invalid_api_key"
            assert keyed.get(path, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        posted = keyed.post("/v1/embeddings", json={"input": "x"})
        assert posted.status_code == 401
        assert keyed.get("/").status_code == 200 and keyed.get("/static/app.js").status_code == 200
        assert "Authorization" in keyed.get("/static/app.js").text  # the page sends the key with its requests


def test_streaming_answers_pass_the_guard(tiny_model, pipeline):
    with make_client(tiny_model, pipeline, api_key="k") as keyed:
        auth = {"Authorization": "Bearer k"}
        chat = keyed.post("/v1/chat/completions", headers=auth, json={
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True})
        assert chat.status_code == 200 and chat.text.endswith("data: [DONE]\n\n")
        rag = keyed.post("/v1/rag/answer", headers=auth, json={"question": "When is the festival?", "stream": True,
                                                                 "max_tokens": 3})
        assert rag.status_code == 200 and rag.text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_listening_beyond_loopback_needs_an_api_key(command, monkeypatch):
    from gem_rag import cli
    from gem_rag.server.commands import common

    def no_model(backend=None):
        raise RuntimeError("model loading reached")

    monkeypatch.setattr(common, "load_model", no_model)
    monkeypatch.delenv("GEM_RAG_API_KEY", raising=False)
    for host in ("0.0.0.0", "192.168.1.20"):
        with pytest.raises(SystemExit, match="--api-key"):
            cli.main([command, "--host", host])
    with pytest.raises(RuntimeError, match="model loading reached"):  # with a key it goes on to load the model
        cli.main([command, "--host", "0.0.0.0", "--api-key", "k"])
    monkeypatch.setenv("GEM_RAG_API_KEY", "from-env")
    with pytest.raises(RuntimeError, match="model loading reached"):
        cli.main([command, "--host", "0.0.0.0"])


def test_app_options_from_the_command_line(monkeypatch):
    import argparse

    from gem_rag.server import options

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    options.add_arguments(parser)
    monkeypatch.setenv("GEM_RAG_ALLOWED_HOSTS", "a.example, b.example")
    got = options.app_options(parser.parse_args(["--max-body-mb", "2", "--uploads-quota-mb", "0.5"]))
    assert got["api_key"] is None and {"127.0.0.1", "a.example", "b.example"} <= set(got["allowed_hosts"])
    assert got["limits"].max_body_bytes == 2 * 2**20 and got["limits"].uploads_quota_bytes == 2**19
    got = options.app_options(parser.parse_args(["--host", "10.0.0.5", "--api-key", "k", "--allowed-hosts", "c"]))
    assert got["api_key"] == "k" and got["allowed_hosts"] == ["10.0.0.5", "c"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-body-mb", "0"])


# ---------------------------------------------------------------- uploads: quotas, answers while indexing
def test_upload_quotas_are_413(tiny_model, pipeline, tmp_path):
    from gem_rag.server.limits import ServerLimits

    uploads = tmp_path / "uploads"
    limits = ServerLimits(max_upload_bytes=100_000, uploads_quota_bytes=150_000)
    with make_client(tiny_model, pipeline, uploads, limits=limits) as small:
        big = small.post("/api/upload", json={"files": [{"name": "a.txt", "text": "x" * 120_000}]})
        assert_openai_error(big, 413, "--max-upload-mb")
        (uploads / "old").mkdir(parents=True)
        (uploads / "old" / "kept.txt").write_text("y" * 100_000)
        full = small.post("/api/upload", json={"files": [{"name": "b.txt", "text": "z" * 60_000}]})
        assert_openai_error(full, 413, "quota", "--uploads-quota-mb")
        assert sorted(p.name for p in uploads.rglob("*")) == ["kept.txt", "old"]  # nothing written
        assert small.get("/api/status").json()["state"] == "ready"


def wait_until_ready(client, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while (status := client.get("/api/status").json())["state"] == "indexing" and time.time() < deadline:
        time.sleep(0.05)
    return status


def test_questions_are_answered_while_a_2mb_upload_is_indexed(tiny_model, pipeline, tmp_path, monkeypatch):
    import random

    from gem_rag.rag import RagPipeline

    entered, release = threading.Event(), threading.Event()
    real_index = RagPipeline.index

    def gated_index(self, paths, **kwargs):  # indexing takes as long as the test says
        entered.set()
        assert release.wait(timeout=60), "the test never released the indexing"
        return real_index(self, paths, **kwargs)

    monkeypatch.setattr(RagPipeline, "index", gated_index)
    words = "lantern river festival baker card game player crown tea water minute bitter".split()
    rng = random.Random(0)
    text = " ".join(rng.choice(words) for _ in range(180_000))[:1_000_000]
    files = [{"name": f"part{i}.txt", "text": text} for i in range(2)] + \
            [{"name": "observatory.txt", "text": "The Brindle Observatory stands on Mount Kerrow."}]
    before = len(pipeline.store)
    with make_client(tiny_model, pipeline, tmp_path / "uploads") as app_client:
        accepted = app_client.post("/api/upload", json={"files": files})
        assert accepted.status_code == 202, accepted.text[:300]
        assert entered.wait(timeout=30)
        try:
            answer = app_client.post("/v1/rag/answer", json={"question": "When is the festival held?", "k": 1,
                                                             "max_tokens": 4})
            assert answer.status_code == 200, answer.text[:300]  # answered from the index as it was
            assert answer.json()["sources"][0]["source"].endswith((".md", ".txt", ".rst"))
            status = app_client.get("/api/status").json()
            assert status["state"] == "indexing" and status["can_answer"] is True and status["chunks"] == before
            assert app_client.post("/api/upload", json={"files": files[2:]}).status_code == 409
            assert len(list((tmp_path / "uploads").iterdir())) == 1  # the refused upload saved nothing
        finally:
            release.set()
        status = wait_until_ready(app_client)
        assert status["state"] == "ready" and "3 files" in status["message"], status
        assert status["chunks"] > before and len(pipeline.store) == before  # a new index was swapped in
        found = app_client.post("/v1/rag/answer", json={"question": "Brindle Observatory Mount Kerrow", "k": 3,
                                                        "max_tokens": 4}).json()
        assert any(s["source"].endswith("observatory.txt") for s in found["sources"]), found["sources"]


def test_a_failed_indexing_leaves_the_live_index(tiny_model, pipeline, tmp_path, monkeypatch):
    from gem_rag.rag import RagPipeline

    def broken_index(self, paths, **kwargs):  # fails half-way, after changing the pipeline it indexes into
        self.add_texts(["A passage written before the failure."], [{"source": "partial.txt"}])
        raise OSError("disk full")

    monkeypatch.setattr(RagPipeline, "index", broken_index)
    before = len(pipeline.store)
    with make_client(tiny_model, pipeline, tmp_path / "uploads") as app_client:
        upload = app_client.post("/api/upload", json={"files": [{"name": "a.txt", "text": "Some text."}]})
        assert upload.status_code == 202
        status = wait_until_ready(app_client)
        assert status["state"] == "ready" and "failed: disk full" in status["message"], status
        assert app_client.app.state.rag.pipeline is pipeline and len(pipeline.store) == before == status["chunks"]
        assert app_client.post("/v1/rag/answer", json={"question": "When is the festival?", "max_tokens": 3}
                               ).status_code == 200


def test_the_first_index_is_built_while_the_server_answers(tiny_model, tmp_path, monkeypatch):
    """`gem-rag demo`/`serve` on a first start: the app serves at once, the status shows the share of the text
    embedded, questions get a 503 "ask again in a moment", and the cached index answers once it is built."""
    from gem_rag.server import indexes
    from gem_rag.server.commands import common

    monkeypatch.setenv("GEM_RAG_CACHE", str(tmp_path / "cache"))
    docs = write_tiny_corpus(tmp_path / "docs")
    assert not common.index_is_cached([docs], tiny_model)
    release, shares = threading.Event(), []
    real = indexes._index_with_progress

    def held(pipeline, paths, **kwargs):  # the first file's progress is shown, then the build waits for the test
        def progress(share):
            shares.append(share)
            kwargs["on_progress"](share)
            release.wait(30)
        return real(pipeline, paths, **{**kwargs, "on_progress": progress})

    monkeypatch.setattr(indexes, "_index_with_progress", held)
    with make_client(tiny_model) as app_client:
        common.index_in_background(app_client.app, [docs], tiny_model)
        deadline = time.time() + 30
        while not shares and time.time() < deadline:
            time.sleep(0.05)
        status = app_client.get("/api/status").json()
        assert status["state"] == "indexing" and "% of the text embedded" in status["message"], status
        asked = app_client.post("/v1/rag/answer", json={"question": "When is the festival?", "max_tokens": 3})
        assert asked.status_code == 503 and "ask again" in asked.text
        assert app_client.post("/v1/embeddings", json={"input": "served meanwhile"}).status_code == 200
        release.set()
        status = wait_until_ready(app_client)
        assert status["state"] == "ready" and status["chunks"] > 0 and "indexed" in status["message"], status
        assert app_client.post("/v1/rag/answer", json={"question": "When is the festival?", "max_tokens": 3}
                               ).status_code == 200
    assert common.index_is_cached([docs], tiny_model) and shares[-1] == 1.0  # saved: the next start loads it


def test_an_index_that_cannot_be_copied_is_indexed_in_place(tiny_model, pipeline, tmp_path, monkeypatch):
    from gem_rag.rag import RagPipeline
    from gem_rag.server import service

    entered, release = threading.Event(), threading.Event()
    real_index = RagPipeline.index

    def gated_index(self, paths, **kwargs):
        entered.set()
        release.wait(timeout=60)
        return real_index(self, [], **kwargs)  # indexes nothing: the live pipeline stays as the fixture made it

    monkeypatch.setattr(RagPipeline, "index", gated_index)
    monkeypatch.setattr(service, "copy_pipeline", lambda live: None)  # as for a Chroma-backed pipeline
    with make_client(tiny_model, pipeline, tmp_path / "uploads") as app_client:
        assert app_client.post("/api/upload", json={"files": [{"name": "a.txt", "text": "x y"}]}).status_code == 202
        assert entered.wait(timeout=30)
        try:
            assert app_client.get("/api/status").json()["can_answer"] is False
            busy = app_client.post("/v1/rag/answer", json={"question": "When is the festival?"})
            assert assert_openai_error(busy, 503, "being indexed")["type"] == "index_not_ready"
        finally:
            release.set()
        assert wait_until_ready(app_client)["can_answer"] is True


# ---------------------------------------------------------------- text that is not Unicode, and error shapes
SURROGATE_BODIES = {
    "/v1/embeddings": b'{"input": "a \\udcff"}',
    "/v1/chat/completions": b'{"messages": [{"role": "user", "content": "a \\udcff"}]}',
    "/api/upload": b'{"files": [{"name": "bad.txt", "text": "a \\udcff"}]}',
}


@pytest.mark.parametrize("path", list(SURROGATE_BODIES))
def test_lone_surrogate_is_400(client, path):
    uploads = client.app.state.rag.uploads_folder
    files_before = sorted(uploads.rglob("*"))
    response = client.post(path, content=SURROGATE_BODIES[path], headers={"content-type": "application/json"})
    assert_openai_error(response, 400, "lone surrogate", "\\udcff")
    assert sorted(uploads.rglob("*")) == files_before  # no empty file left behind


@pytest.mark.parametrize("path", list(SURROGATE_BODIES))
def test_invalid_utf8_is_400(client, path):
    body = SURROGATE_BODIES[path].replace(b"\\udcff", b"\xff\xfe")
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert assert_openai_error(response, 400, "UTF-8", "0xff")["code"] == "invalid_utf8"


def test_every_error_has_the_openai_shape(client):
    assert_openai_error(client.get("/v1/nothing-here"), 404)
    assert_openai_error(client.get("/v1/embeddings"), 405)
    assert_openai_error(client.post("/v1/embeddings", content=b"{not json", headers={"content-type":
                                                                                   "application/json"}), 422)
    assert_openai_error(client.get("/static/missing.js"), 404)
