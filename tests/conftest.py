"""Shared fixtures: the real default model, loaded once per test session (converted once per machine), a
tiny random model with the real tokenizer for fast tests that need no trained weights, and a Chroma server."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The real model runs in fp32 here, also on a CPU with bf16 units (where bf16 is the product's default): the
# mechanics tests (batched equals one by one, a cached prefix equals a full pass) hold exactly only in fp32, and
# test_core_model compares bf16 with this fp32 model. Subprocesses of the tests inherit it.
os.environ.setdefault("GEM_RAG_DTYPE", "float32")


@pytest.fixture(scope="session")
def model():
    """The process-wide default GemModel (real SmolLM2-135M-Instruct, GEM weights when shipped)."""
    from gem_rag import get_default_model

    return get_default_model()


@pytest.fixture(scope="session")
def tiny_model():
    """A GemModel around a random 2-layer Llama (hidden 32) with the real SmolLM2 tokenizer and the GEM token
    (tests/tiny_model.py: subprocesses of the tests build the same one)."""
    from tiny_model import build_tiny_model

    return build_tiny_model()


@pytest.fixture
def embedded(monkeypatch) -> list[str]:
    """The texts of the chunks the indexer embeds from now on (chunk and unit vectors: ``embed_chunks``)."""
    from gem_rag.rag import indexer as indexer_module

    texts: list[str] = []
    real = indexer_module.embed_chunks

    def counting(embedder, model, chunks, config):
        texts.extend(c.text for c in chunks)
        return real(embedder, model, chunks, config)

    monkeypatch.setattr(indexer_module, "embed_chunks", counting)
    return texts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def chroma_server(tmp_path):
    """The port of a `chroma run` server on 127.0.0.1, on a fresh database in tmp_path, stopped after the test."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip("the chroma CLI is not installed in this environment")
    port = free_port()
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server-db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    import httpx

    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"chroma server did not start on port {port}")
        time.sleep(0.3)
    yield port
    proc.terminate()
    proc.wait(timeout=20)


# Test modules that run the real model without the `model` fixture (subprocesses, their own loads, trainers).
REAL_MODEL_MODULES = {"test_artefact", "test_core_model", "test_demo_browser", "test_eval_cli", "test_integrations",
                      "test_langchain", "test_langchain_standard", "test_llama_index", "test_server_cli",
                      "test_shared_instance", "test_training"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that runs the real default model ``slow``: ``pytest -m "not slow"`` is the fast tier
    (mechanics on the tiny model, stores, storage, the server's limits), ``make test`` runs everything."""
    import pytest

    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if "model" in getattr(item, "fixturenames", ()) or module in REAL_MODEL_MODULES:
            item.add_marker(pytest.mark.slow)
