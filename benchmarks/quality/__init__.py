"""Quality benchmarks on evaluation-only data (SQuAD, Python FAQ, Lee): reported, never tuned on."""
