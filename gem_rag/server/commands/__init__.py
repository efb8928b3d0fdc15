"""The ``gem-rag`` subcommands of the app: demo, ask, serve, index (one module each)."""
