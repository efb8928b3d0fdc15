"""Fusion of a dense and a BM25 ranking into one (hybrid retrieval).

Methods: ``"zscore"`` and ``"minmax"``, convex combinations of per-list normalised scores (Bruch et al. 2023,
"An Analysis of Fusion Functions for Hybrid Retrieval"), and ``"rrf"``, reciprocal rank fusion (ranks
only). The default (z-scores, dense weight 0.5) was the best setting on a development set of held-out
training-corpus passages (benchmarks/dev/fusion_dev.py, docs/rag_benchmarks/fusion_dev.json), not on the
evaluation sets.

Example:
    >>> fuse([[("a", 0.9), ("b", 0.5)], [("b", 12.0), ("c", 3.0)]], method="rrf")[0][0]
    'b'
"""

from __future__ import annotations

from collections.abc import Sequence

NORMALISATIONS = ("zscore", "minmax")
FUSION_METHODS = (*NORMALISATIONS, "rrf")
DEFAULT_FUSION = "zscore"
DEFAULT_DENSE_WEIGHT = 0.5

Ranking = Sequence[tuple[str, float]]  # (id, score) best first


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank). Best first.

    Example:
        >>> reciprocal_rank_fusion([["a", "b"], ["b", "c"]])[0][0]
        'b'
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def convex_fusion(dense: Ranking, lexical: Ranking, dense_weight: float,
                  normalisation: str = "minmax") -> list[tuple[str, float]]:
    """score(id) = w * norm(dense score) + (1 - w) * norm(BM25 score), each list normalised on its own:
    ``"minmax"`` maps it to [0, 1], ``"zscore"`` to (score - mean) / std, so a retriever whose best hit stands
    far above the rest counts for more. An id missing from one list gets that list's lowest normalised score.
    Best first.

    Example:
        >>> convex_fusion([("a", 0.9), ("b", 0.5)], [("b", 12.0), ("c", 3.0)], 0.3, "minmax")[0][0]
        'b'
    """
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be in [0, 1], got {dense_weight}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    normalised = [_normalise(ranking, normalisation) for ranking in (dense, lexical)]
    ids = dict.fromkeys(item for ranking in normalised for item in ranking)  # ties keep dense, then BM25 order
    weights = (dense_weight, 1.0 - dense_weight)
    floors = [min(r.values(), default=0.0) for r in normalised]  # the score of an id a list did not return
    scores = {item: sum(w * r.get(item, floor) for w, r, floor in zip(weights, normalised, floors)) for item in ids}
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _normalise(ranking: Ranking, normalisation: str) -> dict[str, float]:
    values = [s for _, s in ranking]
    if not values:
        return {}
    if normalisation == "minmax":
        low, span = min(values), max(values) - min(values)
        return {item: (s - low) / span if span > 0 else 1.0 for item, s in ranking}
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return {item: (s - mean) / std if std > 0 else 0.0 for item, s in ranking}


def fuse(rankings: Sequence[Ranking], *, method: str = DEFAULT_FUSION, dense_weight: float = DEFAULT_DENSE_WEIGHT,
         rrf_k: int = 60) -> list[tuple[str, float]]:
    """Fuse ``[dense ranking, BM25 ranking]`` with ``method`` (one of FUSION_METHODS). Best first."""
    if method == "rrf":
        return reciprocal_rank_fusion([[i for i, _ in r] for r in rankings], rrf_k)
    if method in NORMALISATIONS:
        dense, lexical = rankings
        return convex_fusion(dense, lexical, dense_weight, method)
    raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {method!r}")
