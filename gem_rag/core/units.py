"""Unit embeddings in the text's own forward pass: one GEM token per unit (a sentence, a code block) appended
after the text's own GEM token(s), each placed at the position right after its unit and allowed to attend
only to that unit's tokens (and a BOS sink).

The text's tokens and its own GEM token never attend to the appended ones, so the text's embedding is exactly
the one :meth:`GemModel.embed` gives, and every unit costs one extra token instead of a forward pass of its
own. The unit tokens read the unit's hidden states, which have seen the text before the unit: a sentence
starting with "It" is embedded knowing what "it" is.

``scope="prefix"`` lets a unit token attend to everything before its unit's end instead (the embedding of
the text up to that unit); ``"unit"`` is the default.

Example:
    >>> layout = unit_layout(text_ids=[5, 6, 7, 8], unit_spans=[(0, 2), (2, 4)], n_special=1, bos=0)
    >>> layout.positions       # text 0..3, its GEM token 4, unit GEM tokens after their units: 2, 4
    [0, 1, 2, 3, 4, 2, 4]
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import torch

SCOPES = ("unit", "prefix")


@dataclass
class UnitLayout:
    """One row: ``length`` tokens; ``positions`` their position ids; ``keys[q]`` the (start, end) key ranges a
    unit token ``q`` may see (rows before ``first_unit`` follow the ordinary causal rule)."""

    length: int
    positions: list[int]
    first_unit: int
    keys: list[list[tuple[int, int]]]  # per unit token: allowed key index ranges
    unit_slots: list[list[int]]  # per unit: the indices of its GEM token(s); [] for a unit truncated away


def char_to_token_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans -> token index spans [first, end) over ``offsets`` (a tokenizer's offset mapping);
    a span past the last token becomes (n, n) (empty: it was truncated away)."""
    out = []
    n = len(offsets)
    for start, end in spans:
        first = next((j for j in range(n) if offsets[j][1] > start), n)
        last = first
        while last < n and offsets[last][0] < end:
            last += 1
        out.append((first, last))
    return out


def unit_layout(text_ids: Sequence[int], unit_spans: Sequence[tuple[int, int]], n_special: int, bos: int,
                scope: str = "unit") -> UnitLayout:
    """The row ``bos + text_ids + GEM x n_special + (GEM x n_special per unit)``; ``unit_spans`` are token
    spans into ``text_ids``, ``bos`` the number of BOS tokens before them."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    text_end = bos + len(text_ids)
    positions = list(range(text_end + n_special))
    keys: list[list[tuple[int, int]]] = []
    slots: list[list[int]] = []
    for first, end in unit_spans:
        slot: list[int] = []
        for j in range(n_special if end > first else 0):
            slot.append(len(positions))
            positions.append(bos + end + j)
            keys.append([(0, bos), (bos + first if scope == "unit" else 0, bos + end)])
        slots.append(slot)
    return UnitLayout(len(positions), positions, text_end + n_special, keys, slots)


def unit_mask(layouts: Sequence[UnitLayout], n_special: int, bos: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, 1, T, T) float additive mask for right-padded rows of ``layouts``: causal for the text rows (GEM
    tokens of the text not seeing each other), each unit token only its key ranges and itself."""
    width = max(layout.length for layout in layouts)
    allowed = torch.zeros(len(layouts), width, width, dtype=torch.bool)
    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    for b, layout in enumerate(layouts):
        head = layout.first_unit
        allowed[b, :head, :head] = causal[:head, :head]
        text_end = head - n_special
        for i in range(n_special):  # the text's GEM tokens see the text, not each other
            allowed[b, text_end + i, text_end: head] = False
            allowed[b, text_end + i, text_end + i] = True
        for i, ranges in enumerate(layout.keys):
            q = head + i
            for start, end in ranges:
                allowed[b, q, start:end] = True
            allowed[b, q, q] = True
        for q in range(layout.length, width):  # padding rows see themselves only (no all-masked softmax row)
            allowed[b, q, q] = True
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)
