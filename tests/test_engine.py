"""The torch engine's mechanics (fast tier, the tiny model): continuous batching of decode steps
(gem_rag.core.step_batcher, decode_state.step_decodings), where concurrent generations decode together and get the
tokens they get alone, the default dtype (bf16 only where the CPU has bf16 units) and the compiled embedding pass."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from gem_rag.core.decode_state import step_decodings
from gem_rag.core.generation import Piece
from gem_rag.core.step_batcher import StepBatcher

PROMPTS = ["The river", "A list of birds: sparrow, robin,", "Once upon a time in a small village there lived", "Hi"]


def test_a_batched_step_gives_each_decoding_its_own_logits(tiny_model):
    rows = [tiny_model.tokenizer(p).input_ids for p in PROMPTS]  # different lengths: the caches are padded
    batched = [tiny_model.start_decoding([[Piece(r)]]) for r in rows]
    alone = [tiny_model.start_decoding([[Piece(r)]]) for r in rows]
    for token in (11, 42, 7):
        together = step_decodings([(d, token) for d in batched])
        for decoding, logits, single in zip(batched, together, alone):
            expected = single.forward_alone([token])
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)
            for d in (decoding, single):  # what advance() keeps besides the cache
                d.attention = torch.cat([d.attention, torch.ones_like(d.attention[:, :1])], dim=1)
                d.next_positions = d.next_positions + 1
        assert [d.cache.get_seq_length() for d in batched] == [s.cache.get_seq_length() for s in alone]
    for d in batched + alone:
        d.close()


def test_concurrent_generations_are_batched_and_unchanged(tiny_model):
    alone = [tiny_model.generate(p, max_new_tokens=12).text for p in PROMPTS]
    batches, steps = tiny_model.batcher.batches, tiny_model.batcher.steps
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: tiny_model.generate(p, max_new_tokens=12).text, PROMPTS))
    assert together == alone
    assert tiny_model.batcher.steps - steps > tiny_model.batcher.batches - batches  # some passes carried several
    assert tiny_model.batcher._open == 0  # every generation closed its registration


def test_a_failed_batch_fails_every_step_in_it():
    started = threading.Barrier(2)

    def run(payloads):
        if len(payloads) > 1 or payloads[0] == "bad":
            raise RuntimeError("the backend failed")
        return [payloads[0] * 2]

    batcher = StepBatcher(run, window_s=1.0)
    batcher.opened()
    batcher.opened()
    errors: list[str] = []

    def step(payload):
        started.wait()
        try:
            batcher.step(payload)
        except RuntimeError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=step, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert errors == ["the backend failed", "the backend failed"] and batcher.batches == 1
    batcher.closed()
    assert batcher.step("c") == "cc"  # one open generation runs at once
    with pytest.raises(RuntimeError, match="backend failed"):
        batcher.step("bad")


def test_bf16_is_the_default_only_where_the_cpu_has_bf16_units(monkeypatch, tmp_path):
    from gem_rag.core import model as model_module

    for flags, expected in (("fpu avx2 avx512f", torch.float32), ("fpu avx2 amx_bf16 amx_tile", torch.bfloat16),
                            ("fpu avx512f avx512_bf16", torch.bfloat16)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        real_open = open
        monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo" else path,
                                                                             *a, **k))
        assert model_module.default_dtype(torch.device("cpu")) == expected, flags
        monkeypatch.undo()
    assert model_module.default_dtype(torch.device("cuda")) == torch.bfloat16


def test_a_compiled_embedding_pass_gives_the_eager_vectors():
    from tiny_model import build_tiny_model

    model = build_tiny_model()  # its own: compiling the shared one would slow every later test
    texts = ["The river bends.", "A list of birds: sparrow, robin, wren."]
    eager = model.embed(texts)
    model.compile_embedding_pass(dynamic=True)
    assert np.allclose(model.embed(texts), eager, atol=1e-5)
