"""One GemModel per process: every LangChain and LlamaIndex adapter resolves the same instance, the weights load
once, and the second framework's adapters add far less memory than a model's worth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gem_rag import get_default_model
from gem_rag.langchain import GemChatModel, GemEmbeddings, GemLLM
from gem_rag.llama_index import GemEmbedding
from gem_rag.llama_index import GemLLM as LlamaGemLLM

MB = 1024 * 1024

# Runs in a fresh interpreter so that the load count and the memory figures belong to this scenario alone.
MEMORY_SCRIPT = r"""
import gc, json
import psutil
import langchain_core.language_models, llama_index.core  # framework imports are not the model's memory
from gem_rag import GemModel
from gem_rag.langchain import GemChatModel, GemEmbeddings
from gem_rag.llama_index import GemEmbedding, GemLLM

def rss():
    gc.collect()
    return psutil.Process().memory_info().rss

texts = [f"Passage {i} about Python tuples, dictionaries and virtual environments." for i in range(16)]
before = rss()
lc_embeddings, lc_chat = GemEmbeddings(), GemChatModel(max_tokens=8)
lc_embeddings.embed_documents(texts); lc_embeddings.embed_query("what is a tuple?"); lc_chat.invoke("Hello")
one_framework = rss()
li_embedding, li_llm = GemEmbedding(), GemLLM(max_tokens=8)
li_embedding.get_text_embedding_batch(texts); li_embedding.get_query_embedding("what is a tuple?")
li_llm.complete("Hello")
both_frameworks = rss()
weights = sum(p.numel() * p.element_size() for p in lc_chat.model.hf_model.parameters())
print(json.dumps({"load_count": GemModel.load_count, "same": lc_chat.model is li_llm.model is li_embedding.model,
                  "before": before, "one_framework": one_framework, "both_frameworks": both_frameworks,
                  "weights": weights}))
"""


def test_all_adapters_share_the_default_instance():
    shared = get_default_model()
    adapters = [GemEmbeddings(), GemLLM(), GemChatModel(), GemEmbedding(), LlamaGemLLM()]
    assert all(adapter.model is shared for adapter in adapters)
    assert GemLLM().model is GemEmbeddings().model
    assert LlamaGemLLM().model is GemEmbeddings().model
    assert GemChatModel(max_tokens=4).model is GemEmbedding().model


@pytest.mark.slow
def test_weights_load_once_and_the_second_framework_adds_little_memory():
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    first_cost = (figures["one_framework"] - figures["before"]) / MB
    second_cost = (figures["both_frameworks"] - figures["one_framework"]) / MB
    weights = figures["weights"] / MB
    print(f"\nweights {weights:.0f} MB; RSS: first framework +{first_cost:.0f} MB, second +{second_cost:.1f} MB")
    assert figures["load_count"] == 1 and figures["same"]
    assert first_cost > 0.5 * weights  # the measurement sees a model load when there is one...
    assert second_cost < 50            # ...and the second framework's adapters load nothing of the kind
