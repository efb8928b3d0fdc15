"""A GEM artefact's low-rank updates as a llama.cpp LoRA adapter (GGUF), converted once and cached.

The artefact stores, per adapted linear layer ``model.layers.N.<proj>``, ``lora_A`` (r, in) and ``lora_B``
(out, r) in transformers' layout (see gem_rag.core.artefact). llama.cpp names the same weight
``blk.N.<tensor>.weight`` and reads an adapter's ``<name>.lora_a`` / ``<name>.lora_b`` with the update
``(alpha / r) * B @ A``. Two things differ from transformers:

- names, mapped by :data:`TENSOR_NAMES`;
- the rows of the query and key projections: GGUF stores them permuted for its rotary layout (each head's
  two halves interleaved), so ``lora_B``'s rows are permuted the same way (permuting B's rows permutes the
  rows of ``B @ A``).

Only ``"embedding"``-scoped LoRA artefacts need this (the updates are switched on for embedding passes only);
merged or dense updates would need a re-quantised model and are refused with a clear error.

Example:
    >>> path = lora_gguf(SHIPPED_ARTEFACT, n_head=9, n_head_kv=3)   # ~/.cache/gem_rag/llamacpp/<hash>/lora.gguf
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from gem_rag.core.artefact import CARD_FILE, WEIGHTS_FILE, ArtefactError, read_card
from gem_rag.core.loading import cache_root

logger = logging.getLogger(__name__)

TENSOR_NAMES = {  # transformers module (after model.layers.N.) -> llama.cpp tensor (after blk.N.)
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
CONVERSION_VERSION = 1  # part of the cache key: bump when the conversion changes


def rotary_permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """(out, ...) rows of a query/key projection in transformers' order -> GGUF's order: within each of
    ``n_head`` heads, the first and second halves interleaved (row i of half 0, row i of half 1, ...)."""
    head_dim = rows.shape[0] // n_head
    return rows.reshape(n_head, 2, head_dim // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _adapter_tensors(tensors: dict[str, np.ndarray], n_head: int, n_head_kv: int) -> dict[str, np.ndarray]:
    out = {}
    for key, value in tensors.items():
        module, kind = key.rsplit(".", 1)
        prefix, _, layer_module = module.partition(".layers.")
        layer, _, proj = layer_module.partition(".")
        if kind not in ("lora_A", "lora_B") or not layer.isdigit() or proj not in TENSOR_NAMES:
            raise ArtefactError(f"{key}: the llama.cpp backend takes LoRA updates of {sorted(TENSOR_NAMES)} only")
        if kind == "lora_B" and proj in ("self_attn.q_proj", "self_attn.k_proj"):
            value = rotary_permute(value, n_head if proj == "self_attn.q_proj" else n_head_kv)
        name = f"blk.{layer}.{TENSOR_NAMES[proj]}.weight.lora_{kind[-1].lower()}"
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def lora_gguf(artefact: Path, *, n_head: int, n_head_kv: int) -> Path:
    """The artefact's embedding-scoped LoRA as a GGUF adapter file, written once under the cache folder
    (keyed by the artefact's bytes and the conversion version) and reused after."""
    from safetensors.numpy import load_file

    card = read_card(artefact)
    if card.get("adapter_scope", "all") != "embedding":
        raise ArtefactError(f"{artefact}: the llama.cpp backend runs artefacts with adapter_scope 'embedding' only "
                            f"(this one merges its updates into every pass); use backend='torch'")
    weights = artefact / WEIGHTS_FILE
    digest = hashlib.sha256((artefact / CARD_FILE).read_bytes() + weights.read_bytes()).hexdigest()[:16]
    target = cache_root() / "llamacpp" / f"{digest}-v{CONVERSION_VERSION}" / "lora.gguf"
    if target.is_file():
        return target
    try:
        import gguf
    except ImportError:
        raise ImportError('the llama.cpp backend needs the gguf package: pip install "gem-rag[llamacpp]"') from None
    tensors = load_file(str(weights))
    tensors.pop("special_embeddings", None)
    lora = card.get("lora", {})
    alpha = float(lora.get("alpha", 1.0))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix="lora.", suffix=".gguf.tmp", dir=target.parent)
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha)
        for name, value in sorted(_adapter_tensors(tensors, n_head, n_head_kv).items()):
            writer.add_tensor(name, value)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, target)  # atomic: a reader sees the whole file or none
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("Converted the GEM adapter of %s to %s", artefact, target)
    return target
