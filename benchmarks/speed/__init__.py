"""Speed benchmarks: latency, throughput and memory of the pipeline and its backends."""
