"""Benchmarks of gem_rag, run as modules: ``python -m benchmarks.<room>.<name>`` (rooms: speed, quality, dev, scale,
training, reports); ``benchmarks.common`` holds what they share."""
