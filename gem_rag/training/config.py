"""Training configuration: one dataclass, saved in the artefact card so a run can be reproduced.

Example:
    >>> cfg = TrainConfig(rows="rows.jsonl.gz", out_dir="run", ntp_steps=200, contrastive_steps=600)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gem_rag.core.artefact import ADAPTER_SCOPES

POSITIVE_KINDS = ("dropout", "ict", "heading", "crop", "neighbour", "question")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Every knob of a GEM training run (defaults: the recipe of the shipped model, sized for a GPU)."""

    rows: str  # rows file from prepare_rows
    out_dir: str
    base_model: str | None = None  # None: the default SmolLM2-135M-Instruct; else a folder, .gguf or hub id
    init_from: str | None = None  # a LoRA artefact to start from (its LoRA factors and GEM rows): continue training
    train_sources: tuple[str, ...] = ()  # train only on rows of these sources (e.g. one domain); () = all
    num_special_tokens: int = 1
    seed: int = 0
    device: str = "auto"
    autocast: str = "auto"  # "auto" (bf16 on CUDA and on CPUs with bf16 units, else off), "bf16", "off"
    # adaptation
    method: str = "lora"  # "lora" (peft) or "full"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: tuple[str, ...] = LORA_TARGETS
    adapter_scope: str = "embedding"  # where the trained updates act: "embedding" passes only, or "all" (merged)
    full_export_rank: int = 64  # full fine-tuning: linear deltas are exported as rank-r SVD factors
    lr: float = 2e-4  # LoRA / full-FT weights (use ~2e-5 for full)
    special_lr: float = 1e-3  # the special token rows
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    grad_accum: int = 1
    max_tokens: int = 256  # longest training text, in tokens
    grad_checkpointing: bool = False  # recompute layer activations in backward: big batches in little memory
    # phase 1: mixed next-token prediction
    ntp_steps: int = 100
    ntp_batch: int = 32
    plain_prob: float = 0.8  # share of rows trained as plain NTP (the rest get the GEM token + mask)
    # phase 2: contrastive
    contrastive_steps: int = 500
    contrastive_batch: int = 128  # pairs per step (in-batch negatives: 2 * batch - 1 for each side)
    positives: tuple[str, ...] = ("dropout", "ict", "heading")
    token_dropout: float = 0.15  # share of tokens dropped from each view for "dropout" positives
    ict_keep_prob: float = 0.1  # ICT: chance the query sentence stays in its passage
    crop_share: tuple[float, float] = (0.3, 0.6)  # "crop": each view is a word span of this share of the passage
    domain_batches: bool = True  # draw each contrastive batch from one source (harder negatives)
    doc_group: int = 0  # >1: a batch holds up to this many passages per document (same-document negatives)
    related_docs: int = 0  # with doc_group > 1: each drawn document brings this many BM25-related ones (hard negatives)
    source_weights: tuple[str, ...] = ()  # "source=factor": multiply a source's sqrt(size) sampling weight
    embed_chunk: int = 0  # >0: GradCache, rows embedded this many at a time (the batch's negatives, a chunk's memory)
    ntp_weight: float = 0.1  # weight of a plain NTP loss mixed into phase 2 (0: none, no LM head)
    ntp_mix_batch: int = 16
    temperature_init: float = 20.0  # InfoNCE scale exp(s), s learnable, init log 20, clamped at log 100
    temperature_max: float = 100.0
    # bookkeeping
    time_budget_min: float = 0.0  # >0: shrink the contrastive step count after 10 steps to fit this wall time
    checkpoint_every: int = 200
    eval_rows: int = 512  # validation passages for the held-out ICT recall and perplexity
    progress: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes copied to the card (e.g. the command line)

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.adapter_scope not in ADAPTER_SCOPES:
            raise ValueError(f"adapter_scope must be one of {ADAPTER_SCOPES}, got {self.adapter_scope!r}")
        if self.autocast not in ("auto", "bf16", "off"):
            raise ValueError(f"autocast must be 'auto', 'bf16' or 'off', got {self.autocast!r}")
        unknown = set(self.positives) - set(POSITIVE_KINDS)
        if unknown or (self.contrastive_steps and not self.positives):
            raise ValueError(f"positives must be a non-empty subset of {POSITIVE_KINDS}, got {self.positives!r}")
        if not 0.0 <= self.plain_prob <= 1.0:
            raise ValueError(f"plain_prob must be in [0, 1], got {self.plain_prob}")
        if self.grad_accum < 1 or self.ntp_steps < 0 or self.contrastive_steps < 0:
            raise ValueError("grad_accum must be >= 1 and step counts >= 0")
        if self.init_from and self.method != "lora":
            raise ValueError("init_from continues a LoRA artefact: it needs method='lora'")
        if not 0.0 < self.crop_share[0] <= self.crop_share[1] <= 1.0:
            raise ValueError(f"crop_share must be (low, high) with 0 < low <= high <= 1, got {self.crop_share!r}")
        self.positives = tuple(self.positives)
        self.crop_share = tuple(self.crop_share)
        self.lora_targets = tuple(self.lora_targets)
        self.train_sources = tuple(self.train_sources)
        self.source_weights = tuple(self.source_weights)
        self.source_factors()  # validates the "source=factor" entries
        if self.doc_group < 0:
            raise ValueError(f"doc_group must be >= 0 (0 or 1: passages drawn one by one), got {self.doc_group}")
        if self.related_docs < 0 or (self.related_docs and self.doc_group < 2):
            raise ValueError(f"related_docs must be >= 0 and needs doc_group >= 2 (documents are drawn whole), got "
                             f"related_docs={self.related_docs}, doc_group={self.doc_group}")
        if self.embed_chunk < 0:
            raise ValueError(f"embed_chunk must be >= 0 (0: the whole batch in one graph), got {self.embed_chunk}")

    def source_factors(self) -> dict[str, float]:
        """``source_weights`` as {source: factor}; ValueError naming a malformed entry."""
        factors = {}
        for entry in self.source_weights:
            name, _, text = entry.partition("=")
            try:
                factor = float(text)
            except ValueError:
                factor = 0.0
            if not name.strip() or not factor > 0:
                raise ValueError(f"source_weights entry {entry!r}: write source=factor with a factor > 0, "
                                 f"e.g. wikipedia-sample=3")
            factors[name.strip()] = factor
        return factors
