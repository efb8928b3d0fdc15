"""LangChain ``Embeddings`` served by the GemModel (documents and queries embedded by the generator's own weights)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import Field

from gem_rag.langchain._base import ADAPTER_CONFIG, GemModelField


def _check_list_of_str(texts: object) -> list[str]:
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
    return list(texts)


class GemEmbeddings(GemModelField, Embeddings):
    """Embeds with the GEM token of a GemModel; queries get the model's query instruction, documents do not.

    The async methods (``aembed_documents``/``aembed_query``) are LangChain's thread-executor versions: embedding
    runs in a worker thread and never blocks the event loop.

    Example:
        >>> from gem_rag.langchain import GemEmbeddings
        >>> embeddings = GemEmbeddings()                     # the shared default model
        >>> vectors = embeddings.embed_documents(["Python lists are mutable.", "Tuples are not."])
        >>> len(vectors), len(vectors[0])
        (2, 576)
        >>> query_vector = embeddings.embed_query("Which sequence type is mutable?")
    """

    model_config = ADAPTER_CONFIG

    batch_size: int = Field(default=32, ge=1)
    """Most texts embedded in one forward pass (the model also caps padded tokens per batch)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (no query instruction) -> one list of Python floats per text; ``[]`` -> ``[]``."""
        items = _check_list_of_str(texts)
        if not items:
            return []
        return self.model.embed(items, kind="document", batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query (with the model's query instruction) -> a list of Python floats."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.model.embed(text, kind="query").tolist()
