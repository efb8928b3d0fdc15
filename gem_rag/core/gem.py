"""GEM mechanics: special tokens, the training attention mask and the inference layout.

A text is split into ``prefix <special...> suffix``. Under the GEM mask the suffix cannot see the
prefix, so everything the suffix needs to know about the prefix must flow through the special
token(s): they become a summary of the prefix, and their last-layer hidden state is the embedding.

Example:
    >>> mask = build_gem_attention_mask(prefix_lengths=[3], num_special=1, attention_mask=torch.ones(1, 6))
    >>> mask.shape
    torch.Size([1, 1, 6, 6])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SPECIAL_TOKEN_TEMPLATE = "<|gem_{}|>"


def special_token_strings(num_special: int) -> list[str]:
    """The strings of the ``num_special`` GEM tokens, e.g. ``['<|gem_0|>']``."""
    if not isinstance(num_special, int) or num_special < 1 or num_special > 64:
        raise ValueError(f"num_special_tokens must be an int in 1..64, got {num_special!r}")
    return [SPECIAL_TOKEN_TEMPLATE.format(i) for i in range(num_special)]


def add_special_tokens(tokenizer, num_special: int = 1) -> list[int]:
    """Add the GEM token(s) to ``tokenizer`` (those it lacks) and return their ids."""
    tokens = special_token_strings(num_special)
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    return tokenizer.convert_tokens_to_ids(tokens)


def register_special_tokens(model, tokenizer, num_special: int = 1) -> list[int]:
    """Add the GEM token(s) to ``tokenizer`` and grow ``model``'s embeddings; return their ids.

    New rows start at the mean input embedding (a neutral point the optimiser can move from).
    Tokens already present (a trained model) are reused untouched.
    """
    ids = add_special_tokens(tokenizer, num_special)
    embeddings = model.get_input_embeddings()
    if max(ids) >= embeddings.weight.shape[0]:
        old_rows = embeddings.weight.shape[0]
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            weight = model.get_input_embeddings().weight
            weight[old_rows:] = weight[:old_rows].mean(dim=0, keepdim=True)
    return ids


def bos_prefix(tokenizer) -> list[int]:
    """``[bos_id]`` when the tokenizer itself starts texts with a BOS token (Gemma), else ``[]`` (SmolLM2).

    Every sequence the model sees (embedded texts, prompts, training rows) starts with it, as in pre-training.
    """
    bos = tokenizer.bos_token_id
    probe = tokenizer("a").input_ids
    return [bos] if bos is not None and probe and probe[0] == bos else []


def build_gem_attention_mask(
    prefix_lengths: Sequence[int] | torch.Tensor,
    num_special: int,
    attention_mask: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    sink_tokens: int = 0,
) -> torch.Tensor:
    """Float additive 4D mask for rows laid out as ``prefix <special x num_special> suffix [pad]``.

    Rules (on top of causality): suffix tokens cannot see the prefix; special tokens see the prefix
    and themselves but not each other; padding (``attention_mask == 0``) is seen by no one.
    A row with ``prefix_length < 0`` is a plain causal row (no special tokens). The first ``sink_tokens``
    tokens (a BOS, which carries no content) stay visible to the suffix.

    Args:
        prefix_lengths: (B,) number of prefix tokens in each row.
        num_special: special tokens that follow the prefix.
        attention_mask: (B, T) 1 for real tokens, 0 for padding (right padding).
    Returns:
        (B, 1, T, T) tensor: 0 where attention is allowed, dtype's min where it is not.
    """
    bsz, seq_len = attention_mask.shape
    device = attention_mask.device
    prefix = torch.as_tensor(prefix_lengths, device=device).view(bsz, 1, 1)  # (B,1,1)
    q = torch.arange(seq_len, device=device).view(1, seq_len, 1)  # query positions
    k = torch.arange(seq_len, device=device).view(1, 1, seq_len)  # key positions
    allowed = (k <= q).expand(bsz, seq_len, seq_len)  # causal
    has_special = prefix >= 0
    special_end = prefix + num_special
    q_is_special = (q >= prefix) & (q < special_end) & has_special
    k_is_special = (k >= prefix) & (k < special_end) & has_special
    q_is_suffix = (q >= special_end) & has_special
    k_is_prefix = (k >= sink_tokens) & (k < prefix) & has_special
    allowed = allowed & ~(q_is_suffix & k_is_prefix)  # suffix cannot see prefix
    allowed = allowed & ~(q_is_special & k_is_special & (q != k))  # specials cannot see each other
    real = attention_mask.bool()
    allowed = allowed & real.view(bsz, 1, seq_len) & real.view(bsz, seq_len, 1)  # padding neither seen nor seeing
    # A padding query row would be all -inf (NaN in softmax): let it see itself only.
    allowed = allowed | torch.eye(seq_len, dtype=torch.bool, device=device).unsqueeze(0)
    mask = torch.zeros(bsz, seq_len, seq_len, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def append_special_tokens(token_ids: list[int], special_ids: Sequence[int]) -> list[int]:
    """Inference layout: the text's tokens, then the special token(s)."""
    return list(token_ids) + list(special_ids)
