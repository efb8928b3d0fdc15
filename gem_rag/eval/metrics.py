"""Retrieval metrics (Recall@k, MRR@k, nDCG@k), SQuAD answer metrics (exact match, token F1) and the
lexical/rank helpers of the consistency metrics (token precision, containment, Spearman).

Example:
    >>> recall_at_k(["p3", "p1"], {"p1"}, k=2)
    1.0
    >>> squad_f1("the Eiffel Tower", "Eiffel tower")
    1.0
"""

from __future__ import annotations

import difflib
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence


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


# --------------------------------------------------------------------------- consistency (label-free) helpers
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have he her his i in is it its of on or she that the their them they this "
    "to was were what when where which who whom why will with".split()
)


def content_tokens(text: str) -> list[str]:
    """Lower-cased word tokens (any script, NFKC-normalised) without English stop words; all words if only
    stop words remain.

    Example:
        >>> content_tokens("The Café in Zürich")
        ['café', 'zürich']
    """
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    content = [w for w in words if w not in _STOPWORDS]
    return content or words


def token_precision(answer: str, passage: str) -> float:
    """Share of the answer's content tokens (with multiplicity) that occur in ``passage``; 0.0 for an empty answer.

    Example:
        >>> token_precision("Denver Broncos won", "The Denver Broncos beat the Panthers")
        0.6666666666666666
    """
    answer_counts = Counter(content_tokens(answer))
    if not answer_counts:
        return 0.0
    passage_counts = Counter(_WORD.findall(unicodedata.normalize("NFKC", passage).casefold()))
    overlap = sum((answer_counts & passage_counts).values())
    return overlap / sum(answer_counts.values())


def longest_common_run(answer: str, passage: str) -> int:
    """Length in words of the longest run of consecutive answer words found in the passage (copy evidence)."""
    a = _WORD.findall(unicodedata.normalize("NFKC", answer).casefold())
    p = _WORD.findall(unicodedata.normalize("NFKC", passage).casefold())
    if not a or not p:
        return 0
    match = difflib.SequenceMatcher(None, a, p, autojunk=False).find_longest_match(0, len(a), 0, len(p))
    return match.size


def answer_contained(answer: str, passage: str) -> bool:
    """True if the SQuAD-normalised answer occurs as whole words in the normalised passage (False if empty).

    Example:
        >>> answer_contained("the Broncos", "Denver Broncos won.")
        True
    """
    needle = normalize_answer(unicodedata.normalize("NFKC", answer))
    if not needle:
        return False
    haystack = normalize_answer(unicodedata.normalize("NFKC", passage))
    return f" {needle} " in f" {haystack} "


def same_group_auc(vectors, groups: Sequence[str], strata: Sequence[str] | None = None) -> float | None:
    """P(cosine of a same-group pair > cosine of a different-group pair), e.g. passages of one document.

    ``vectors``: (N, D) array or tensor; only pairs within one stratum count (e.g. one corpus, so that
    telling the Linux docs from Wikipedia earns nothing). Ties count half. None when a side has no pairs.

    Example:
        >>> same_group_auc([[1, 0], [0.9, 0.1], [0, 1]], ["a", "a", "b"])
        1.0
    """
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-12)
    cos = v @ v.T
    group, stratum = np.asarray(groups), np.asarray(strata if strata is not None else [""] * len(groups))
    upper = np.triu(np.ones_like(cos, dtype=bool), k=1) & (stratum[:, None] == stratum[None, :])
    same = cos[upper & (group[:, None] == group[None, :])]
    different = np.sort(cos[upper & (group[:, None] != group[None, :])])
    if not len(same) or not len(different):
        return None
    below = np.searchsorted(different, same, side="left")
    ties = np.searchsorted(different, same, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(same) * len(different)))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when undefined (< 2 items or a constant side).

    Example:
        >>> spearman([0.9, 0.5, 0.1], [3, 2, 1])
        1.0
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)
