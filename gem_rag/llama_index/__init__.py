"""LlamaIndex backend: an embedding model and an LLM, both served by one shared GemModel.

Example:
    >>> from llama_index.core import Settings
    >>> from gem_rag.llama_index import GemEmbedding, GemLLM
    >>> Settings.embed_model, Settings.llm = GemEmbedding(), GemLLM(max_tokens=128)
    >>> Settings.embed_model.model is Settings.llm.model      # one set of weights in memory
    True
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('gem_rag.llama_index needs llama-index-core: pip install "gem-rag[llama-index]"') from error

from gem_rag.llama_index.embeddings import GemEmbedding
from gem_rag.llama_index.llms import GemLLM

__all__ = ["GemEmbedding", "GemLLM"]
