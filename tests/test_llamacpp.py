"""The llama.cpp backend (extra "llamacpp", scripts/setup_llamacpp.sh): the same GEM embeddings, generation,
stop sequences, streaming, pipeline, LangChain and OpenAI-server paths as the torch backend. Skipped with the
install hint when llama-cpp-python is not installed."""

import json

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed: bash scripts/setup_llamacpp.sh '
                                        '(or pip install "gem-rag[llamacpp]")')

pytestmark = pytest.mark.slow

TEXTS = ["The aardvark feeds almost exclusively on ants and termites, which it digs out with its claws.",
         "Albedo is the fraction of sunlight that is diffusely reflected by a body. It matters for climate.",
         "Create a virtual environment with python3 -m venv tutorial-env, then activate it."]
PROMPTS = ["What is the capital of France?", "Name a colour of the sky.", "What do bees make?"]


@pytest.fixture(scope="module")
def lmodel():
    from gem_rag import GemModel

    model = GemModel.from_pretrained(backend="llamacpp", threads=2)
    yield model
    model.close()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_embeddings_equal_the_torch_backend(lmodel, model):
    """Q4_1 weights with 8-bit activations against fp32 weights dequantised from the same file: cosine >= 0.99
    (measured 0.9995); queries too."""
    assert lmodel.embedding_dim == model.embedding_dim and lmodel.special_token_ids == model.special_token_ids
    assert cosines(lmodel.embed(TEXTS), model.embed(TEXTS)).min() >= 0.99
    query = "what do aardvarks eat?"
    assert cosines(lmodel.embed(query, kind="query"), model.embed(query, kind="query")) >= 0.99
    batched, alone = lmodel.embed(TEXTS, batch_size=3), np.stack([lmodel.embed(t) for t in TEXTS])
    assert cosines(batched, alone).min() >= 0.9999  # batching does not change a text's embedding


def test_unit_embeddings_see_only_their_unit(lmodel, model):
    """Unit vectors equal the torch backend's (same attention pattern), and the text vector from the same pass
    equals embed(): the unit GEM tokens are invisible to the text."""
    text = TEXTS[1]
    cut = text.index(" It") + 1
    spans = [[(0, cut - 1), (cut, len(text)), (10, 30)]]
    vectors, units = lmodel.embed_with_units([text], spans)
    torch_vectors, torch_units = model.embed_with_units([text], spans)
    assert cosines(vectors[0], lmodel.embed(text)) >= 0.9999
    assert cosines(units[0], torch_units[0]).min() >= 0.99 and cosines(vectors[0], torch_vectors[0]) >= 0.99


def test_greedy_generation_equals_the_torch_backend_on_fixed_prompts(lmodel, model):
    for prompt in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        ours, theirs = lmodel.chat(messages, max_new_tokens=6), model.chat(messages, max_new_tokens=6)
        assert (ours.text, ours.prompt_tokens) == (theirs.text, theirs.prompt_tokens), prompt


def test_stop_sequences_streaming_and_batches(lmodel):
    prompt = lmodel.apply_chat_template([{"role": "user", "content": "Count from 1 to 10, one number per line."}])
    full = lmodel.generate(prompt, max_new_tokens=40)
    assert "4" in full.text, full.text
    cut = lmodel.generate(prompt, max_new_tokens=40, stop=["4"])
    assert cut.text == full.text[: full.text.index("4")] and cut.finish_reason == "stop"
    stream = lmodel.stream(prompt, max_new_tokens=40, stop=["4"])
    assert "".join(stream) == cut.text and stream.result.completion_tokens == cut.completion_tokens
    prompts = [lmodel.apply_chat_template([{"role": "user", "content": p}]) for p in PROMPTS]
    batched = lmodel.generate(prompts, max_new_tokens=8)
    assert [r.text for r in batched] == [lmodel.generate(p, max_new_tokens=8).text for p in prompts]


def test_interleaved_streams_keep_their_own_state(lmodel):
    """Each open generation owns a KV-cache sequence; the cached prompt start is shared, not overwritten."""
    a, b = (lmodel.apply_chat_template([{"role": "user", "content": p}]) for p in PROMPTS[:2])
    expected = lmodel.generate(a, max_new_tokens=8).text, lmodel.generate(b, max_new_tokens=8).text
    first, second = lmodel.stream(a, max_new_tokens=8), lmodel.stream(b, max_new_tokens=8)
    pieces = {0: [], 1: []}
    for _ in range(16):
        for i, stream in enumerate((first, second)):
            pieces[i].append(next(stream, ""))
    assert ("".join(pieces[0]), "".join(pieces[1])) == expected
    free = len(lmodel.context.free_seqs)
    lmodel.embed(TEXTS)
    assert len(lmodel.context.free_seqs) == free  # embedding passes give their sequences back


def test_concurrent_generations_are_batched_and_unchanged(lmodel):
    """Continuous batching: four threads generating at once get their sequential answers, in fewer decode calls
    than steps."""
    from concurrent.futures import ThreadPoolExecutor

    prompts = [lmodel.apply_chat_template([{"role": "user", "content": p}]) for p in PROMPTS + ["Say hello."]]
    alone = [lmodel.generate(p, max_new_tokens=12).text for p in prompts]
    batches, steps = lmodel.batcher.batches, lmodel.batcher.steps
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: lmodel.generate(p, max_new_tokens=12).text, prompts))
    assert together == alone
    assert lmodel.batcher.steps - steps > lmodel.batcher.batches - batches  # some decode calls carried several


def test_score_matches_the_torch_backend(lmodel, model):
    prompts, continuations = ["Q: What is the capital of France?\nA:"] * 2, [" Paris", " a banana split"]
    ours, theirs = lmodel.score(prompts, continuations), model.score(prompts, continuations)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and abs(float(a.sum() - b.sum())) < 0.1 * abs(float(b.sum())) + 0.3
    assert ours[0].sum() > ours[1].sum()


def test_pipeline_answers_and_refuses_what_the_backend_lacks(lmodel):
    from gem_rag.rag import RagPipeline

    rag = RagPipeline(lmodel)
    rag.add_texts(TEXTS)
    answer = rag.answer("What does the aardvark eat?")
    assert "termites" in answer.answer.lower() + " ".join(s.text for s in answer.supporting_sentences).lower()
    with pytest.raises(ValueError, match="kv_reuse"):
        RagPipeline(lmodel, kv_reuse=True)
    with pytest.raises(ValueError, match="beams"):
        rag.configure(reader="chunks")  # beams=8 by default
    rag.configure(reader="chunks", beams=1)
    assert rag.answer("What does the aardvark eat?").answer


def test_langchain_and_openai_server_on_this_backend(lmodel, tmp_path):
    from fastapi.testclient import TestClient

    from gem_rag.langchain import GemEmbeddings, GemLLM
    from gem_rag.rag import RagPipeline
    from gem_rag.server import create_app

    llm, embeddings = GemLLM(model=lmodel, max_tokens=6), GemEmbeddings(model=lmodel)
    assert llm.invoke("The capital of France is") == lmodel.generate("The capital of France is", max_new_tokens=6).text
    assert cosines(np.array(embeddings.embed_query("aardvark")), lmodel.embed("aardvark", kind="query")) > 0.9999
    rag = RagPipeline(lmodel)
    rag.add_texts(TEXTS)
    app = create_app(lmodel, rag, corpus_label="three texts", uploads_folder=tmp_path)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        vectors = client.post("/v1/embeddings", json={"input": TEXTS[:2]}).json()["data"]
        assert cosines(np.array(vectors[0]["embedding"]), lmodel.embed(TEXTS[0])) > 0.9999
        request = {"messages": [{"role": "user", "content": "Count from 1 to 10, one number per line."}],
                   "max_tokens": 40, "stop": ["4"], "stream": True}
        frames = [line[len("data: "):] for line in client.post("/v1/chat/completions", json=request).text.split("\n\n")
                  if line.startswith("data: ") and line != "data: [DONE]"]
        streamed = "".join(json.loads(f)["choices"][0]["delta"].get("content", "") for f in frames
                           if json.loads(f)["choices"])
        whole = client.post("/v1/chat/completions", json={**request, "stream": False}).json()
        assert streamed == whole["choices"][0]["message"]["content"] and streamed and "4" not in streamed


def test_bad_arguments_name_the_fix():
    from gem_rag import GemModel

    with pytest.raises(ValueError, match=".gguf"):
        GemModel.from_pretrained("/no/such/folder", backend="llamacpp")
    with pytest.raises(ValueError, match="backend must be"):
        GemModel.from_pretrained(backend="vllm")
    with pytest.raises(ValueError, match="gguf_type"):
        GemModel.from_pretrained(gguf_type="f16")
