"""What an index was built with, and the check that refuses to mix vectors of different models."""

from __future__ import annotations

import hashlib
import json

from gem_rag.rag.storage import IndexMismatchError

CHECKED_KEYS = ("model", "embedding_dim", "gem_artefact")


def artefact_id(model) -> str:
    """Id of the GEM artefact applied to ``model`` ("" for none): the card's id, else a hash of the card."""
    card = getattr(model, "card", None) or {}
    if not card:
        return ""
    for key in ("artefact_id", "id", "name"):
        if isinstance(card.get(key), str) and card[key]:
            return card[key]
    return "card-" + hashlib.sha1(json.dumps(card, sort_keys=True, default=str).encode()).hexdigest()[:12]


def embedder_manifest(embedder) -> dict:
    """Manifest fields describing ``embedder`` (a GemModel or any object with .embed and .name)."""
    dim = getattr(embedder, "embedding_dim", None)
    return {"model": getattr(embedder, "name", type(embedder).__name__), "embedding_dim": dim,
            "gem_artefact": artefact_id(embedder)}


def check_manifest(stored: dict, current: dict, where: str, fix: str = "re-index into a new folder or load it") -> None:
    """Raise :class:`IndexMismatchError` when a non-empty stored manifest disagrees with ``current``; ``fix``
    starts the message's advice (", or ... with the model it was built with" follows)."""
    for key in CHECKED_KEYS:
        if key in stored and stored[key] is not None and current.get(key) is not None and stored[key] != current[key]:
            raise IndexMismatchError(
                f"{where} was built with {key}={stored[key]!r} but this pipeline uses {key}={current[key]!r}; "
                f"vectors of different models cannot be mixed: {fix} with the model it was built with "
                f"({stored.get('model')!r}, artefact {stored.get('gem_artefact')!r})")
