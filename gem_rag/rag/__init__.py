"""Reference RAG pipeline on one GEM model: ingestion, FAISS/Chroma stores, hybrid retrieval, answers
grounded in the sentences that support them, and optional document KV reuse.

Example:
    >>> from gem_rag.rag import RagPipeline
    >>> rag = RagPipeline(retrieval="hybrid")
    >>> rag.index("docs/")
    >>> rag.answer("How do I open a file?").answer
"""

from gem_rag.rag.bm25 import BM25Index
from gem_rag.rag.ingest import Chunker, Document, load_documents
from gem_rag.rag.kv import KVCache
from gem_rag.rag.fusion import FUSION_METHODS, reciprocal_rank_fusion
from gem_rag.rag.config import RETRIEVAL_MODES, RagConfig
from gem_rag.rag.pipeline import RagPipeline
from gem_rag.rag.prompt import ABSTAIN_PHRASE, AnswerPrompt
from gem_rag.rag.storage import CorruptIndexError, IndexMismatchError
from gem_rag.rag.stores import FaissStore, VectorStore
from gem_rag.rag.types import (Chunk, DoneEvent, IndexReport, RagAnswer, Reading, RetrievedChunk, SourcesEvent,
                               SupportEvent, SupportingSentence, TokenEvent)


def __getattr__(name: str):
    if name == "ChromaStore":  # chromadb is an optional extra: import it only when asked for
        from gem_rag.rag.chroma import ChromaStore

        return ChromaStore
    raise AttributeError(f"module 'gem_rag.rag' has no attribute {name!r}")


__all__ = ["ABSTAIN_PHRASE", "AnswerPrompt", "BM25Index", "Chunk", "ChromaStore", "Chunker", "CorruptIndexError",
           "Document", "FUSION_METHODS", "FaissStore", "IndexMismatchError", "IndexReport", "KVCache", "RETRIEVAL_MODES",
           "RagAnswer", "RagConfig", "RagPipeline", "Reading", "RetrievedChunk", "VectorStore", "load_documents",
           "reciprocal_rank_fusion", "DoneEvent", "SourcesEvent", "SupportEvent", "SupportingSentence", "TokenEvent"]
