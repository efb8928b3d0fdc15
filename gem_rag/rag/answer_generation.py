"""AnswerGenerator: decodes an answer from the answer prompt over some context texts (chunks, or the
supporting sentences), with the prompt's fixed start (system text, few-shot turns) tokenized and run once and
its KV state reused by every later answer: a question then costs only its context and question tokens.

Example:
    >>> generator = AnswerGenerator(model, AnswerPrompt())
    >>> run = generator.run("What does it eat?", ["It feeds on ants and termites."], params)
    >>> "".join(run), run.result.completion_tokens
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence

import torch

from gem_rag.core.decoding import CopySpanConstraint, Piece, PieceGeneration
from gem_rag.core.kv_states import compute_kv
from gem_rag.rag.prompt import AnswerPrompt


class AnswerGenerator:
    def __init__(self, model, prompt: AnswerPrompt, stop_pattern: re.Pattern | None = None):
        self.model = model
        self.prompt = prompt
        self.stop_pattern = stop_pattern
        self._prefix: dict[str, Piece] = {}  # prompt start text -> its ids and KV state (one entry)
        self._lock = threading.Lock()

    def ids(self, text: str) -> list[int]:
        return self.model.tokenizer(text, add_special_tokens=False).input_ids if text else []

    def prompt_start(self) -> str:
        """The prompt's fixed start (system instruction, few-shot turns, the template up to the context)."""
        return self.prompt.segments(self.model, [], "").before_context

    def prefix_piece(self, text: str | None = None) -> Piece:
        """The prompt's fixed start with its KV state, computed once (exact: it starts at position 0)."""
        text = self.prompt_start() if text is None else text
        with self._lock:
            if text not in self._prefix:
                ids = self.ids(text)
                state = compute_kv(self.model, ids) if self.model.supports_kv_states and ids else None
                self._prefix = {text: Piece(ids, state)}
            return self._prefix[text]

    def pieces(self, question: str, contexts: Sequence[str], first_state: torch.Tensor | None = None) -> list[Piece]:
        """The prompt as pieces; ``first_state`` is the first context's KV state computed after the prompt
        start (document KV reuse), when there is one."""
        segments = self.prompt.segments(self.model, list(contexts), question)
        pieces = [self.prefix_piece(segments.before_context)]
        for i, text in enumerate(contexts):
            if i:
                pieces.append(Piece(self.ids(segments.separator)))
            pieces.append(Piece(self.ids(text), first_state if i == 0 else None))
        pieces += [Piece(self.ids(segments.before_question)), Piece(self.ids(question)),
                   Piece(self.ids(segments.after_question))]
        return [p for p in pieces if p.ids]

    def fits(self, question: str, contexts: Sequence[str], max_new_tokens: int) -> bool:
        prompt = self.prompt.render(self.model, list(contexts), question)
        return self.model.count_tokens(prompt) + max_new_tokens < self.model.context_window

    def run(self, question: str, contexts: Sequence[str], params, *, beams: int = 1,
            accept: Sequence[Callable[[str], bool]] = (), extractive: bool = False,
            first_state: torch.Tensor | None = None) -> PieceGeneration:
        """The decoding of an answer from ``contexts`` (an iterator of text pieces; see PieceGeneration)."""
        constraint = None
        if extractive:
            constraint = CopySpanConstraint(self.model.tokenizer, [self.ids(c) for c in contexts],
                                            [self.ids(self.prompt.abstain_phrase)], self.model.eos_token_ids)
        return PieceGeneration(self.model, self.pieces(question, contexts, first_state), params,
                               self.stop_pattern, constraint, beams, accept)
