"""The answer prompt: system instruction, few-shot turns and a user template, rendered as token segments
so the context chunks can be swapped for cached KV states; plus answer post-processing.

The default asks the small model for the shortest span copied from the context (SmolLM2-135M otherwise
answers in padded whole sentences), and for a fixed phrase when the context lacks the answer.

Example:
    >>> prompt = AnswerPrompt()
    >>> segments = prompt.segments(model, ["Paris is the capital of France."], "What is the capital of France?")
    >>> prompt.postprocess(" Paris.\\n")
    ('Paris', False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

ABSTAIN_PHRASE = "The documents do not contain the answer."

DEFAULT_SYSTEM = (
    "You answer questions using only the given context. Reply with the shortest part of the context that "
    "answers the question (a name, number, date or short phrase), copied word for word, not a full sentence. "
    f"If the context does not contain the answer, reply exactly: {ABSTAIN_PHRASE}"
)
DEFAULT_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"
CHUNK_SEPARATOR = "\n\n"

# (context, question, answer) turns shown before the real question; written for this project.
DEFAULT_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("The Amazon River flows through Peru, Colombia and Brazil. It carries more water than any other river, "
     "about 209,000 cubic metres per second, into the Atlantic Ocean.",
     "How much water does the Amazon carry?", "about 209,000 cubic metres per second"),
    ("Marie Curie was born in Warsaw in 1867. She moved to Paris in 1891 to study physics and mathematics "
     "at the Sorbonne, where she later became a professor.",
     "In which year did Marie Curie move to Paris?", "1891"),
    ("The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair in Paris.",
     "Who designed the Statue of Liberty?", ABSTAIN_PHRASE),
)

_CONTEXT_MARK = "\u2063GEMRAG_CONTEXT\u2063"
_QUESTION_MARK = "\u2063GEMRAG_QUESTION\u2063"
_LEADS = re.compile(r"^(?:answer|the answer is|final answer|a)\s*[:\-]\s*|^the answer is\s+", re.IGNORECASE)


@dataclass
class PromptSegments:
    """The prompt as pieces: fixed text before the context, the chunk texts, text between context and
    question, the question, and the text after it (ends with the assistant turn)."""

    before_context: str
    chunks: list[str]
    separator: str
    before_question: str
    question: str
    after_question: str

    def text(self) -> str:
        return (self.before_context + self.separator.join(self.chunks) + self.before_question + self.question
                + self.after_question)


@dataclass
class AnswerPrompt:
    """System instruction + few-shot turns + ``template`` (with ``{context}`` and ``{question}``).

    ``template`` is the user turn; it must contain ``{context}`` before ``{question}``.
    """

    template: str = DEFAULT_TEMPLATE
    system: str = DEFAULT_SYSTEM
    examples: Sequence[tuple[str, str, str]] = field(default_factory=lambda: DEFAULT_EXAMPLES)
    abstain_phrase: str = ABSTAIN_PHRASE

    def __post_init__(self) -> None:
        if not isinstance(self.template, str):
            raise TypeError(f"prompt_template must be a str, got {type(self.template).__name__}")
        c, q = self.template.find("{context}"), self.template.find("{question}")
        if c < 0 or q < 0 or q < c or self.template.count("{context}") != 1 or self.template.count("{question}") != 1:
            raise ValueError("prompt_template must contain '{context}' once, then '{question}' once, e.g. "
                             f"{DEFAULT_TEMPLATE!r}")

    def messages(self, context: str, question: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for ctx, q, a in self.examples:
            messages.append({"role": "user", "content": self._fill(ctx, q)})
            messages.append({"role": "assistant", "content": a})
        messages.append({"role": "user", "content": self._fill(context, question)})
        return messages

    def _fill(self, context: str, question: str) -> str:
        return self.template.replace("{context}", context).replace("{question}", question)

    def segments(self, model, chunks: Sequence[str], question: str) -> PromptSegments:
        """Render through the model's chat template and cut at the context and question."""
        rendered = model.apply_chat_template(self.messages(_CONTEXT_MARK, _QUESTION_MARK))
        before_context, rest = rendered.split(_CONTEXT_MARK)
        before_question, after_question = rest.split(_QUESTION_MARK)
        return PromptSegments(before_context, list(chunks), CHUNK_SEPARATOR, before_question, question, after_question)

    def render(self, model, chunks: Sequence[str], question: str) -> str:
        """The whole prompt as one string."""
        return self.segments(model, chunks, question).text()

    def postprocess(self, text: str) -> tuple[str, bool]:
        """(answer, abstained): first line, lead-ins like 'Answer:' and wrapping quotes/full stop removed."""
        answer = text.strip().split("\n", 1)[0].strip()
        if self.is_abstention(answer):
            return self.abstain_phrase, True
        answer = _LEADS.sub("", answer).strip()
        if len(answer) > 1 and answer[0] == answer[-1] and answer[0] in "\"'":
            answer = answer[1:-1].strip()
        if answer.endswith(".") and not re.search(r"\b[A-Z]\.$|\d\.$", answer):
            answer = answer[:-1].rstrip()
        return answer, False

    def is_abstention(self, text: str) -> bool:
        """True when ``text`` is (or starts with) the abstention phrase, loosely compared."""
        norm = _normalise(text)
        phrase = _normalise(self.abstain_phrase)
        return bool(norm) and (norm.startswith(phrase) or phrase.startswith(norm) and len(norm) > 0.6 * len(phrase))


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
