"""Shared fixtures: the real default model, loaded once per test session (converted once per machine), and a
tiny random model with the real tokenizer for fast tests that need no trained weights."""

import pytest


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
