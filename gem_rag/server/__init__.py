"""HTTP server of gem_rag: the demo page, an OpenAI-compatible API and a RAG API on one shared model.

Example:
    >>> from gem_rag.server import create_app
    >>> app = create_app()          # serve with: uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from gem_rag.server.app import create_app

__all__ = ["create_app"]
