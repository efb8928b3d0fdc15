"""Retrieval metrics (Recall@k, MRR@k, nDCG@k) and SQuAD answer metrics (exact match, token F1).

Example:
    >>> recall_at_k(["p3", "p1"], {"p1"}, k=2)
    1.0
    >>> squad_f1("the Eiffel Tower", "Eiffel tower")
    1.0
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Collection, Sequence


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top ``k``."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """1 / rank of the first relevant id within the top ``k`` (0 if none)."""
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Binary-relevance nDCG over the top ``k``."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer (best over several)."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    return max((float(normalize_answer(prediction) == normalize_answer(g)) for g in golds), default=0.0)


def squad_f1(prediction: str, gold: str | Sequence[str]) -> float:
    """Token-overlap F1 between normalised prediction and gold (best over several gold answers)."""
    golds = [gold] if isinstance(gold, str) else list(gold)

    def f1(pred: str, ref: str) -> float:
        p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
        if not p or not r:
            return float(p == r)
        common = sum((Counter(p) & Counter(r)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(r)
        return 2 * precision * recall / (precision + recall)

    return max((f1(prediction, g) for g in golds), default=0.0)
