"""Consistency checks for answers produced by LangChain or LlamaIndex pipelines.

Example:
    >>> docs = retriever.invoke(question)                                   # LangChain Documents
    >>> langchain_consistency(model, question, answer, docs).label
    >>> response = query_engine.query(question)                             # LlamaIndex Response
    >>> llama_index_consistency(model, question, response).label
"""

from __future__ import annotations

from collections.abc import Sequence

from gem_rag.eval.consistency import ConsistencyReport, answer_consistency


def _langchain_document_class():
    try:
        from langchain_core.documents import Document
    except ImportError:
        raise ImportError('LangChain is not installed: pip install "gem-rag[langchain]"') from None
    return Document


def langchain_consistency(model, question: str, answer: str, documents: Sequence, *, judge: bool = False,
                          **kwargs) -> ConsistencyReport:
    """Check ``answer`` against LangChain ``documents`` in retrieval order.

    ``documents``: ``Document`` objects (e.g. ``retriever.invoke``) or ``(Document, score)`` pairs (e.g.
    ``similarity_search_with_score``; scores where higher is better). Keywords go to ``answer_consistency``.
    """
    document_class = _langchain_document_class()
    texts, scores = [], []
    for i, item in enumerate(documents):
        document, score = item if isinstance(item, tuple) else (item, None)
        if not isinstance(document, document_class):
            raise TypeError(f"documents[{i}] must be a langchain Document or (Document, score), got {type(item).__name__}")
        texts.append(document.page_content)
        scores.append(score)
    has_scores = bool(scores) and all(s is not None for s in scores)
    return answer_consistency(model, question, answer, texts, [float(s) for s in scores] if has_scores else None,
                              judge=judge, **kwargs)


def llama_index_consistency(model, question: str, answer, nodes: Sequence | None = None, *, judge: bool = False,
                            **kwargs) -> ConsistencyReport:
    """Check a LlamaIndex answer: ``answer`` is a ``Response`` (its ``source_nodes`` are used) or a string with
    ``nodes`` (``NodeWithScore`` list, retrieval order). Keywords go to ``answer_consistency``."""
    try:
        from llama_index.core.schema import NodeWithScore
    except ImportError:
        raise ImportError('LlamaIndex is not installed: pip install "gem-rag[llama-index]"') from None
    if not isinstance(answer, str):
        if nodes is None:
            nodes = getattr(answer, "source_nodes", None)
        answer = getattr(answer, "response", None) or ""
    if nodes is None:
        raise ValueError("give nodes=[NodeWithScore, ...] with a string answer (or pass a Response)")
    texts, scores = [], []
    for i, node in enumerate(nodes):
        if not isinstance(node, NodeWithScore):
            raise TypeError(f"nodes[{i}] must be a llama_index NodeWithScore, got {type(node).__name__}")
        texts.append(node.node.get_content())
        scores.append(node.score)
    has_scores = bool(scores) and all(s is not None for s in scores)
    return answer_consistency(model, question, answer, texts, [float(s) for s in scores] if has_scores else None,
                              judge=judge, **kwargs)
