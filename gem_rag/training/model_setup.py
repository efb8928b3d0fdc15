"""The trainable GEM model: base LLM + special-token rows (own parameter) + LoRA (peft) or full fine-tuning.

Also writes the artefact (:mod:`gem_rag.core.artefact` format) from the trained state.

Example:
    >>> trainable = TrainableGem.load(cfg)
    >>> vectors = trainable.embed_ids(input_ids, attention)        # (B, hidden) special-token states
    >>> trainable.export("out/artefact", card)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from gem_rag.core import artefact as artefacts
from gem_rag.core.gem import bos_prefix, build_gem_attention_mask, register_special_tokens
from gem_rag.core.loading import resolve_model_folder
from gem_rag.training.config import TrainConfig

logger = logging.getLogger(__name__)


class TrainableGem(torch.nn.Module):
    """Wraps the causal LM so that only the adapted weights, the GEM rows and the InfoNCE scale train."""

    def __init__(self, lm, tokenizer, special_ids: list[int], cfg: TrainConfig, base_name: str):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.base_name = base_name
        self.special_ids = special_ids
        self.parent_card: dict | None = None  # the card of the artefact this run continues (init_from)
        self.sink_tokens = len(bos_prefix(tokenizer))  # a BOS stays visible to the suffix under the GEM mask
        embeddings = lm.get_input_embeddings()
        self.special_rows = torch.nn.Parameter(embeddings.weight[special_ids].detach().clone().float())
        self.log_scale = torch.nn.Parameter(torch.tensor(float(torch.tensor(cfg.temperature_init).log())))
        lookup = torch.zeros(embeddings.weight.shape[0], dtype=torch.long)
        lookup[special_ids] = torch.arange(len(special_ids))
        self.register_buffer("special_lookup", lookup, persistent=False)
        self.register_buffer("special_id_tensor", torch.tensor(special_ids), persistent=False)
        for param in lm.parameters():
            param.requires_grad_(False)
        self.base_linear: dict[str, torch.Tensor] = {}
        if cfg.grad_checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.method == "lora":
            lm = self._add_lora(lm, cfg)
        else:
            self._unfreeze_for_full(lm)
        self.lm = lm
        embeddings.register_forward_hook(self._swap_special_rows)

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, cfg: TrainConfig) -> TrainableGem:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder, name = resolve_model_folder(cfg.base_model)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
        special_ids = register_special_tokens(lm, tokenizer, cfg.num_special_tokens)
        trainable = cls(lm, tokenizer, special_ids, cfg, name)
        if cfg.init_from:
            trainable.load_artefact(cfg.init_from)
        return trainable

    def load_artefact(self, path: str | Path) -> None:
        """Start from a LoRA artefact's factors and GEM rows (continued training); shapes must match ``cfg``."""
        from safetensors.torch import load_file

        card = artefacts.read_card(path)
        self.parent_card = card
        lora = card.get("lora") or {}
        if (lora.get("r"), lora.get("alpha")) != (self.cfg.lora_r, self.cfg.lora_alpha):
            raise ValueError(f"init_from {path}: its LoRA is r={lora.get('r')}, alpha={lora.get('alpha')}; "
                             f"pass --lora-r {lora.get('r')} --lora-alpha {lora.get('alpha')} to continue it")
        tensors = load_file(str(Path(path) / artefacts.WEIGHTS_FILE))
        special = tensors.pop("special_embeddings")
        if special.shape != self.special_rows.shape:
            raise ValueError(f"init_from {path}: {special.shape[0]} special token(s), this run has "
                             f"{self.special_rows.shape[0]} (--num-special-tokens {special.shape[0]})")
        loaded = 0
        with torch.no_grad():
            self.special_rows.copy_(special)
            for key, module in self._lora_layers():
                if f"{key}.lora_A" in tensors:
                    module.lora_A["default"].weight.copy_(tensors.pop(f"{key}.lora_A").float())
                    module.lora_B["default"].weight.copy_(tensors.pop(f"{key}.lora_B").float())
                    loaded += 1
        if tensors:
            raise ValueError(f"init_from {path}: {len(tensors)} tensors fit no LoRA layer of this run, e.g. "
                             f"{sorted(tensors)[:2]} (--lora-targets must cover the artefact's layers)")
        logger.info("Initialised from %s: %d LoRA layers and the GEM rows", path, loaded)

    @staticmethod
    def _add_lora(lm, cfg: TrainConfig):
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ImportError('LoRA training needs peft: pip install "gem-rag[train]"') from None
        config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, bias="none",
                            target_modules=list(cfg.lora_targets))
        return get_peft_model(lm, config)

    def _unfreeze_for_full(self, lm) -> None:
        """Full fine-tuning: every decoder weight trains (the tied embedding matrix stays frozen)."""
        frozen = {id(lm.get_input_embeddings().weight), id(lm.get_output_embeddings().weight)}
        for name, param in lm.named_parameters():
            if id(param) not in frozen:
                param.requires_grad_(True)
                self.base_linear[name] = param.detach().clone().cpu()

    def _swap_special_rows(self, module, inputs, output):
        ids = inputs[0]
        is_special = torch.isin(ids, self.special_id_tensor)
        if not bool(is_special.any()):
            return output
        rows = self.special_rows[self.special_lookup[ids]].to(output.dtype)  # (B, T, H)
        return torch.where(is_special.unsqueeze(-1), rows, output)

    # ------------------------------------------------------------------ pieces used by the trainer
    @property
    def decoder(self):
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return base.get_decoder()

    @property
    def lm_head(self):
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return base.get_output_embeddings()

    def trainable_groups(self) -> list[dict]:
        weights = [p for n, p in self.lm.named_parameters() if p.requires_grad]
        return [
            {"params": weights, "lr": self.cfg.lr, "weight_decay": self.cfg.weight_decay},
            {"params": [self.special_rows, self.log_scale], "lr": self.cfg.special_lr, "weight_decay": 0.0},
        ]

    def hidden(self, input_ids: torch.Tensor, attention: torch.Tensor, prefix_lengths: torch.Tensor | None = None,
               mask_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Last-layer hidden states (B, T, H); GEM mask where a row has ``prefix_length >= 0``."""
        mask: torch.Tensor = attention
        if prefix_lengths is not None and bool((prefix_lengths >= 0).any()):
            mask = build_gem_attention_mask(prefix_lengths, len(self.special_ids), attention, dtype=mask_dtype,
                                            sink_tokens=self.sink_tokens)
        return self.decoder(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state

    def embed_ids(self, input_ids: torch.Tensor, attention: torch.Tensor, mask_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(B, H) mean last-layer state of the special tokens that end each (right-padded) row."""
        n = len(self.special_ids)
        ends = attention.sum(dim=1)
        prefix = ends - n if n > 1 else None
        hidden = self.hidden(input_ids, attention, prefix, mask_dtype)
        positions = ends.unsqueeze(1) - n + torch.arange(n, device=input_ids.device)
        states = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return states.mean(dim=1)

    # ------------------------------------------------------------------ checkpoint state
    def trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t.detach().cpu() for n, t in self.state_dict().items() if n in names}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = {n for n, p in self.named_parameters() if p.requires_grad} - set(state)
        if missing:
            raise ValueError(f"checkpoint does not match this configuration: {len(missing)} tensors missing, "
                             f"e.g. {sorted(missing)[:3]}")
        self.load_state_dict(state, strict=False)

    # ------------------------------------------------------------------ artefact
    def _lora_layers(self):
        """(artefact key, peft LoRA layer) for each adapted linear layer; the key is its name in the base model."""
        prefix = "base_model.model."
        for name, module in self.lm.named_modules():
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                yield (name[len(prefix):] if name.startswith(prefix) else name), module

    def artefact_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors in the artefact format and the card's ``lora`` entry."""
        tensors = {"special_embeddings": self.special_rows.detach().float().cpu().contiguous()}
        if self.cfg.method == "lora":
            for key, module in self._lora_layers():
                tensors[f"{key}.lora_A"] = module.lora_A["default"].weight.detach().half().cpu().contiguous()
                tensors[f"{key}.lora_B"] = module.lora_B["default"].weight.detach().half().cpu().contiguous()
            return tensors, {"r": self.cfg.lora_r, "alpha": self.cfg.lora_alpha}
        rank = self.cfg.full_export_rank
        kept_energy = []
        params = dict(self.lm.named_parameters())
        for name, base in self.base_linear.items():
            delta = params[name].detach().float().cpu() - base.float()
            module = name.rsplit(".", 1)[0]
            if delta.dim() == 1:
                tensors[f"{module}.delta"] = delta.contiguous()
                continue
            u, s, v = torch.svd_lowrank(delta, q=min(rank + 8, *delta.shape), niter=4)  # randomised: fast on CPU
            u, s, v = u[:, :rank], s[:rank], v[:, :rank]
            kept_energy.append(float((s ** 2).sum() / delta.pow(2).sum().clamp(min=1e-30)))
            tensors[f"{module}.lora_B"] = (u * s).half().contiguous()
            tensors[f"{module}.lora_A"] = v.T.half().contiguous()
        energy = min(kept_energy) if kept_energy else 1.0
        return tensors, {"r": rank, "alpha": rank, "min_energy_kept": round(energy, 4)}

    def export(self, out_dir: str | Path, card: dict) -> Path:
        """Write ``gem_card.json`` + ``gem_weights.safetensors`` into ``out_dir``."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tensors, lora = self.artefact_tensors()
        card = {**card, "num_special_tokens": len(self.special_ids), "lora": lora}
        save_file(tensors, str(out_dir / artefacts.WEIGHTS_FILE))
        (out_dir / artefacts.CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        size = (out_dir / artefacts.WEIGHTS_FILE).stat().st_size
        logger.info("Wrote GEM artefact %s (%.1f MB, %d tensors)", out_dir, size / 1e6, len(tensors))
        return out_dir
