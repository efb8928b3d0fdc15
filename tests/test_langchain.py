"""Contract tests for the LangChain backend beyond the standard suites: the answers are exactly the core model's,
sync/async/stream agree, stop and options are honoured, async never blocks the loop, bad input is named."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import ValidationError

from gem_rag import get_default_model
from gem_rag.langchain import GemChatModel, GemEmbeddings, GemLLM

SHORT = 12  # tokens per answer: enough to compare, cheap on CPU
PROMPT = "The three primary colours are"
QUESTION = [SystemMessage("Answer briefly."), HumanMessage("What is a Python tuple?")]
QUESTION_DICTS = [{"role": "system", "content": "Answer briefly."},
                  {"role": "user", "content": "What is a Python tuple?"}]


@pytest.fixture(scope="module")
def gem():
    return get_default_model()


@pytest.fixture(scope="module")
def llm(gem):
    return GemLLM(max_tokens=SHORT)


@pytest.fixture(scope="module")
def chat(gem):
    return GemChatModel(max_tokens=SHORT)


@pytest.fixture(scope="module")
def llm_text(gem):
    return gem.generate(PROMPT, max_new_tokens=SHORT).text


@pytest.fixture(scope="module")
def chat_result(gem):
    return gem.chat(QUESTION_DICTS, max_new_tokens=SHORT)


def close(a, b) -> bool:
    return np.allclose(np.asarray(a), np.asarray(b), atol=1e-5)


class TokenCollector(BaseCallbackHandler):
    def __init__(self):
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs) -> None:
        self.tokens.append(token)


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


# ---------------------------------------------------------------- embeddings
def test_embeddings_match_the_core_model_and_are_python_floats(gem):
    embeddings = GemEmbeddings()
    texts = ["Tuples are immutable sequences.", "A dictionary maps keys to values.", "venv creates environments."]
    vectors = embeddings.embed_documents(texts)
    assert len(vectors) == 3 and all(len(v) == gem.embedding_dim for v in vectors)
    assert all(type(x) is float for v in vectors for x in v)
    assert close(vectors, gem.embed(texts, kind="document"))
    assert embeddings.embed_documents([]) == []


def test_query_instruction_is_used_on_the_query_path_only(gem, monkeypatch):
    monkeypatch.setattr(gem, "query_instruction", "Represent this question for retrieval: ")
    embeddings = GemEmbeddings()
    text = "Which sequence type is immutable?"
    query, document = embeddings.embed_query(text), embeddings.embed_documents([text])[0]
    assert all(type(x) is float for x in query)
    assert close(query, gem.embed(text, kind="query"))
    assert close(document, gem.embed(text, kind="document"))
    assert not close(query, document)


def test_embeddings_batch_size_reaches_the_model(gem, monkeypatch):
    calls = []
    real_embed = gem.embed

    def spy(texts, kind="document", **kwargs):
        calls.append((len(texts), kind, kwargs.get("batch_size")))
        return real_embed(texts, kind=kind, **kwargs)

    monkeypatch.setattr(gem, "embed", spy)
    GemEmbeddings(batch_size=7).embed_documents([f"passage number {i}" for i in range(9)])
    assert calls == [(9, "document", 7)]
    with pytest.raises(ValidationError):
        GemEmbeddings(batch_size=0)


def test_async_embeddings_match_and_do_not_block_the_event_loop():
    embeddings = GemEmbeddings()
    texts = [f"A longer passage about Python data structures, number {i}. " * 4 for i in range(16)]
    start = time.perf_counter()
    vectors, ticks = asyncio.run(_ticks_while(embeddings.aembed_documents(texts)))
    elapsed = time.perf_counter() - start
    assert close(vectors, embeddings.embed_documents(texts))
    assert ticks >= max(2, int(elapsed / 0.01) // 4)  # the loop kept running while the model worked
    query = asyncio.run(embeddings.aembed_query("tuples"))
    assert close(query, embeddings.embed_query("tuples"))


@pytest.mark.parametrize("call, error", [
    (lambda e: e.embed_documents("not a list"), TypeError),
    (lambda e: e.embed_documents(["fine", 3]), TypeError),
    (lambda e: e.embed_documents(["fine", "   "]), ValueError),
    (lambda e: e.embed_query(None), TypeError),
    (lambda e: e.embed_query(""), ValueError),
])
def test_embeddings_bad_input_is_named(call, error):
    with pytest.raises(error, match="text"):
        call(GemEmbeddings())


# ---------------------------------------------------------------- shared construction rules
@pytest.mark.parametrize("cls", [GemEmbeddings, GemLLM, GemChatModel])
def test_model_must_be_a_gem_model(cls, gem):
    with pytest.raises(TypeError, match="GemModel"):
        cls(model="SmolLM2-135M-Instruct")
    with pytest.raises(TypeError, match="GemModel"):
        cls(model=gem.hf_model)
    assert cls(model=gem).model is gem
    assert cls().model is gem


@pytest.mark.parametrize("cls", [GemEmbeddings, GemLLM, GemChatModel])
def test_unknown_fields_are_refused(cls):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls(model_name="gpt-4")


def test_every_field_has_a_docstring():
    for cls in (GemEmbeddings, GemLLM, GemChatModel):
        own = {name for klass in cls.__mro__ if klass.__module__.startswith("gem_rag") for name in
               getattr(klass, "__annotations__", {}) if not name.startswith("_") and name != "model_config"}
        for name in own:
            assert cls.model_fields[name].description, f"{cls.__name__}.{name} has no docstring"


# ---------------------------------------------------------------- GemLLM (text completion)
def test_llm_answer_is_the_core_completion_without_the_prompt(llm, llm_text):
    answer = llm.invoke(PROMPT)
    assert answer == llm_text and answer.strip()
    assert not answer.startswith(PROMPT)
    assert llm._identifying_params["model_name"] == llm.model.name
    assert llm._llm_type == "gem-rag"


def test_llm_stream_reports_each_token_and_equals_invoke(llm, llm_text):
    collector = TokenCollector()
    pieces = list(llm.stream(PROMPT, config={"callbacks": [collector]}))
    assert len(pieces) > 1 and "".join(pieces) == llm_text
    assert collector.tokens == pieces


def test_llm_async_matches_sync(llm, llm_text):
    async def both():
        answer = await llm.ainvoke(PROMPT)
        pieces = [piece async for piece in llm.astream(PROMPT)]
        return answer, pieces

    (answer, pieces), ticks = asyncio.run(_ticks_while(both()))
    assert answer == llm_text and "".join(pieces) == llm_text
    assert ticks > 0


def test_llm_stop_is_enforced_per_call_and_by_field(llm, llm_text):
    word = llm_text.split()[2]  # a word the free answer contains
    cut = llm_text[: llm_text.index(word)]
    assert llm.invoke(PROMPT, stop=[word]) == cut
    assert "".join(llm.stream(PROMPT, stop=[word])) == cut
    assert GemLLM(max_tokens=SHORT, stop=[word]).invoke(PROMPT) == cut


def test_llm_per_call_options(llm, gem):
    short = llm.invoke(PROMPT, max_tokens=2)
    assert gem.count_tokens(short) <= 3
    sampled = [llm.invoke(PROMPT, temperature=1.0, seed=7) for _ in range(2)]
    assert sampled[0] == sampled[1]  # seeded sampling is reproducible
    with pytest.raises(TypeError, match="unsupported keyword"):
        llm.invoke(PROMPT, max_new_tokens=3)
    with pytest.raises(TimeoutError):
        llm.invoke(PROMPT, timeout=1e-9)


def test_llm_token_counting_uses_the_models_tokenizer(llm, gem):
    assert llm.get_num_tokens(PROMPT) == gem.count_tokens(PROMPT)


@pytest.mark.parametrize("bad, error", [(123, ValueError), ("   ", ValueError)])
def test_llm_bad_prompt(llm, bad, error):
    with pytest.raises(error):
        llm.invoke(bad)


# ---------------------------------------------------------------- GemChatModel
def test_chat_goes_through_the_chat_template(chat, chat_result):
    message = chat.invoke(QUESTION)
    assert isinstance(message, AIMessage)
    assert message.content == chat_result.text and message.content.strip()
    assert message.usage_metadata == {"input_tokens": chat_result.prompt_tokens,
                                      "output_tokens": chat_result.completion_tokens,
                                      "total_tokens": chat_result.total_tokens}
    assert message.response_metadata["model_name"] == chat.model.name
    assert message.response_metadata["finish_reason"] in ("stop", "length")


def test_chat_stream_and_async_match_invoke(chat, chat_result):
    chunks = list(chat.stream(QUESTION))
    assert len(chunks) > 2 and "".join(c.content for c in chunks) == chat_result.text
    total = sum(chunks[1:], chunks[0])
    assert total.usage_metadata["output_tokens"] == chat_result.completion_tokens
    assert chunks[-1].chunk_position == "last"

    async def both():
        message = await chat.ainvoke(QUESTION)
        pieces = [chunk.content async for chunk in chat.astream(QUESTION)]
        return message, pieces

    (message, pieces), ticks = asyncio.run(_ticks_while(both()))
    assert message.content == chat_result.text and "".join(pieces) == chat_result.text
    assert ticks > 0


def test_chat_streaming_flag_feeds_callbacks_during_invoke(chat_result):
    collector = TokenCollector()
    message = GemChatModel(max_tokens=SHORT, streaming=True).invoke(QUESTION, config={"callbacks": [collector]})
    assert message.content == chat_result.text
    assert "".join(collector.tokens) == chat_result.text and len(collector.tokens) > 1


def test_chat_stop_and_options(chat, chat_result):
    word = chat_result.text.split()[1]
    cut = chat_result.text[: chat_result.text.index(word)]
    assert chat.invoke(QUESTION, stop=[word]).content == cut
    assert "".join(c.content for c in chat.stream(QUESTION, stop=[word])) == cut
    assert chat.bind(max_tokens=2).invoke(QUESTION).usage_metadata["output_tokens"] <= 2
    params = GemChatModel(max_tokens=5, temperature=0.5, stop=["x"])._get_ls_params()
    assert params == {"ls_provider": "gem_rag", "ls_model_name": chat.model.name, "ls_model_type": "chat",
                      "ls_temperature": 0.5, "ls_max_tokens": 5, "ls_stop": ["x"]}


@pytest.mark.parametrize("messages, error, words", [
    ([HumanMessage("hi"), ToolMessage("42", tool_call_id="1")], ValueError, "tool calling"),
    ([HumanMessage(content=[{"type": "image", "url": "http://x/y.png"}])], ValueError, "text-only"),
    ([HumanMessage("hi")], TypeError, "unsupported keyword"),
])
def test_chat_bad_input_is_named(chat, messages, error, words):
    kwargs = {"tools": []} if error is TypeError else {}
    with pytest.raises(error, match=words):
        chat.invoke(messages, **kwargs)


def test_chat_declares_no_tool_calling():
    from langchain_core.language_models import BaseChatModel

    assert GemChatModel.bind_tools is BaseChatModel.bind_tools  # so has_tool_calling is False in langchain-tests
    with pytest.raises(NotImplementedError):
        GemChatModel().bind_tools([])
