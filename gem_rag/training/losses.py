"""Losses: next-token prediction with logits only where labels exist, and symmetric InfoNCE.

Example:
    >>> loss = lm_loss(hidden, labels, lm_head)             # hidden (B, T, H), labels (B, T)
    >>> loss = info_nce(query_vecs, positive_vecs, log_scale)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from gem_rag.training.batches import IGNORE


def _chunk_ce(hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight).float()  # (n, V): only the positions that carry a loss
    return F.cross_entropy(logits, targets, reduction="sum")


def lm_loss(hidden: torch.Tensor, labels: torch.Tensor, lm_head: torch.nn.Module, chunk: int = 4096) -> torch.Tensor:
    """Mean next-token cross-entropy, computing the (49k-wide) logits only at labelled positions.

    The logits are made ``chunk`` positions at a time and recomputed in the backward pass, so their
    memory stays at one chunk however long the batch is.
    """
    keep = labels != IGNORE
    selected, targets = hidden[keep], labels[keep]  # (n, H), (n,)
    if targets.numel() == 0:
        return hidden.sum() * 0.0
    weight = lm_head.weight
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), chunk):
        piece, piece_targets = selected[start:start + chunk], targets[start:start + chunk]
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_ce, piece, piece_targets, weight, use_reentrant=False)
        else:
            total = total + _chunk_ce(piece, piece_targets, weight)
    return total / targets.numel()


def info_nce(queries: torch.Tensor, positives: torch.Tensor, log_scale: torch.Tensor, max_log_scale: float) -> torch.Tensor:
    """Symmetric InfoNCE over in-batch negatives; inputs (B, H) are L2-normalised here."""
    q = F.normalize(queries.float(), dim=-1)
    p = F.normalize(positives.float(), dim=-1)
    scale = log_scale.clamp(max=max_log_scale).exp()
    scores = scale * q @ p.T  # (B, B)
    target = torch.arange(q.shape[0], device=q.device)
    return 0.5 * (F.cross_entropy(scores, target) + F.cross_entropy(scores.T, target))
