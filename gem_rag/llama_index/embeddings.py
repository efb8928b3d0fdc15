"""LlamaIndex ``BaseEmbedding`` served by the GemModel (documents and queries embedded by the generator's weights)."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import ConfigDict, PrivateAttr

from gem_rag import GemModel, resolve_model
from gem_rag.llama_index._base import GemModelAccess


class GemEmbedding(GemModelAccess, BaseEmbedding):
    """Embeds with the GEM token of a GemModel; queries get the model's query instruction, texts do not.

    Each batch LlamaIndex hands over (``embed_batch_size`` texts) is embedded in one batched call; the async
    methods run in a worker thread, so they never block the event loop.

    Example:
        >>> from gem_rag.llama_index import GemEmbedding
        >>> embed_model = GemEmbedding()                       # the shared default model
        >>> len(embed_model.get_text_embedding("Python lists are mutable."))
        576
        >>> vectors = embed_model.get_text_embedding_batch(["first", "second"])
        >>> query_vector = embed_model.get_query_embedding("Which sequence type is mutable?")
    """

    model_config = ConfigDict(extra="forbid")
    _model: GemModel = PrivateAttr()

    def __init__(self, model: GemModel | None = None, *, embed_batch_size: int = 64, **kwargs: Any) -> None:
        """``model``: a GemModel, or ``None`` for the process-wide shared default."""
        resolved = resolve_model(model)
        super().__init__(model_name=resolved.name, embed_batch_size=embed_batch_size, **kwargs)
        self._model = resolved

    @classmethod
    def class_name(cls) -> str:
        return "GemEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._model.embed(_check_str(query, "query"), kind="query").tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._model.embed(_check_str(text, "text"), kind="document").tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not isinstance(texts, list):
            raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
        return self._model.embed(texts, kind="document", batch_size=self.embed_batch_size).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def _check_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value
