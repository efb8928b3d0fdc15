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
from collections.abc import Callable, Sequence

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
    ("The telephone was patented by Alexander Graham Bell in 1876, although Elisha Gray filed a similar design "
     "on the same day.", "Who patented the telephone?", "Alexander Graham Bell"),
)
# No abstention example: SmolLM2-135M copies the last few-shot answer, and one showing the abstention
# phrase made it abstain on 8 of 10 answerable dev questions (benchmarks/dev/rag_prompt_dev.py). No how-to
# example either: one (with "for a how-to question, the instruction" in the system text) lifted how-to dev
# questions over the Python docs only from 3.1 to 5.2 F1 and cost 5.8 on whole-paragraph factoid contexts.

_CONTEXT_MARK = "\u2063GEMRAG_CONTEXT\u2063"
_QUESTION_MARK = "\u2063GEMRAG_QUESTION\u2063"
_ALIAS = re.compile(r"((?:[\w'-]+\s+){1,6})\(\s*([^()]{1,30}?)\s*[),;]")  # "Coordinated Universal Time (UTC)"
_ASKS_NAME = re.compile(r"\b(?:abbreviat\w*|acronym|initials|short\s+for|stands?\s+for|called|known\s+as|names?|"
                        r"symbol|code)\b", re.IGNORECASE)  # a question an alias answers: "What is TAI short for?"
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

    def postprocess(self, text: str, question: str = "") -> tuple[str, bool]:
        """(answer, abstained): the first line, with lead-ins like 'Answer:', a leading restatement of the
        question ("The capital of France is ..."), trailing clauses of a long answer and a final full stop
        removed: the model is asked for a span but often pads it into a sentence."""
        answer = text.strip().split("\n", 1)[0].strip()
        if self.is_abstention(answer):
            return self.abstain_phrase, True
        answer = _LEADS.sub("", answer).strip()
        if question and len(answer.split()) > 3:
            answer = _shorten(answer, question)
        for _ in range(2):  # 'Answer: "Guido van Rossum".' -> Guido van Rossum
            if answer.endswith(".") and not re.search(r"\b(?:[A-Za-z]\.){2,}$", answer):
                answer = answer[:-1].rstrip()
            if len(answer) > 1 and answer[0] == answer[-1] and answer[0] in "\"'":
                answer = answer[1:-1].strip()
        return answer, False

    def grounded_in(self, chunks: Sequence[str], question: str, spans_only: bool = False) -> Callable[[str], bool]:
        """A check for raw answers: False when the post-processed answer only repeats words of the question
        ("popular?" for "... become more popular?"), announces instead of answering ("use the following:", the
        opening of a code block), or is text of the few-shot examples that the context does not contain (a small
        model's beam search likes to repeat an example's answer, such as "1891", under a long context); with
        ``spans_only``, also False for every answer the context does not contain word for word (case and
        punctuation aside). Also False for an alias the context gives the question's own subject ("UTC" for "What
        is the basis of Coordinated Universal Time?" over "... Coordinated Universal Time (UTC) ..."): it names
        what was asked about, it does not answer (unless the question asks for a name: "What is it called?"). The
        abstention always passes."""
        examples = f" {_normalise(' '.join(' '.join(turn) for turn in self.examples))} "
        context = f" {_normalise(' '.join(chunks))} "
        asked = f" {_normalise(question)} "
        aliases = set() if _ASKS_NAME.search(question) else _aliases_of_asked(" ".join(chunks), asked)

        def accept(raw: str) -> bool:
            answer, abstained = self.postprocess(raw, question)
            norm = f" {_normalise(answer)} "
            if abstained:
                return True
            if not norm.strip() or norm in asked or answer.endswith(":") or answer.startswith("```"):
                return False  # an echo of the question, or an announcement ("use the following code:", "```python")
            if norm.strip() in aliases:
                return False  # "UTC" for "... of Coordinated Universal Time?"
            return norm in context or not spans_only and norm not in examples

        return accept

    def is_abstention(self, text: str) -> bool:
        """True when ``text`` is (or starts with) the abstention phrase, loosely compared."""
        norm = _normalise(text)
        phrase = _normalise(self.abstain_phrase)
        return bool(norm) and (norm.startswith(phrase) or phrase.startswith(norm) and len(norm) > 0.6 * len(phrase))


_FILLER = frozenset("a an the is was are were be been of in on at by to for from has have had it its this that "
                    "there their he she they as".split())


def _stem(word: str) -> str:
    word = re.sub(r"[^\w%$]", "", word.lower())
    return word[:5]


def _shorten(answer: str, question: str) -> str:
    """Drop a leading echo of the question and keep the first clause of what follows."""
    asked = {_stem(w) for w in question.split()} | _FILLER
    words = answer.split()
    start = 0
    while start < len(words) - 1 and _stem(words[start]) in asked:
        start += 1
    if start >= 2:  # a real restatement, not one shared word
        answer = " ".join(words[start:])
    sentence = re.split(r"(?<=[a-z0-9%)])\.\s", answer, maxsplit=1)[0]
    if len(sentence.split()) > 4:
        sentence = re.split(r",\s|;\s|\s(?:which|who|where|because|but|while)\s", sentence, maxsplit=1)[0]
    return sentence.strip() or answer


def _aliases_of_asked(context: str, asked: str) -> set[str]:
    """The normalised aliases ``context`` gives phrases of the question: X in "<two or more words of the question>
    (X)", such as "utc" in "Coordinated Universal Time (UTC)" when the question says "coordinated universal time"."""
    found = set()
    for phrase, alias in _ALIAS.findall(context):
        words = _normalise(phrase).split()
        for n in range(min(len(words), 6), 1, -1):  # the longest run of words ending right before "("
            if f" {' '.join(words[-n:])} " in asked:
                found.add(_normalise(alias))
                break
    return found


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
