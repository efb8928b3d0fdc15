"""HTTP API on the real default model: OpenAI-compatible endpoints, the RAG endpoint, uploads, validation."""

from __future__ import annotations

import base64
import json
import threading
import time

import numpy as np
import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

LOCAL_URL = "http://127.0.0.1:8000"  # TestClient's default Host, testserver, is refused (421) like any foreign name
TINY_CORPUS = {
    "quillby.md": "# The Quillby lantern festival\n\nThe Quillby lantern festival is held every year on the first "
                  "Saturday of March. Visitors float paper lanterns on the river Quill. The festival was founded "
                  "in 1887 by the baker Martha Fenwick.\n",
    "zorblax.txt": "Zorblax is a card game for four players. Each player starts with seven cards. The player who "
                   "first collects three crowns wins the game.\n",
    "tea.rst": "Brewing green tea\n=================\n\nGreen tea should be brewed with water at about 80 degrees "
               "Celsius for two minutes. Boiling water makes green tea bitter.\n",
}


def write_tiny_corpus(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def pipeline(model, tmp_path_factory):
    from gem_rag.rag import RagPipeline

    rag = RagPipeline(model)
    rag.index(write_tiny_corpus(tmp_path_factory.mktemp("docs")))
    return rag


@pytest.fixture(scope="module")
def client(model, pipeline, tmp_path_factory):
    from gem_rag.server import create_app

    app = create_app(model, pipeline, corpus_label="tiny corpus", uploads_folder=tmp_path_factory.mktemp("uploads"))
    with TestClient(app, base_url=LOCAL_URL) as test_client:  # a Host the server answers to (127.0.0.1)
        yield test_client


def sse_payloads(response) -> list:
    """The data of each SSE frame; checks the framing (``data: `` lines separated by blank lines)."""
    body = response.text
    assert body.endswith("data: [DONE]\n\n"), body[-200:]
    frames = body.split("\n\n")[:-1]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames), frames[:3]
    return [f[len("data: "):] if f == "data: [DONE]" else json.loads(f[len("data: "):]) for f in frames]


# ---------------------------------------------------------------- /v1/models and /v1/embeddings
def test_models_lists_the_one_model(client, model):
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == [model.name]
    assert client.get(f"/v1/models/{model.name}").json()["id"] == model.name
    assert client.get("/v1/models/gpt-4").status_code == 404


def test_embeddings_shape_usage_and_values(client, model):
    texts = ["The cat sat on the mat.", "Green tea is brewed at 80 degrees."]
    body = client.post("/v1/embeddings", json={"input": texts, "model": "anything"}).json()
    assert body["object"] == "list" and body["model"] == model.name
    assert [d["index"] for d in body["data"]] == [0, 1]
    vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert vectors.shape == (2, model.embedding_dim)
    np.testing.assert_allclose(vectors, model.embed(texts), atol=1e-5)
    tokens = sum(model.count_tokens(t) for t in texts)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_embeddings_base64_and_single_string(client, model):
    text = "Where is the festival held?"
    floats = client.post("/v1/embeddings", json={"input": text, "input_type": "query"}).json()["data"]
    encoded = client.post("/v1/embeddings", json={"input": text, "input_type": "query",
                                                  "encoding_format": "base64"}).json()["data"]
    assert len(floats) == 1 and isinstance(encoded[0]["embedding"], str)
    decoded = np.frombuffer(base64.b64decode(encoded[0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats[0]["embedding"], atol=1e-6)
    np.testing.assert_allclose(decoded, model.embed(text, kind="query"), atol=1e-5)


@pytest.mark.parametrize("body, field", [
    ({"input": []}, "input"),
    ({"input": ["ok", "   "]}, "input"),
    ({"input": [1, 2, 3]}, "input"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({}, "input"),
])
def test_embeddings_validation_errors_are_422(client, body, field):
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith(field)
    assert field in error["message"]


def test_embeddings_wrong_dimensions_is_422(client, model):
    response = client.post("/v1/embeddings", json={"input": "x", "dimensions": 64})
    assert response.status_code == 422 and str(model.embedding_dim) in response.json()["error"]["message"]


# ---------------------------------------------------------------- /v1/chat/completions
def test_chat_completion_matches_the_model(client, model):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    body = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 12}).json()
    expected = model.chat(messages, max_new_tokens=12)
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert choice["message"] == {"role": "assistant", "content": expected.text}
    assert choice["finish_reason"] == expected.finish_reason
    assert body["usage"] == {"prompt_tokens": expected.prompt_tokens, "completion_tokens": expected.completion_tokens,
                             "total_tokens": expected.total_tokens}


def test_chat_completion_stop_sequence(client):
    messages = [{"role": "user", "content": "Count from 1 to 10, one number per line."}]
    full = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 40}).json()
    text = full["choices"][0]["message"]["content"]
    assert "4" in text, text  # the model counts; the stop test below needs a "4" to cut at
    cut = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 40, "stop": ["4"]}).json()
    choice = cut["choices"][0]
    assert choice["message"]["content"] == text[: text.index("4")]
    assert choice["finish_reason"] == "stop"


def test_chat_completion_stream_sse_framing(client):
    request = {"messages": [{"role": "system", "content": "You are terse."},
                            {"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
               "max_tokens": 10, "stream": True, "stream_options": {"include_usage": True}}
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] in ("stop", "length")
    usage_only = chunks[-1]
    assert usage_only["choices"] == [] and usage_only["usage"]["completion_tokens"] >= 1
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    whole = client.post("/v1/chat/completions", json={**request, "stream": False}).json()
    assert streamed == whole["choices"][0]["message"]["content"] and streamed


@pytest.mark.parametrize("body, field", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 5}, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
])
def test_chat_validation_errors_are_422(client, body, field):
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == field


def test_chat_prompt_longer_than_the_context_is_400(client, model):
    long_text = "word " * (model.context_window + 10)
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": long_text}]})
    assert response.status_code == 400 and "context window" in response.json()["error"]["message"]


# ---------------------------------------------------------------- /v1/rag/answer and the page's API
def test_rag_answer_json(client):
    body = client.post("/v1/rag/answer", json={"question": "When is the Quillby lantern festival held?", "k": 2}).json()
    assert body["object"] == "rag.answer" and body["question"] == "When is the Quillby lantern festival held?"
    assert len(body["sources"]) == 2 and body["sources"][0]["source"].endswith("quillby.md")
    assert body["sources"][0]["title"] == "The Quillby lantern festival"
    assert body["sources"][0]["score"] >= body["sources"][1]["score"]
    assert body["answer"].strip() and isinstance(body["abstained"], bool)
    assert "March" in body["answer"], body["answer"]
    assert set(body["answer_source_ids"]) <= {source["id"] for source in body["sources"]} and body["answer_source_ids"]
    assert {"retrieval_s", "generation_s", "ttft_s", "total_s"} <= set(body["timings"])
    assert body["usage"]["completion_tokens"] >= 1
    if body["consistency"] is not None:  # present once gem_rag.eval.consistency is installed
        assert body["consistency"]["label"] in ("consistent", "partly", "unsupported", "abstained")


def test_rag_answer_stream(client):
    question = "How many cards does each Zorblax player start with?"
    response = client.post("/v1/rag/answer", json={"question": question, "stream": True})
    payloads = sse_payloads(response)
    events = payloads[:-1]
    assert events[0]["type"] == "sources" and events[0]["sources"][0]["source"].endswith("zorblax.txt")
    assert events[1]["type"] == "support" and events[1]["supporting_sentences"][0]["text"]
    assert [e["type"] for e in events[2:-1]] == ["token"] * (len(events) - 3) and len(events) > 3
    done = events[-1]
    assert done["type"] == "done" and done["sources"] == events[0]["sources"]
    assert done["supporting_sentences"] == events[1]["supporting_sentences"]
    whole = client.post("/v1/rag/answer", json={"question": question}).json()
    assert done["answer"] == whole["answer"] and done["abstained"] == whole["abstained"]
    streamed = "".join(e["text"] for e in events[2:-1])
    assert done["abstained"] or done["answer"] in streamed  # the answer is the streamed text, trimmed


@pytest.mark.parametrize("body", [{"question": "   "}, {"question": "x", "k": 0}, {"k": 2}])
def test_rag_validation_errors_are_422(client, body):
    assert client.post("/v1/rag/answer", json=body).status_code == 422


def test_rag_without_documents_is_503(model):
    from gem_rag.server import create_app

    with TestClient(create_app(model), base_url=LOCAL_URL) as empty:
        assert empty.get("/api/status").json()["state"] == "empty"
        response = empty.post("/v1/rag/answer", json={"question": "anything?"})
        assert response.status_code == 503 and "upload" in response.json()["error"]["message"]
        assert empty.post("/api/upload", json={"files": [{"name": "a.txt", "text": "x"}]}).status_code == 403


def test_upload_indexes_new_documents(client):
    text = "The Brindle Observatory stands on Mount Kerrow and opened to visitors in 1932."
    response = client.post("/api/upload", json={"files": [{"name": "../../observatory.txt", "text": text}]})
    assert response.status_code == 202 and response.json()["state"] in ("indexing", "ready")
    deadline = time.time() + 120
    while (status := client.get("/api/status").json())["state"] == "indexing" and time.time() < deadline:
        time.sleep(0.2)
    assert status["state"] == "ready" and "1 files" in status["message"], status
    body = client.post("/v1/rag/answer", json={"question": "Where is the Brindle Observatory?", "k": 1}).json()
    assert body["sources"][0]["source"].endswith("observatory.txt")  # saved inside the uploads folder only
    assert ".." not in body["sources"][0]["source"]


def test_folder_indexing_only_on_loopback(client, tmp_path):
    assert client.get("/api/status").json()["folder_indexing"] is False
    response = client.post("/api/index-folder", json={"path": str(tmp_path)})
    assert response.status_code == 403 and "loopback" in response.json()["error"]["message"]


def test_page_is_self_contained(client):
    page = client.get("/").text
    assert 'id="question"' in page and "/static/app.js" in page
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200
    everything = page + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "http://" not in everything and "https://" not in everything  # no CDN, no external fonts


# ---------------------------------------------------------------- the official openai client, over real HTTP
@pytest.fixture(scope="module")
def live_url(client):
    import uvicorn

    from gem_rag.server.commands.common import bind, url_of

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(client.app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield url_of(sock)
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_client_round_trip(live_url, model):
    openai = pytest.importorskip("openai", reason="the openai package is not installed (pip install openai)")
    api = openai.OpenAI(base_url=live_url + "v1", api_key="not-needed")
    assert [m.id for m in api.models.list()] == [model.name]
    embedded = api.embeddings.create(model=model.name, input=["first text", "second text"])  # base64 on the wire
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == model.embedding_dim
    np.testing.assert_allclose(embedded.data[1].embedding, model.embed("second text"), atol=1e-5)
    assert embedded.usage.prompt_tokens > 0
    messages = [{"role": "user", "content": "Name a colour."}]
    completion = api.chat.completions.create(model=model.name, messages=messages, max_tokens=8)
    assert completion.choices[0].message.content and completion.usage.completion_tokens >= 1
    pieces = [c.choices[0].delta.content or "" for c in
              api.chat.completions.create(model=model.name, messages=messages, max_tokens=8, stream=True) if c.choices]
    assert "".join(pieces) == completion.choices[0].message.content
    with pytest.raises(openai.UnprocessableEntityError, match="temperature"):
        api.chat.completions.create(model=model.name, messages=messages, temperature=9)
