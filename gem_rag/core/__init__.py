"""Core: the model that embeds and generates, GEM mechanics, loading."""
