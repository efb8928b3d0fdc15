"""Shared fixtures: the real default model, loaded once per test session (converted once per machine)."""

import pytest


@pytest.fixture(scope="session")
def model():
    """The process-wide default GemModel (real SmolLM2-135M-Instruct, GEM weights when shipped)."""
    from gem_rag import get_default_model

    return get_default_model()
