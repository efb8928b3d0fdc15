"""GEM post-training: turn a decoder LLM into an embedder (special-token embedding) without losing its answers.

Two phases (arXiv 2506.04344): mixed next-token prediction with the GEM attention mask, then contrastive
training of the special-token embedding. The result is a small artefact (LoRA factors + special-token rows,
see :mod:`gem_rag.core.artefact`) that :meth:`gem_rag.GemModel.from_pretrained` applies.

Example:
    >>> from gem_rag.training import TrainConfig, prepare_rows, train
    >>> rows = prepare_rows(["docs/"], "/tmp/rows.jsonl.gz")
    >>> train(TrainConfig(rows="/tmp/rows.jsonl.gz", out_dir="/tmp/gem-run"))
"""

from gem_rag.training.config import TrainConfig
from gem_rag.training.data import prepare_rows
from gem_rag.training.trainer import train

__all__ = ["TrainConfig", "prepare_rows", "train"]
