"""GEM artefacts: the small file set that turns a base model into a trained GEM model.

A folder holding ``gem_card.json`` (base model, recipe, data, steps, seed, evaluation figures) and
``gem_weights.safetensors`` with:

- ``special_embeddings``: (num_special, hidden) input-embedding rows of the GEM token(s);
- for each adapted linear layer ``<module>``: ``<module>.lora_A`` (r, in) and ``<module>.lora_B``
  (out, r), merged as ``W += (alpha / r) * B @ A``; or ``<module>.delta`` (out, in), added to ``W``.

Applying it needs neither peft nor the training extra.

Example:
    >>> card = apply_artefact(hf_model, tokenizer, "gem_rag/weights/smollm2-135m-gem")
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from gem_rag.core.gem import register_special_tokens

logger = logging.getLogger(__name__)

CARD_FILE = "gem_card.json"
WEIGHTS_FILE = "gem_weights.safetensors"
SHIPPED_ARTEFACT = Path(__file__).resolve().parent.parent / "weights" / "smollm2-135m-gem"


class ArtefactError(ValueError):
    """A GEM artefact is missing, corrupt, or made for another base model."""


def read_card(path: str | Path) -> dict:
    """The card of the artefact at ``path``."""
    card_path = Path(path) / CARD_FILE
    if not card_path.is_file():
        raise ArtefactError(f"{path} is not a GEM artefact: {CARD_FILE} is missing")
    try:
        return json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise ArtefactError(f"{card_path} is not valid JSON: {err}") from None


def apply_artefact(model, tokenizer, path: str | Path) -> dict:
    """Register the artefact's special tokens and merge its weights into ``model``; return its card."""
    from safetensors.torch import load_file

    path = Path(path)
    card = read_card(path)
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ArtefactError(f"{path} has a card but no {WEIGHTS_FILE}")
    tensors = load_file(str(weights_path))
    num_special = int(card.get("num_special_tokens", 1))
    ids = register_special_tokens(model, tokenizer, num_special)
    hidden = model.get_input_embeddings().weight.shape[1]
    special = tensors.pop("special_embeddings", None)
    if special is None or tuple(special.shape) != (num_special, hidden):
        raise ArtefactError(
            f"{weights_path}: special_embeddings should be ({num_special}, {hidden}) for this model, "
            f"got {None if special is None else tuple(special.shape)}: the artefact was made for another base model"
        )
    modules = dict(model.named_modules())
    scale = float(card.get("lora", {}).get("alpha", 1.0)) / max(1, int(card.get("lora", {}).get("r", 1)))
    with torch.no_grad():
        model.get_input_embeddings().weight[ids] = special.to(model.dtype)
        for key in sorted(tensors):
            name, kind = key.rsplit(".", 1)
            if kind == "lora_B":
                continue
            layer = modules.get(name)
            if layer is None or not hasattr(layer, "weight"):
                raise ArtefactError(f"{weights_path}: module {name!r} does not exist in this base model")
            if kind == "lora_A":
                update = scale * (tensors[f"{name}.lora_B"].float() @ tensors[key].float())
            elif kind == "delta":
                update = tensors[key].float()
            else:
                raise ArtefactError(f"{weights_path}: unknown tensor kind {kind!r} in {key!r}")
            if update.shape != layer.weight.shape:
                raise ArtefactError(f"{weights_path}: {key} has shape {tuple(update.shape)}, layer is {tuple(layer.weight.shape)}")
            layer.weight += update.to(layer.weight.dtype)
    logger.info("Applied GEM artefact %s (%d tensors)", path, len(tensors))
    return card
