"""The process-wide default GemModel: loaded lazily, once, and shared by every adapter.

Example:
    >>> from gem_rag import get_default_model
    >>> get_default_model() is get_default_model()
    True
"""

from __future__ import annotations

import os
import threading

from gem_rag.core.model import GemModel

_default_model: GemModel | None = None
_default_lock = threading.Lock()


def get_default_model() -> GemModel:
    """The shared default model, loading it on first use (thread-safe; a failed load leaves nothing behind).

    ``$GEM_RAG_BACKEND`` picks its backend (``torch``, the default, or ``llamacpp``; see GemModel.from_pretrained)
    and ``$GEM_RAG_DTYPE`` its dtype, as for every ``from_pretrained`` call without one (``float32``,
    ``bfloat16``, ...; unset: bf16 where the CPU has bf16 units).
    """
    global _default_model
    with _default_lock:
        if _default_model is None:
            _default_model = GemModel.from_pretrained(backend=os.environ.get("GEM_RAG_BACKEND") or "torch")
        return _default_model


def set_default_model(model: GemModel | None) -> None:
    """Make ``model`` the shared default (``None`` forgets it, so the next use loads afresh)."""
    global _default_model
    if model is not None and not isinstance(model, GemModel):
        raise TypeError(f"set_default_model expects a GemModel or None, got {type(model).__name__}")
    with _default_lock:
        _default_model = model


def resolve_model(model: object | None) -> GemModel:
    """``model`` if it is a GemModel, the shared default if it is None; adapters call this."""
    if model is None:
        return get_default_model()
    if not isinstance(model, GemModel):
        raise TypeError(
            f"model must be a gem_rag.GemModel (e.g. GemModel.from_pretrained()) or None for the shared default, "
            f"got {type(model).__name__}"
        )
    return model
