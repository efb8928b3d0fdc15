"""The GEM training loop: phase 1 (mixed NTP under the GEM mask), phase 2 (contrastive), export.

Cosine schedule with warm-up per phase, gradient accumulation, bf16 autocast, a checkpoint every
``checkpoint_every`` steps (``resume=True`` continues from it), held-out validation before and after.

Example:
    >>> card = train(TrainConfig(rows="rows.jsonl.gz", out_dir="run", ntp_steps=100, contrastive_steps=500))
    >>> card["validation"]["final"]["ict_recall_at_1"]
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch

from gem_rag.core.model import default_dtype
from gem_rag.eval.metrics import same_group_auc
from gem_rag.training.batches import RowSampler, pad_rows
from gem_rag.training.config import TrainConfig
from gem_rag.training.data import ict_pairs, read_rows
from gem_rag.training.losses import info_nce, lm_loss
from gem_rag.training.model_setup import TrainableGem

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
ARTEFACT_DIR = "artefact"


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by :meth:`Trainer.save_checkpoint`, loaded with ``weights_only=True`` (no
    arbitrary Python objects are unpickled); ValueError naming the file when it holds anything else."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--resume: {path} holds objects other than tensors and plain values, so it is not "
                         f"loaded ({first}); start the run again without --resume") from None


def plain_values(value):
    """``value`` as dicts (str keys), lists, str, int, float, bool and None: what ``weights_only`` loads.
    Numpy and torch scalars (and subclasses of the builtins) become the builtin; any other object its ``str``."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, dict):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain_values(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) in ((), torch.Size([])):
        return plain_values(item())
    return str(value)


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _autocast(cfg: TrainConfig, device: torch.device):
    use = cfg.autocast == "bf16" or (cfg.autocast == "auto" and default_dtype(device) == torch.bfloat16)
    if not use:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up to 1, then cosine down to 0.1 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    """Runs both phases for one :class:`TrainConfig`; see :func:`train`."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.device = _device(cfg)
        self.autocast = _autocast(cfg, self.device)
        self.mask_dtype = torch.bfloat16 if self.autocast is not contextlib.nullcontext else torch.float32
        rows = read_rows(cfg.rows)
        self.train_rows = [r for r in rows if r.split == "train"]
        if cfg.train_sources:
            kept = [r for r in self.train_rows if r.source in cfg.train_sources]
            if not kept:
                raise ValueError(f"train_sources {list(cfg.train_sources)} match no training row of {cfg.rows}; "
                                 f"its sources are {sorted({r.source for r in self.train_rows})}")
            self.train_rows = kept
        self.val_rows = [r for r in rows if r.split == "val"][: cfg.eval_rows]
        self.model = TrainableGem.load(cfg).to(self.device)
        tokenizer = self.model.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad_id
        self.sampler = RowSampler(self.train_rows, tokenizer, special_ids=self.model.special_ids,
                                  max_tokens=cfg.max_tokens, pad_id=pad_id, token_dropout=cfg.token_dropout,
                                  ict_keep_prob=cfg.ict_keep_prob, crop_share=cfg.crop_share,
                                  source_factors=cfg.source_factors())
        self.state = {"phase": 1, "step": 0, "totals": {"1": cfg.ntp_steps, "2": cfg.contrastive_steps},
                      "history": [], "validation": {}, "seconds": {"1": 0.0, "2": 0.0}}
        self.optimizer = None
        self.started = time.monotonic()

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` atomically. It holds only tensors and plain values (dicts, lists, str,
        numbers, None), so :func:`read_checkpoint` loads it with ``torch.load(weights_only=True)``."""
        path = self.out / CHECKPOINT_FILE
        tmp = path.with_suffix(".tmp")
        torch.save({"model": self.model.trainable_state(), "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                    "state": plain_values(self.state), "config": plain_values(asdict(self.cfg))}, tmp)
        tmp.replace(path)

    def load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        saved = read_checkpoint(path)
        self.model.load_trainable_state(saved["model"])
        self.state = saved["state"]
        self._new_optimizer()
        if saved["optimizer"] is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
        logger.info("Resumed from %s at phase %d step %d", path, self.state["phase"], self.state["step"])

    def _new_optimizer(self) -> None:
        self.optimizer = torch.optim.AdamW(self.model.trainable_groups(), betas=(0.9, 0.98), eps=1e-6)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]

    def _set_lr(self, step: int, total: int) -> float:
        factor = cosine_with_warmup(step, total, max(1, int(self.cfg.warmup_ratio * total)))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        return factor

    def _rng(self, phase: int, step: int, micro: int) -> random.Random:
        return random.Random(f"{self.cfg.seed}-{phase}-{step}-{micro}")

    # ------------------------------------------------------------------ losses of one micro-batch
    def _ntp_loss(self, rng: random.Random, size: int, plain_prob: float) -> tuple[torch.Tensor, int]:
        batch = self.sampler.ntp_batch(rng, size, plain_prob)
        ids, attention = batch.input_ids.to(self.device), batch.attention.to(self.device)
        prefix = batch.prefix_lengths.to(self.device) if batch.has_gem_rows else None
        hidden = self.model.hidden(ids, attention, prefix, self.mask_dtype)
        return lm_loss(hidden, batch.labels.to(self.device), self.model.lm_head), int(attention.sum())

    def _embed(self, rows: list[list[int]]) -> torch.Tensor:
        ids, attention = pad_rows(rows, self.pad_id)
        return self.model.embed_ids(ids.to(self.device), attention.to(self.device), self.mask_dtype)

    def _embed_all(self, rows: list[list[int]], batch: int = 64) -> torch.Tensor:
        """(N, H) float embeddings of many rows, ``batch`` rows a pass (validation)."""
        return torch.cat([self._embed(rows[i:i + batch]) for i in range(0, len(rows), batch)]).float()

    def _contrastive_step(self, rng: random.Random, weight: float) -> tuple[float, int, dict]:
        """One micro-batch of phase 2, back-propagated with ``weight``: (loss, tokens, loss parts)."""
        cfg = self.cfg
        queries, positives, kinds = self.sampler.pair_batch(rng, cfg.contrastive_batch, cfg.positives, cfg.domain_batches,
                                                            cfg.doc_group, cfg.related_docs)
        max_log_scale = math.log(cfg.temperature_max)
        if cfg.embed_chunk:
            loss = self._grad_cached_nce(queries, positives, weight, max_log_scale)
        else:
            loss = info_nce(self._embed(queries), self._embed(positives), self.model.log_scale, max_log_scale)
            (weight * loss).backward()
        tokens = sum(map(len, queries)) + sum(map(len, positives))
        parts = {"nce": float(loss.detach())}
        total = float(loss.detach())
        if cfg.ntp_weight > 0:
            ntp, ntp_tokens = self._ntp_loss(rng, cfg.ntp_mix_batch, plain_prob=1.0)
            (weight * cfg.ntp_weight * ntp).backward()
            tokens += ntp_tokens
            parts["ntp"] = float(ntp.detach())
            total += cfg.ntp_weight * parts["ntp"]
        return total, tokens, parts

    def _grad_cached_nce(self, queries: list[list[int]], positives: list[list[int]], weight: float,
                         max_log_scale: float) -> torch.Tensor:
        """InfoNCE over the whole batch at the activation memory of ``embed_chunk`` rows (GradCache, Gao et al.
        2021): every row is embedded without a graph, the loss's gradient with respect to those embeddings is
        taken, then each chunk is embedded again with a graph and back-propagated against its slice of that
        gradient. Exact while the forward pass is deterministic (no dropout). Rows are chunked in length order,
        so a chunk carries little padding."""
        side_rows = (queries, positives)
        chunks = [self._length_chunks(rows) for rows in side_rows]
        with torch.no_grad():
            cached = [self._embed_chunks(rows, side).requires_grad_() for rows, side in zip(side_rows, chunks)]
        loss = info_nce(cached[0], cached[1], self.model.log_scale, max_log_scale)
        (weight * loss).backward()  # log_scale's gradient, and d loss / d embedding in cached[i].grad
        for rows, side, vectors in zip(side_rows, chunks, cached):
            for chunk in side:
                grads = vectors.grad[chunk].to(self.device)  # (chunk, H), already weighted
                (self._embed([rows[i] for i in chunk]) * grads).sum().backward()
        return loss

    def _length_chunks(self, rows: list[list[int]]) -> list[list[int]]:
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        size = self.cfg.embed_chunk
        return [order[i:i + size] for i in range(0, len(order), size)]

    def _embed_chunks(self, rows: list[list[int]], chunks: list[list[int]]) -> torch.Tensor:
        """(N, H) float embeddings of ``rows``, one pass per chunk of row indices, in the rows' order."""
        out = torch.empty(len(rows), self.model.special_rows.shape[1])
        for chunk in chunks:
            out[chunk] = self._embed([rows[i] for i in chunk]).float().cpu()
        return out

    # ------------------------------------------------------------------ loop
    def run_phase(self, phase: int) -> None:
        cfg = self.cfg
        key = str(phase)
        total = self.state["totals"][key]
        if self.state["phase"] > phase or total == 0:
            return
        if self.optimizer is None or self.state["step"] == 0:
            self._new_optimizer()
        self.model.train()
        progress = None
        if cfg.progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=total, initial=self.state["step"], desc=f"phase {phase}", dynamic_ncols=True)
        phase_start, tokens_seen, mark = time.monotonic(), 0, None
        while self.state["step"] < total:
            step = self.state["step"]
            self._set_lr(step, total)
            self.optimizer.zero_grad(set_to_none=True)
            losses, parts = [], {}
            for micro in range(cfg.grad_accum):
                rng = self._rng(phase, step, micro)
                with self.autocast():
                    if phase == 1:
                        loss, tokens = self._ntp_loss(rng, cfg.ntp_batch, cfg.plain_prob)
                        (loss / cfg.grad_accum).backward()
                        value = float(loss.detach())
                    else:
                        value, tokens, parts = self._contrastive_step(rng, 1.0 / cfg.grad_accum)
                losses.append(value)
                tokens_seen += tokens
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], cfg.grad_clip)
            self.optimizer.step()
            self.state["step"] = step + 1
            elapsed = time.monotonic() - phase_start
            record = {"phase": phase, "step": step + 1, "loss": sum(losses) / len(losses), **parts,
                      "scale": round(float(self.model.log_scale.detach().exp()), 2), "tok_s": round(tokens_seen / max(elapsed, 1e-9))}
            if (step + 1) % 10 == 0 or step + 1 == total:
                self.state["history"].append(record)
            if progress:
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.4f}", tok_s=record["tok_s"])
            if phase == 2 and step + 1 == 5:
                mark = time.monotonic()
            if phase == 2 and step + 1 == 15 and cfg.time_budget_min > 0 and mark is not None:
                total = self._fit_budget(total, (time.monotonic() - mark) / 10)
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < total:
                self.save_checkpoint()
        if progress:
            progress.close()
        self.state["seconds"][key] += time.monotonic() - phase_start
        self.state["phase"], self.state["step"] = phase + 1, 0
        self.optimizer = None
        self.save_checkpoint()

    def _fit_budget(self, total: int, step_seconds: float) -> int:
        left = self.cfg.time_budget_min * 60 - (time.monotonic() - self.started)
        fitted = max(15, min(total, int(left / step_seconds)))
        if fitted < total:
            logger.warning("Time budget: contrastive steps %d -> %d (%.2f s/step)", total, fitted, step_seconds)
        self.state["totals"]["2"] = fitted
        return fitted

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Held-out figures on validation rows (documents never trained on).

        ICT retrieval (a sentence -> the rest of its passage), same-document AUC (a passage is closer to
        another passage of its document than to one of another document of its corpus) and perplexity.
        """
        if not self.val_rows:
            return {}
        self.model.eval()
        pairs = ict_pairs(self.val_rows, self.cfg.seed)
        queries = [self.sampler.encode(sentence, 64) + self.model.special_ids for sentence, _ in pairs]
        passages = [self.sampler.encode(rest) + self.model.special_ids for _, rest in pairs]
        result = {}
        with self.autocast():
            if queries:
                q, p = self._embed_all(queries), self._embed_all(passages)
                scores = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(p, dim=-1).T
                ranks = (scores > scores.diag().unsqueeze(1)).sum(dim=1)  # 0 = first
                result["ict_recall_at_1"] = round(float((ranks == 0).float().mean()), 4)
                result["ict_mrr_at_10"] = round(float(torch.where(ranks < 10, 1.0 / (ranks + 1), 0.0).mean()), 4)
                result["ict_pairs"] = len(queries)
            texts = [self.sampler.encode(r.text) for r in self.val_rows]
            vectors = self._embed_all([t + self.model.special_ids for t in texts]).cpu().numpy()
            auc = same_group_auc(vectors, [r.doc for r in self.val_rows], [r.source for r in self.val_rows])
            if auc is not None:
                result["same_doc_auc"] = round(auc, 4)
            nll, count = 0.0, 0
            for start in range(0, len(texts), 32):
                ids, attention = pad_rows(texts[start:start + 32], self.pad_id)
                labels = ids.clone()
                labels[:, :-1] = ids[:, 1:]
                labels[:, -1] = -100
                labels[:, :-1][attention[:, 1:] == 0] = -100
                n = int((labels != -100).sum())
                hidden = self.model.hidden(ids.to(self.device), attention.to(self.device))
                nll += float(lm_loss(hidden, labels.to(self.device), self.model.lm_head)) * n
                count += n
            result["perplexity"] = round(math.exp(nll / max(count, 1)), 3)
        self.model.train()
        return result

    # ------------------------------------------------------------------ whole run
    def fit(self, resume: bool = False) -> dict:
        if resume:
            self.load_checkpoint()
        elif (self.out / CHECKPOINT_FILE).exists():
            raise FileExistsError(f"{self.out} already holds a checkpoint: pass resume=True (--resume) or use another out_dir")
        if "before" not in self.state["validation"]:
            self.state["validation"]["before"] = self.validate()
            logger.info("Validation before training: %s", self.state["validation"]["before"])
        self.run_phase(1)
        if self.cfg.ntp_steps and "after_phase1" not in self.state["validation"]:
            self.state["validation"]["after_phase1"] = self.validate()
        self.run_phase(2)
        self.state["validation"]["final"] = self.validate()
        logger.info("Validation after training: %s", self.state["validation"]["final"])
        self.save_checkpoint()
        return self.export()

    def export(self) -> dict:
        stats = {"train_rows": len(self.train_rows), "val_rows": len(self.val_rows),
                 "sources": {s: len(ix) for s, ix in self.sampler.by_source.items()}, "rows_file": Path(self.cfg.rows).name}
        card = {
            "base_model": self.model.base_name,
            "derived_from": "HuggingFaceTB/SmolLM2-135M-Instruct" if self.cfg.base_model is None else str(self.cfg.base_model),
            "license": "Apache-2.0" if self.cfg.base_model is None else "that of the base model",
            "query_instruction": "",
            "adapter_scope": self.cfg.adapter_scope,
            "recipe": {k: v for k, v in asdict(self.cfg).items() if k not in ("rows", "out_dir", "extra", "progress")},
            "data": {**stats, **self.cfg.extra.get("data", {})},
            "steps": {"ntp": self.state["totals"]["1"], "contrastive": self.state["totals"]["2"]},
            "train_seconds": {k: round(v, 1) for k, v in self.state["seconds"].items()},
            "device": str(self.device) + (f" ({torch.cuda.get_device_name()})" if self.device.type == "cuda" else ""),
            "seed": self.cfg.seed,
            "validation": self.state["validation"],
            "command": self.cfg.extra.get("command", ""),
            "evaluation": {},
        }
        if self.model.parent_card is not None:  # a continued run keeps the lineage of what it started from
            card["parent"] = self.model.parent_card
        (self.out / "history.json").write_text(json.dumps(self.state["history"]) + "\n")
        self.model.export(self.out / ARTEFACT_DIR, card)
        return card


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Train a GEM artefact as configured; writes ``<out_dir>/artefact`` and returns its card."""
    return Trainer(cfg).fit(resume=resume)

