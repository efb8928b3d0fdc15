"""gem_rag: a RAG backend in which one decoder LLM is both the embedder and the generator.

Example:
    >>> from gem_rag import GemModel
    >>> model = GemModel.from_pretrained()
    >>> vectors = model.embed(["first passage", "second passage"])   # (2, 576)
    >>> model.generate("Say hi", max_new_tokens=8).text
"""

import logging

from gem_rag.core.default import get_default_model, resolve_model, set_default_model
from gem_rag.core.generation import GenerationResult
from gem_rag.core.loading import ModelNotFoundError
from gem_rag.core.model import GemModel, TokenStream

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["GemModel", "GenerationResult", "ModelNotFoundError", "TokenStream", "get_default_model",
           "resolve_model", "set_default_model"]
__version__ = "0.1.0"
