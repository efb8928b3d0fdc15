"""Training drivers: the GEM training runs (CPU levers, the GPU run with its ablations) behind the model card."""
