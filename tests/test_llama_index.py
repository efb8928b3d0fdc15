"""Contract tests for the LlamaIndex backend (it has no standard suite): answers are exactly the core model's,
sync/async/stream agree, batching is real, metadata is right, async never blocks the loop, bad input is named."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from pydantic import ValidationError

from gem_rag import get_default_model
from gem_rag.llama_index import GemEmbedding, GemLLM

SHORT = 12
PROMPT = "The three primary colours are"
QUESTION = [ChatMessage(role="system", content="Answer briefly."), ChatMessage(role="user", content="What is a tuple?")]
QUESTION_DICTS = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is a tuple?"}]


@pytest.fixture(scope="module")
def gem():
    return get_default_model()


@pytest.fixture(scope="module")
def llm(gem):
    return GemLLM(max_tokens=SHORT)


@pytest.fixture(scope="module")
def completion(gem):
    return gem.generate(PROMPT, max_new_tokens=SHORT)


@pytest.fixture(scope="module")
def chat_result(gem):
    return gem.chat(QUESTION_DICTS, max_new_tokens=SHORT)


def close(a, b) -> bool:
    return np.allclose(np.asarray(a), np.asarray(b), atol=1e-5)


async def _ticks_while(awaitable) -> tuple[object, int]:
    """Run ``awaitable`` beside a 10 ms ticker; a blocked event loop would let the ticker tick ~0 times."""
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        return await awaitable, ticks
    finally:
        done.set()
        await task


# ---------------------------------------------------------------- GemEmbedding
def test_embedding_matches_the_core_model(gem, monkeypatch):
    monkeypatch.setattr(gem, "query_instruction", "Represent this question for retrieval: ")
    embed_model = GemEmbedding()
    assert embed_model.model is gem and embed_model.model_name == gem.name
    text = "Which sequence type is immutable?"
    assert close(embed_model.get_text_embedding(text), gem.embed(text, kind="document"))
    assert close(embed_model.get_query_embedding(text), gem.embed(text, kind="query"))
    assert not close(embed_model.get_query_embedding(text), embed_model.get_text_embedding(text))
    assert all(type(x) is float for x in embed_model.get_query_embedding(text))


def test_embedding_batches_are_real_and_large(gem, monkeypatch):
    calls = []
    real_embed = gem.embed

    def spy(texts, kind="document", **kwargs):
        calls.append((len(texts) if isinstance(texts, list) else 1, kind, kwargs.get("batch_size")))
        return real_embed(texts, kind=kind, **kwargs)

    monkeypatch.setattr(gem, "embed", spy)
    embed_model = GemEmbedding()
    assert embed_model.embed_batch_size == 64
    texts = [f"passage number {i}" for i in range(100)]
    vectors = embed_model.get_text_embedding_batch(texts)
    assert calls == [(64, "document", 64), (36, "document", 64)]  # two batched calls, not 100 single ones
    assert len(vectors) == 100 and close(vectors, real_embed(texts))
    calls.clear()
    asyncio.run(embed_model.aget_text_embedding_batch(texts))
    assert calls == [(64, "document", 64), (36, "document", 64)]
    assert embed_model.get_text_embedding_batch([]) == []
    assert GemEmbedding(embed_batch_size=16).embed_batch_size == 16


def test_async_embedding_matches_and_does_not_block_the_event_loop():
    embed_model = GemEmbedding()
    texts = [f"A longer passage about Python data structures, number {i}. " * 4 for i in range(16)]
    start = time.perf_counter()
    vectors, ticks = asyncio.run(_ticks_while(embed_model.aget_text_embedding_batch(texts)))
    elapsed = time.perf_counter() - start
    assert close(vectors, embed_model.get_text_embedding_batch(texts))
    assert ticks >= max(2, int(elapsed / 0.01) // 4)
    assert close(asyncio.run(embed_model.aget_query_embedding("tuples")), embed_model.get_query_embedding("tuples"))
    assert close(asyncio.run(embed_model.aget_text_embedding("tuples")), embed_model.get_text_embedding("tuples"))


@pytest.mark.parametrize("call, error", [
    (lambda e: e.get_text_embedding(42), TypeError),
    (lambda e: e.get_query_embedding(None), TypeError),
    (lambda e: e.get_text_embedding(""), ValueError),
    (lambda e: e.get_text_embedding_batch(["fine", "  "]), ValueError),
    (lambda e: e.get_text_embedding_batch(["fine", 3]), TypeError),
])
def test_embedding_bad_input_is_named(call, error):
    with pytest.raises(error, match="text|query"):
        call(GemEmbedding())


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("cls", [GemEmbedding, GemLLM])
def test_model_must_be_a_gem_model(cls, gem):
    with pytest.raises(TypeError, match="GemModel"):
        cls(model="SmolLM2-135M-Instruct")
    assert cls(model=gem).model is gem and cls().model is gem
    with pytest.raises(ValidationError):
        cls(not_a_field=1)


# ---------------------------------------------------------------- GemLLM
def test_metadata(llm, gem):
    meta = llm.metadata
    assert meta.context_window == gem.context_window == gem.hf_model.config.max_position_embeddings
    assert meta.num_output == SHORT and meta.is_chat_model and not meta.is_function_calling_model
    assert meta.model_name == gem.name


def test_complete_is_the_core_completion_without_the_prompt(llm, completion):
    response = llm.complete(PROMPT)
    assert response.text == completion.text and response.text.strip()
    assert not response.text.startswith(PROMPT)
    assert response.additional_kwargs == {"prompt_tokens": completion.prompt_tokens,
                                          "completion_tokens": completion.completion_tokens,
                                          "total_tokens": completion.total_tokens}


def test_stream_complete_matches_complete(llm, completion):
    responses = list(llm.stream_complete(PROMPT))
    assert len(responses) > 1
    assert "".join(r.delta for r in responses) == completion.text == responses[-1].text
    assert all(r.text.endswith(r.delta) for r in responses)  # text is the running total


def test_chat_uses_the_chat_template(llm, chat_result):
    response = llm.chat(QUESTION)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == chat_result.text and chat_result.text.strip()
    assert response.message.additional_kwargs["completion_tokens"] == chat_result.completion_tokens
    deltas = [r.delta for r in llm.stream_chat(QUESTION)]
    assert len(deltas) > 1 and "".join(deltas) == chat_result.text


def test_async_matches_sync_and_does_not_block(llm, completion, chat_result):
    async def everything():
        completed = await llm.acomplete(PROMPT)
        chatted = await llm.achat(QUESTION)
        completion_deltas = [r.delta async for r in await llm.astream_complete(PROMPT)]
        chat_deltas = [r.delta async for r in await llm.astream_chat(QUESTION)]
        return completed, chatted, completion_deltas, chat_deltas

    (completed, chatted, completion_deltas, chat_deltas), ticks = asyncio.run(_ticks_while(everything()))
    assert completed.text == completion.text and "".join(completion_deltas) == completion.text
    assert chatted.message.content == chat_result.text and "".join(chat_deltas) == chat_result.text
    assert ticks > 10  # four generations ran while the loop kept ticking


def test_stop_and_per_call_options(llm, completion):
    word = completion.text.split()[2]
    cut = completion.text[: completion.text.index(word)]
    assert llm.complete(PROMPT, stop=[word]).text == cut
    assert "".join(r.delta for r in llm.stream_complete(PROMPT, stop=[word])) == cut
    assert GemLLM(max_tokens=SHORT, stop=[word]).complete(PROMPT).text == cut
    assert llm.complete(PROMPT, max_tokens=2).additional_kwargs["completion_tokens"] <= 2
    with pytest.raises(TypeError, match="unsupported keyword"):
        llm.complete(PROMPT, max_new_tokens=2)


def test_query_engine_path_adds_the_system_prompt(chat_result):
    """LlamaIndex's predict() (what query engines call) goes through chat with the system prompt."""
    from llama_index.core.prompts import PromptTemplate

    llm = GemLLM(max_tokens=SHORT, system_prompt="Answer briefly.")
    answer = llm.predict(PromptTemplate("What is a {thing}?"), thing="tuple")
    assert answer == chat_result.text


def test_messages_to_prompt_can_be_replaced(gem):
    llm = GemLLM(max_tokens=4, messages_to_prompt=lambda messages: "Q: " + messages[-1].content + "\nA:")
    assert llm.chat(QUESTION).message.content == gem.generate("Q: What is a tuple?\nA:", max_new_tokens=4).text


@pytest.mark.parametrize("messages, words", [
    ([ChatMessage(role=MessageRole.TOOL, content="42")], "no tool calling"),
    ([ChatMessage(role="user", blocks=[TextBlock(text="what is this?"), ImageBlock(url="http://x/y.png")])],
     "text-only"),
])
def test_chat_bad_messages_are_named(llm, messages, words):
    with pytest.raises(ValueError, match=words):
        llm.chat(messages)


@pytest.mark.parametrize("prompt, error", [(["a", "list"], TypeError), (3, TypeError), ("  ", ValueError)])
def test_complete_bad_prompt(llm, prompt, error):
    with pytest.raises(error, match="prompt"):
        llm.complete(prompt)
