"""LangChain backend: embeddings, a completion LLM and a chat model, all served by one shared GemModel.

Example:
    >>> from gem_rag.langchain import GemChatModel, GemEmbeddings
    >>> embeddings, chat = GemEmbeddings(), GemChatModel(max_tokens=64)
    >>> embeddings.model is chat.model          # one set of weights in memory
    True
    >>> chat.invoke("Say hi").content
"""

try:
    import langchain_core  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('gem_rag.langchain needs langchain-core: pip install "gem-rag[langchain]"') from error

from gem_rag.langchain.chat_models import GemChatModel
from gem_rag.langchain.embeddings import GemEmbeddings
from gem_rag.langchain.llms import GemLLM

__all__ = ["GemChatModel", "GemEmbeddings", "GemLLM"]
