"""The GEM attention mask, cell by cell, and its effect on a real model (eager and sdpa)."""

import pytest
import torch

from gem_rag.core.gem import build_gem_attention_mask, register_special_tokens, special_token_strings

NEG = torch.finfo(torch.float32).min


def allowed(mask: torch.Tensor) -> torch.Tensor:
    return mask[0, 0] == 0


def test_mask_cells_one_special_token():
    # layout: p p p S s s  (prefix 3, one special, suffix 2)
    mask = build_gem_attention_mask([3], 1, torch.ones(1, 6, dtype=torch.long))
    assert mask.shape == (1, 1, 6, 6) and mask.dtype == torch.float32
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],  # special sees the prefix and itself
        [0, 0, 0, 1, 1, 0],  # suffix sees the special token, not the prefix
        [0, 0, 0, 1, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(allowed(mask), expected)
    assert set(mask.unique().tolist()) == {0.0, NEG}


def test_mask_cells_two_special_tokens_and_padding():
    # layout: p p S0 S1 s pad
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    mask = build_gem_attention_mask([2], 2, attention)
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0],  # S1 does not see S0
        [0, 0, 1, 1, 1, 0],  # suffix sees both specials, no prefix
        [0, 0, 0, 0, 0, 1],  # padding row sees only itself (no NaN), nobody sees padding
    ], dtype=torch.bool)
    assert torch.equal(allowed(mask), expected)


def test_a_bos_sink_stays_visible_to_the_suffix():
    # layout: B p p S s  (BOS, prefix text 2, one special, suffix 1); the suffix sees B, S and itself
    mask = build_gem_attention_mask([3], 1, torch.ones(1, 5, dtype=torch.long), sink_tokens=1)
    assert allowed(mask)[4].int().tolist() == [1, 0, 0, 1, 1]
    assert allowed(mask)[3].int().tolist() == [1, 1, 1, 1, 0]  # the special token still reads the whole prefix


def test_bos_prefix_follows_the_tokenizer(model):
    from gem_rag.core.gem import bos_prefix

    class BosTokenizer:
        bos_token_id = 2

        def __call__(self, text):
            return type("Encoding", (), {"input_ids": [2, 9259]})()

    assert bos_prefix(BosTokenizer()) == [2]
    assert bos_prefix(model.tokenizer) == [] and model.bos_ids == []  # SmolLM2 starts texts without one


def test_rows_without_special_tokens_are_plain_causal():
    mask = build_gem_attention_mask([-1, 1], 1, torch.ones(2, 4, dtype=torch.long))
    assert torch.equal(mask[0, 0] == 0, torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    assert not bool(allowed(mask[1:])[2, 0])  # second row: suffix cannot see prefix


def test_special_token_count_is_checked():
    with pytest.raises(ValueError, match="num_special_tokens"):
        special_token_strings(0)


def _logits(hf, ids: list[int], mask: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        return hf(input_ids=torch.tensor([ids]), attention_mask=mask).logits[0]  # (T, V)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_suffix_sees_prefix_only_through_the_special_token(model, attn_implementation):
    """Two prefixes of equal length: under the GEM mask the suffix logits differ only because the special
    token's states differ. Freeze that path (special token also blind to the prefix) and they are identical;
    under a plain causal mask they are not."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(model.hf_model.name_or_path, dtype=torch.float32,
                                              attn_implementation=attn_implementation).eval()
    tok = model.tokenizer
    special = register_special_tokens(hf, tok, 1)
    suffix = tok("and then the story goes on.", add_special_tokens=False).input_ids
    prefixes = [tok(t, add_special_tokens=False).input_ids for t in ("The cat sat on the mat", "Quantum chromodynamics is very hard")]
    assert len(prefixes[0]) == len(prefixes[1])  # same positions: only the content differs
    start = len(prefixes[0])  # index of the special token

    gem, frozen, causal = [], [], []
    for prefix in prefixes:
        ids = prefix + special + suffix
        mask = build_gem_attention_mask([start], 1, torch.ones(1, len(ids), dtype=torch.long))
        gem.append(_logits(hf, ids, mask))
        blind = mask.clone()
        blind[0, 0, start, :start] = NEG  # the special token cannot see the prefix either
        frozen.append(_logits(hf, ids, blind))
        causal.append(_logits(hf, ids, None))

    assert not torch.allclose(gem[0][start:], gem[1][start:], atol=1e-3)  # the special token carries the prefix
    assert torch.allclose(frozen[0][start:], frozen[1][start:], atol=1e-4)  # ... and is the only path
    assert not torch.allclose(causal[0][start + 1:], causal[1][start + 1:], atol=1e-3)
