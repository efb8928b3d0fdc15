"""The GPU path: GemModel on CUDA (bf16 by default) embeds like the CPU model and generates, and the RAG pipeline
answers on it. Skipped where torch sees no CUDA device (the project's CPU machines); runs on a GPU machine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not tested here")]

TEXTS = ["The aardvark feeds almost exclusively on ants and termites.",
         "Albedo is the fraction of sunlight that is diffusely reflected by a body."]


@pytest.fixture(scope="module")
def gpu_model():
    from gem_rag import GemModel

    return GemModel.from_pretrained(device="cuda")


def test_cuda_model_loads_in_bf16_and_embeds_like_the_cpu_model(gpu_model):
    from gem_rag import get_default_model

    assert gpu_model.device.type == "cuda" and gpu_model.dtype == torch.bfloat16
    on_gpu = gpu_model.embed(TEXTS)
    on_cpu = get_default_model().embed(TEXTS)
    cosines = np.sum(on_gpu * on_cpu, axis=1) / (np.linalg.norm(on_gpu, axis=1) * np.linalg.norm(on_cpu, axis=1))
    assert cosines.min() > 0.98, cosines  # bf16 against fp32: close, not equal


def test_cuda_model_generates_and_the_pipeline_answers(gpu_model, tmp_path):
    from gem_rag.rag import RagPipeline

    text = gpu_model.generate("The capital of France is", max_new_tokens=8).text
    assert text.strip()
    (tmp_path / "aardvark.md").write_text("# Aardvark\n\n" + " ".join(TEXTS))
    rag = RagPipeline(gpu_model)
    rag.index(tmp_path)
    answer = rag.answer("What does the aardvark eat?")
    assert not answer.abstained and "termites" in answer.answer + " ".join(s.text for s in answer.supporting_sentences)
