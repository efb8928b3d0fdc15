"""End-to-end RAG recipes: each framework's own loaders, splitters and vector stores, with gem_rag as the one
model behind both the embeddings and the LLM. Run from the repository root, e.g.
``python -m integrations.langchain_faiss "How do I create a virtual environment?"``.
"""
