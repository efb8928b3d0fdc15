"""GEM artefacts: the small file set that turns a base model into a trained GEM model.

A folder holding ``gem_card.json`` (base model, recipe, data, steps, seed, evaluation figures) and
``gem_weights.safetensors`` with:

- ``special_embeddings``: (num_special, hidden) input-embedding rows of the GEM token(s);
- for each adapted linear layer ``<module>``: ``<module>.lora_A`` (r, in) and ``<module>.lora_B``
  (out, r), the update ``(alpha / r) * B @ A``; or ``<module>.delta`` (out, in).

The card's ``adapter_scope`` says where the updates act:

- ``"all"`` (default): merged into the weights (``W += update``); every pass, generation included, uses them;
- ``"embedding"``: kept beside the weights and switched on only for embedding passes (the passes that end
  with the GEM token), so generation is exactly the base model's. One set of base weights still serves both
  jobs; the switch costs two rank-r products per adapted layer while embedding and nothing while generating.

Applying it needs neither peft nor the training extra.

Example:
    >>> card, embedding_adapter = apply_artefact(hf_model, tokenizer, "gem_rag/weights/smollm2-135m-gem")
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from pathlib import Path
from collections.abc import Iterator

import torch

from gem_rag.core.gem import register_special_tokens

logger = logging.getLogger(__name__)

CARD_FILE = "gem_card.json"
WEIGHTS_FILE = "gem_weights.safetensors"
SHIPPED_ARTEFACT = Path(__file__).resolve().parent.parent / "weights" / "smollm2-135m-gem"
ADAPTER_SCOPES = ("all", "embedding")


class ArtefactError(ValueError):
    """A GEM artefact is missing, corrupt, or made for another base model."""


def resolve_gem_weights(gem_weights: str | Path | None, name_or_path: object) -> Path | None:
    """The artefact folder to apply: ``"auto"`` means the shipped one for the default model (``name_or_path`` None)
    and none for any other model; ``None`` means none; anything else is the folder itself."""
    if gem_weights == "auto":
        shipped = name_or_path is None and (SHIPPED_ARTEFACT / CARD_FILE).is_file()
        return SHIPPED_ARTEFACT if shipped else None
    return None if gem_weights is None else Path(gem_weights)


def read_card(path: str | Path) -> dict:
    """The card of the artefact at ``path``."""
    card_path = Path(path) / CARD_FILE
    if not card_path.is_file():
        raise ArtefactError(f"{path} is not a GEM artefact: {CARD_FILE} is missing")
    try:
        return json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise ArtefactError(f"{card_path} is not valid JSON: {err}") from None


class EmbeddingAdapter:
    """The on/off switch of an artefact's ``"embedding"``-scoped updates (off unless inside :meth:`active`)."""

    def __init__(self) -> None:
        self.is_active = False

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Switch the updates on for the passes run inside (callers hold the model's lock)."""
        previous, self.is_active = self.is_active, True
        try:
            yield
        finally:
            self.is_active = previous


class SwitchedLinear(torch.nn.Module):
    """``base(x)``, plus the low-rank update ``scale * B @ A x`` while its :class:`EmbeddingAdapter` is active.

    A: (r, in), B: (out, r).
    """

    def __init__(self, base: torch.nn.Linear, adapter: EmbeddingAdapter, lora_a: torch.Tensor, lora_b: torch.Tensor,
                 scale: float):
        super().__init__()
        self.base, self.adapter, self.scale = base, adapter, scale
        self.lora_A = torch.nn.Parameter(lora_a, requires_grad=False)
        self.lora_B = torch.nn.Parameter(lora_b, requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in) -> (..., out)
        y = self.base(x)
        if not self.adapter.is_active:
            return y
        return y + self.scale * torch.nn.functional.linear(torch.nn.functional.linear(x, self.lora_A), self.lora_B)


class SwitchedModule(torch.nn.Module):
    """A layer with a dense weight update (a norm, or a linear layer given a ``delta``): runs ``adapted``, a copy
    with the update added, while the adapter is active."""

    def __init__(self, base: torch.nn.Module, adapted: torch.nn.Module, adapter: EmbeddingAdapter):
        super().__init__()
        self.base, self.adapted, self.adapter = base, adapted, adapter

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, *args, **kwargs):
        return (self.adapted if self.adapter.is_active else self.base)(*args, **kwargs)


def _apply_update(model, modules: dict, tensors: dict, key: str, weights_path: Path, scale: float,
                  adapter: EmbeddingAdapter | None) -> None:
    """Apply one weight update of the artefact (``<module>.lora_A`` with its ``lora_B``, or ``<module>.delta``):
    merged into the layer, or behind a switch that only embedding passes turn on (``adapter``)."""
    name, kind = key.rsplit(".", 1)
    layer = modules.get(name)
    if layer is None or not isinstance(getattr(layer, "weight", None), torch.Tensor):
        raise ArtefactError(f"{weights_path}: module {name!r} does not exist in this base model")
    if kind == "lora_A":
        lora_a, lora_b = tensors[key].float(), tensors[f"{name}.lora_B"].float()
        shape = (lora_b.shape[0], lora_a.shape[1])
    elif kind == "delta":
        delta = tensors[key].float()
        shape = tuple(delta.shape)
    else:
        raise ArtefactError(f"{weights_path}: unknown tensor kind {kind!r} in {key!r}")
    if tuple(shape) != tuple(layer.weight.shape):
        raise ArtefactError(f"{weights_path}: {key} makes an update of shape {tuple(shape)}, layer is {tuple(layer.weight.shape)}")
    if kind == "lora_A" and adapter is not None:
        switched: torch.nn.Module = SwitchedLinear(layer, adapter, lora_a, lora_b, scale)
    else:
        update = scale * (lora_b @ lora_a) if kind == "lora_A" else delta
        if adapter is None:  # merged: every pass uses the update
            layer.weight += update.to(layer.weight.dtype)
            return
        adapted = copy.deepcopy(layer)
        adapted.weight += update.to(layer.weight.dtype)
        switched = SwitchedModule(layer, adapted, adapter)
    parent_name, _, child = name.rpartition(".")
    setattr(modules[parent_name] if parent_name else model, child, switched)


def apply_artefact(model, tokenizer, path: str | Path) -> tuple[dict, EmbeddingAdapter | None]:
    """Register the artefact's special tokens and apply its weight updates to ``model``.

    Returns the card and, for ``"adapter_scope": "embedding"``, the switch embedding passes turn on
    (``None`` when the updates were merged).
    """
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
    scope = card.get("adapter_scope", "all")
    if scope not in ADAPTER_SCOPES:
        raise ArtefactError(f"{path / CARD_FILE}: adapter_scope must be one of {ADAPTER_SCOPES}, got {scope!r}")
    adapter = EmbeddingAdapter() if scope == "embedding" else None
    modules = dict(model.named_modules())
    scale = float(card.get("lora", {}).get("alpha", 1.0)) / max(1, int(card.get("lora", {}).get("r", 1)))
    with torch.no_grad():
        model.get_input_embeddings().weight[ids] = special.to(model.dtype)
        for key in sorted(tensors):
            if not key.endswith(".lora_B"):  # read with its lora_A
                _apply_update(model, modules, tensors, key, weights_path, scale, adapter)
    logger.info("Applied GEM artefact %s (%d tensors, adapter scope %s)", path, len(tensors), scope)
    return card, adapter
