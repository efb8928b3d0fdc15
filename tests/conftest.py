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
    """A GemModel around a random 2-layer Llama (hidden 32) with the real SmolLM2 tokenizer and the GEM token.

    Loads in well under a second after the first conversion of the default model (which only its tokenizer
    comes from); embeds and generates fast, but its outputs mean nothing: use it for plumbing, limits, timing.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gem_rag.core.gem import register_special_tokens, special_token_strings
    from gem_rag.core.loading import resolve_model_folder
    from gem_rag.core.model import GemModel

    folder, _ = resolve_model_folder(None)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": special_token_strings(1)},
                                 replace_extra_special_tokens=False)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    hf_model = LlamaForCausalLM(config)
    special_ids = register_special_tokens(hf_model, tokenizer, 1)  # present already: no resize
    return GemModel(hf_model, tokenizer, name="tiny-random-llama", special_token_ids=special_ids)


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
