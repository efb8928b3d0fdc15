"""What one request may cost the server: body sizes, upload quotas and token budgets (all configurable).

A request over a limit is refused at once with a 4xx that names the limit and the fix, before any model
work: a body too large gets 413 from the Content-Length header (or as soon as a chunked body passes the
limit); an embedding request with too many inputs or tokens, or a generation request asking for too many
new tokens or not fitting the context window, gets 400 (:class:`OverBudget`).

Example:
    >>> limits = ServerLimits(max_embedding_inputs=64)
    >>> create_app(model, limits=limits)
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

from gem_rag.core.model import GemModel

MIB = 2**20
# a prefix of a text that tokenizes to this many tokens more than the budget proves the whole is over it (the
# cut can split a word into a few more tokens than the whole text has there; never this many)
CUT_MARGIN = 64


class OverBudget(ValueError):
    """A request over a per-request budget (HTTP 400); ``param`` names the field to change."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ServerLimits:
    """Per-request limits of the HTTP server (defaults in brackets).

    Args:
        max_body_bytes: largest body of a JSON API request [1 MiB].
        max_upload_bytes: largest body of one ``/api/upload`` request, i.e. the files it carries [20 MiB].
        uploads_quota_bytes: most bytes the uploads folder may hold, all uploads together [200 MiB].
        max_embedding_inputs: texts in one ``/v1/embeddings`` request [256].
        max_embedding_tokens: tokens of all the texts of one ``/v1/embeddings`` request [65,536].
        max_completion_tokens: largest ``max_tokens`` of ``/v1/chat/completions`` and ``/v1/rag/answer`` [1024].
    """

    max_body_bytes: int = 1 * MIB
    max_upload_bytes: int = 20 * MIB
    uploads_quota_bytes: int = 200 * MIB
    max_embedding_inputs: int = 256
    max_embedding_tokens: int = 65_536
    max_completion_tokens: int = 1024

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive int, got {value!r}")

    def body_limit(self, path: str) -> int:
        """Largest body accepted on ``path``."""
        return self.max_upload_bytes if path == "/api/upload" else self.max_body_bytes


def megabytes(size: int) -> str:
    return f"{size / MIB:g} MiB"


def count_within(model: GemModel, text: str, budget: int) -> int:
    """Tokens of ``text``, exact while within ``budget``; past it, possibly only a lower bound that is over the
    budget: a long text is judged by prefixes of doubling length first, so refusing it costs about as much as
    tokenizing the budget's worth of text, and counting it at most twice its own cost."""
    cut = 2 * (budget + CUT_MARGIN)
    while cut < len(text):
        head = model.count_tokens(text[:cut])
        if head > budget + CUT_MARGIN:
            return head
        cut *= 2
    return model.count_tokens(text)


def embedding_budget(model: GemModel, texts: Sequence[str], limits: ServerLimits) -> list[int]:
    """Tokens of each text; raises OverBudget naming the limit and what to do."""
    if len(texts) > limits.max_embedding_inputs:
        raise OverBudget(f"input holds {len(texts)} texts; this server embeds at most {limits.max_embedding_inputs} "
                         f"per request: split them over several requests", "input")
    counts: list[int] = []
    total = 0
    for text in texts:
        counts.append(count_within(model, text, limits.max_embedding_tokens - total))
        total += counts[-1]
        if total > limits.max_embedding_tokens:
            raise OverBudget(f"input holds more than {limits.max_embedding_tokens:,} tokens (at least {total:,} in "
                             f"its first {len(counts)} text(s)); this server embeds at most "
                             f"{limits.max_embedding_tokens:,} tokens per request: send fewer or shorter texts per "
                             f"request", "input")
    return counts


def completion_budget(model: GemModel, prompt_tokens: int, requested: int | None, default: int,
                      limits: ServerLimits, prompt_param: str = "messages") -> int:
    """Max new tokens to generate; raises OverBudget when the request cannot be served whole.

    ``requested``: the client's max_tokens (None: ``default``, shortened to what the context window leaves).
    """
    if requested is not None and requested > limits.max_completion_tokens:
        raise OverBudget(f"max_tokens is {requested}; this server generates at most {limits.max_completion_tokens} "
                         f"tokens per request: ask for at most {limits.max_completion_tokens}", "max_tokens")
    room = model.context_window - prompt_tokens
    if room < 1:
        raise OverBudget(f"the prompt is {prompt_tokens:,} tokens, the model's context window is "
                         f"{model.context_window:,} tokens: shorten it", prompt_param)
    if requested is None:
        return min(default, room, limits.max_completion_tokens)
    if requested > room:
        raise OverBudget(f"the prompt is {prompt_tokens:,} tokens and max_tokens is {requested}: together more than "
                         f"the model's context window of {model.context_window:,} tokens; ask for at most {room} new "
                         f"tokens or shorten the prompt", "max_tokens")
    return requested


def chat_prompt_tokens(model: GemModel, messages: list[dict]) -> int:
    """Tokens of the chat prompt of ``messages`` (the chat template applied), judged by a prefix when huge."""
    prompt = model.apply_chat_template(messages)
    return len(model.bos_ids) + count_within(model, prompt, model.context_window)
