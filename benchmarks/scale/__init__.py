"""Scale benchmarks: how cost grows with the corpus."""
