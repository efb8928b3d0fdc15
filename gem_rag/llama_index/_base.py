"""What both LlamaIndex adapters share: the GemModel they serve (each declares ``_model`` as its private attribute)."""

from __future__ import annotations

from gem_rag import GemModel


class GemModelAccess:
    """The ``model`` property of an adapter that holds its GemModel in the pydantic private attribute ``_model``."""

    _model: GemModel

    @property
    def model(self) -> GemModel:
        """The GemModel serving this adapter (the shared default unless one was given)."""
        return self._model
