"""SentenceReader, the default reader: find the sentences that answer the question inside the retrieved
chunks, then give the answer a person accepts, with those sentences as its support.

1. **Find.** Every unit (sentence, list item, code block) of the retrieved chunks was embedded at indexing
   in its chunk's forward pass. A unit scores its cosine with the question's vector, plus ``lexical_weight``
   times the share of the question's content words it contains (each word weighted by its rarity in the
   index; a stop word the chunks write as inline code, `is` in "What does the is operator compare?", counts as an
   average content word), less ``FRAGMENT_PENALTY`` for a fragment cut at a chunk's start and, for other
   questions than how-to ones, ``CODE_PENALTY`` for a code block (how-to questions favour sentences that
   introduce or hold code, or instruct "To <do it>, use ...", instead, and by ``HOWTO_VERB_BONUS`` the one that
   does the question's verb: an API entry's description opening with it, "Use `X` to <verb>"), plus
   ``DEFINITION_BONUS`` for a sentence that states what a "what is X?" or "what is the X of Y?" question asks
   (``question_types.defining_pattern``, ``stating_pattern``). The best unit is the support, with the code block right after it when it introduces
   one ("... run:"); below ``min_support_score`` the reader abstains, and so it does when the question names a
   capitalised word no retrieved chunk holds ("What is the albedo of Mars?"), or when the question asks for
   a number ("how many ...?", "in what year ...?") and the best unit is code or lacks that kind of number (a
   year for "when did ...?", a count of X for "how many X ...?", a unit of the measure for "how long / fast ...?",
   a version for "which version ...?": :func:`~gem_rag.rag.question_types.holds_asked_number`). A question that asks
   for one kind of answer (a place, an exception class, a name, a count of X:
   :func:`~gem_rag.rag.question_types.answer_test`) takes the best of the top units that holds one, and a question about
   one operating system ("... on windows") the best unit that names it, however far down. A how-to
   question whose best sentence states a problem without code, followed by a sentence with code, is supported by
   that next sentence (documentation states the problem, then its solution); one whose best sentence opens lower-case
   right after a code block (the block cut it in two) by that block. A "why" question whose best sentence gives no
   reason, followed by one that does ("because ..."), is supported by that next sentence, and else by the best of
   its top units that gives one. (Chosen on the development set,
   benchmarks/dev: docs/benchmarks.md, "Reader".)
2. **Answer**, by the kind of question:
   - how-to ("how do I ...") whose support introduces or contains code: the code, e.g. ``python3 -m venv
     tutorial-env``;
   - definitions ("what is X?") and explanations ("why ..."): the supporting sentence itself;
   - other questions (facts): the model writes a short answer from the supporting sentences alone (a short
     prompt, so it is fast), kept only when the sentences contain it and it is more than an alias of what the
     question names (``AnswerPrompt.grounded_in``), and says something without its sentence (a number, code or
     a name: :func:`~gem_rag.rag.answer_text.stands_alone`; "highly variable" does not); otherwise the sentence is
     the answer. An answer the sentences do not support is never shown as the answer.
   A sentence answer that introduces a code block ("..., for instance:") shows the block's first lines after it.
   A supporting sentence that opens with a pronoun ("It is the basis for ...") is shown after the sentence before
   it in its chunk, which joins the support: a person must see what "it" is; so is a how-to solution after the
   problem sentence that led to it.

Example:
    >>> reader = SentenceReader(generator, units, RagConfig())
    >>> for item in reader.read(question, retrieval.chunks, retrieval.query_vector, params): ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from collections.abc import Callable, Generator, Iterator, Sequence

import numpy as np

from gem_rag.rag.answer_generation import AnswerGenerator
from gem_rag.rag.answer_text import as_answer, lines_through_name, stands_alone, tidy_span, whole_list
from gem_rag.rag.bm25 import STEM, STOPWORDS, tokenize
from gem_rag.rag.config import RagConfig
from gem_rag.rag.follow_ups import (Candidate, code_unit, example_code, gives_reason, interrupting_code, reason, solution,
                                     under_signature, unit_support)
from gem_rag.rag.question_types import (answer_test, asked_platform, asks_for_number, defining_pattern,
                                        does_asked_verb, holds_asked_number, named_words, question_kind, stating_pattern)
from gem_rag.rag.sentences import is_fragment, label_length
from gem_rag.rag.types import RetrievedChunk, SupportEvent, SupportingSentence, TokenEvent
from gem_rag.rag.unit_index import UnitIndex

_PRONOUN_START = re.compile(r"^\W*(?:it|this|that|these|those|they|he|she|its|their|his|her)\s+\w",
                            re.IGNORECASE)  # "It is the basis for ...": who "it" is, is in the sentence before
_STOPWORDS = frozenset("a an the is was are were be been of in on at by to for from do does did how what why when "
                       "where who whom which can could should would will i you we it its this that these those with "
                       "and or as my me your there their use using get".split())
_INSTRUCTION = re.compile(r"^\W*to\s+[^.:;]{3,80}?,?\s+(?:you\s+(?:can|could|should|must|need\s+to)\s+)?"
                          r"(?:use|call|type|run|write|pass|add|set|install|import)\b", re.IGNORECASE)
SHORT_ANSWER_TOKENS = 16  # a short answer longer than this is not short: the sentence answers instead
CODE_LINES = 3  # a code answer shows at most this many lines of its block
TYPED_CANDIDATES = 5  # a question asking for one kind of answer takes the best of this many units that holds one
FRAGMENT_PENALTY = 0.3  # unit scores (see the module docstring), chosen on the development set
CODE_PENALTY = 0.3
HOWTO_BONUS = 0.1
HOWTO_VERB_BONUS = 0.3
DEFINITION_BONUS = 0.5


def content_words(text: str) -> set[str]:
    """Word stems (5 letters) of ``text`` without stop words, for the lexical part of a unit's score."""
    return {word[:STEM] for word in tokenize(text) if word not in _STOPWORDS}


def inline_code_words(question: str, texts: Sequence[str]) -> list[re.Pattern]:
    """Patterns for the stop words of ``question`` that ``texts`` write as inline code (`` `is` ``, `` `is not` ``):
    there the word is a name (the ``is`` operator), so a unit holding it matches the question's word."""
    stop = _STOPWORDS | STOPWORDS | {"not"}
    words = sorted({word for word in re.findall(r"[a-z]{2,}", question.lower()) if word in stop})
    spans = {span for text in texts for span in re.findall(r"`([a-z ]+)`", text)
             if all(word in stop for word in span.split())}  # `is not`, not `a <= N <= b`
    patterns = [re.compile(rf"`(?:[a-z]+ )*{word}(?: [a-z]+)*`") for word in words]
    return [pattern for pattern in patterns if any(pattern.fullmatch(f"`{span}`") for span in spans)]


@dataclass
class ReadResult:
    """What a reader concluded (the pipeline adds the chunks and timings to make a RagAnswer)."""

    answer: str
    abstained: bool
    how: str
    supporting: list[SupportingSentence] = field(default_factory=list)
    raw_answer: str = ""
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    first_token_s: float | None = None
    answer_chunk_ids: list[str] = field(default_factory=list)
    readings: list = field(default_factory=list)


class SentenceReader:
    def __init__(self, generator: AnswerGenerator, units: UnitIndex, config: RagConfig,
                 idf: Callable[[str], float] = lambda word: 1.0):
        self.generator = generator
        self.units = units
        self.config = config
        self.idf = idf  # a word stem's rarity in the index (Retriever.stem_idf)

    def candidates(self, question: str, chunks: Sequence[RetrievedChunk], query: np.ndarray) -> list[Candidate]:
        """The units of ``chunks`` (headings aside), best first."""
        asked = content_words(question)
        weights = {word: self.idf(word) for word in sorted(asked)}  # sorted: the same float sums in every process
        code_words = inline_code_words(question, [c.chunk.text for c in chunks])  # "is" in "What does the is operator do?"
        for pattern in code_words:  # each counts as much as an average content word of the question
            weights[pattern.pattern] = sum(weights.values()) / len(weights) if weights else 1.0
        total = sum(weights.values()) or 1.0
        kind = question_kind(question)
        howto = kind == "howto"
        defines = defining_pattern(question) if kind == "definition" else stating_pattern(question)
        does = does_asked_verb(question) if howto else None
        found: list[tuple[float, Candidate]] = []
        for retrieved in chunks:
            chunk = retrieved.chunk
            units = self.units.units(chunk.id)
            if not units:
                continue
            cosines = self.units.vectors(chunk.id) @ query  # (m,)
            for i, unit in enumerate(units):
                if unit.kind == "heading":
                    continue
                text = chunk.text[unit.start: unit.end]
                matched = sorted(asked & content_words(text)) + [p.pattern for p in code_words if p.search(text)]
                score = float(cosines[i]) + self.config.lexical_weight * sum(weights[w] for w in matched) / total
                if is_fragment(unit, text, chunk.text, chunk.metadata.get("start", 0) > 0):
                    score -= FRAGMENT_PENALTY
                if defines is not None and defines.search(text):
                    score += DEFINITION_BONUS  # "Albedo is ..." for "What is albedo?", "The albedo of Earth is ..."
                if howto:
                    score += HOWTO_BONUS * ((code_unit(units, i, chunk.text) is not None) + ("`" in text)
                                            + bool(_INSTRUCTION.match(text)))  # "To do floor division ..., use `//`"
                    if does is not None and does(text, under_signature(units, i, chunk.text)):
                        score += HOWTO_VERB_BONUS  # "Shuffle the sequence x in place." under "shuffle(x)"
                elif unit.kind == "code":
                    score -= CODE_PENALTY
                start = unit.start + label_length(text, chunk.text, unit.start) if unit.kind == "sentence" else unit.start
                found.append((score, Candidate(retrieved, i, SupportingSentence(chunk.text[start: unit.end], chunk.id,
                                                                                start, unit.end, score, unit.kind))))
        found.sort(key=lambda pair: -pair[0])
        ranked: dict[str, Candidate] = {}  # overlapping chunks hold some sentences twice: the best-scoring copy stays
        for _, candidate in found:
            ranked.setdefault(" ".join(candidate.sentence.text.split()), candidate)
        return list(ranked.values())

    def support(self, question: str, chunks: Sequence[RetrievedChunk], query: np.ndarray) -> list[SupportingSentence]:
        """The supporting sentences: the best ``support_sentences`` units, each followed by the code block
        it introduces; [] when the question names a word no chunk mentions (:meth:`_mentioned`), or the best scores
        below ``min_support_score``, or holds no number (or is code) for a question that asks for one."""
        return self._supports(question, chunks, query)[0]

    def _supports(self, question: str, chunks: Sequence[RetrievedChunk], query: np.ndarray
                  ) -> tuple[list[SupportingSentence], SupportingSentence | None]:
        """:meth:`support`, and the sentence to show before the first support when that support follows from the best
        sentence (:mod:`gem_rag.rag.follow_ups`: a how-to problem's solution, a why-question fact's reason), else None.
        Code that follows from it (its example, the block that cut it in two) comes after it, as an introduced block
        does."""
        if any(not self._mentioned(word, chunks) for word in named_words(question)):
            return [], None  # "What is the albedo of Mars?": no retrieved text names Mars
        ranked = self.candidates(question, chunks, query)
        holds_answer = answer_test(question)
        if holds_answer is not None:
            ranked = self._answer_first(ranked, holds_answer)
        platform = asked_platform(question)
        if platform is not None:  # "... on windows": another system's instructions are no answer, however well they score
            ranked = self._answer_first(ranked, lambda text: bool(platform.search(text)), window=len(ranked))
        if not ranked or ranked[0].sentence.score < self.config.min_support_score:
            return [], None
        best = ranked[0].sentence
        if asks_for_number(question) and (best.kind == "code" or not holds_asked_number(question, best.text)):
            return [], None  # "How many aardvarks live in zoos?" is not answered by "... live for up to 23 years"
        kind = question_kind(question)
        lead = (solution(self.units, ranked[0]) if kind == "howto"  # a sentence, shown first
                else reason(self.units, ranked[0]) if kind == "why" else None)
        follow_code = ((interrupting_code(self.units, ranked[0]) or example_code(self.units, ranked[0]))
                       if kind == "howto" and lead is None else None)  # code, shown after the best sentence
        if lead is not None:
            ranked = [lead] + ranked[1:]
        elif kind == "why" and not gives_reason(best.text):  # the best of the top units that gives a reason
            ranked = self._answer_first(ranked, gives_reason)
        chosen: list[SupportingSentence] = []
        for candidate in ranked[: self.config.support_sentences]:
            chosen.append(candidate.sentence)
            code = (follow_code.sentence if follow_code is not None and candidate is ranked[0]
                    else self._introduced_code(candidate))
            if code is not None and code not in chosen:
                chosen.append(code)  # a sentence, then the code it leads to, as an introduced block is shown
        return chosen, best if lead is not None else None

    def _mentioned(self, word: str, chunks: Sequence[RetrievedChunk]) -> bool:
        """Whether a chunk mentions the name ``word`` (or its plural or possessive): written with its first letter
        upper-case anywhere in the chunk or its title ("JSON" mentions "Json"), or in any case in its prose ("python"
        mentions "Python"; "mars" in a code example does not mention "Mars")."""
        stem = word[:-1] if len(word) > 4 and word.endswith("s") else word  # "Aardvarks" -> "Aardvark"
        tail = r"(?:'?s|es)?(?!\w)"
        named = re.compile(r"(?<!\w)" + re.escape(stem[0].upper()) + "(?i:" + re.escape(stem[1:]) + tail + ")")
        any_case = re.compile(r"(?<!\w)" + re.escape(stem) + tail, re.IGNORECASE)
        for retrieved in chunks:
            text = retrieved.chunk.text
            if named.search(text) or named.search(str(retrieved.chunk.metadata.get("title", ""))):
                return True
            if any(any_case.search(text[u.start: u.end]) for u in self.units.units(retrieved.chunk.id) if u.kind != "code"):
                return True
        return False

    def _answer_first(self, ranked: list[Candidate], holds_answer: Callable[[str], bool],
                      window: int = TYPED_CANDIDATES) -> list[Candidate]:
        """``ranked`` with the best of its first ``window`` units that holds the kind of answer asked for (and
        scores at least ``min_support_score``) moved first: "Where do aardvarks live?" is answered by "... found in
        sub-Saharan Africa", not by "Aardvarks live for up to 23 years". Unchanged when none does."""
        for i, candidate in enumerate(ranked[:window]):
            if candidate.sentence.score < self.config.min_support_score:
                break
            if holds_answer(candidate.sentence.text):
                return [candidate] + ranked[:i] + ranked[i + 1:]
        return ranked

    def _introduced_code(self, candidate: Candidate) -> SupportingSentence | None:
        """The code that goes with ``candidate`` (see :func:`_code_unit`) as a supporting sentence."""
        if candidate.sentence.kind == "code":
            return None
        chunk = candidate.chunk.chunk
        code = code_unit(self.units.units(chunk.id), candidate.index, chunk.text)
        if code is None:
            return None
        return unit_support(chunk, code, candidate.sentence.score, kind="code")  # a signature heading is code too

    def read(self, question: str, chunks: Sequence[RetrievedChunk], query: np.ndarray | None, params
             ) -> Iterator[SupportEvent | TokenEvent | ReadResult]:
        """Events (the support, then the answer's text) and, last, the ReadResult."""
        abstain = self.generator.prompt.abstain_phrase
        supporting, lead = self._supports(question, chunks, query) if chunks and query is not None else ([], None)
        if not supporting:
            yield TokenEvent(abstain)
            yield ReadResult(abstain, True, "abstained")
            return
        antecedent = lead or self._antecedent(supporting[0], chunks)
        if antecedent is not None:
            supporting.insert(1, antecedent)
        yield SupportEvent(supporting)
        kind = question_kind(question)
        code = next((s for s in supporting if s.kind == "code"), None)
        sentence = as_answer(f"{antecedent.text} {supporting[0].text}" if antecedent else supporting[0].text)
        names = re.findall(r"`([^`\s]+)`", supporting[0].text)  # "The `continue` statement ...": show its line
        shown = lines_through_name(_indented(code, chunks), CODE_LINES, names) if code is not None else ""
        if code is not None and _introduces(supporting[0], code, chunks):
            sentence += "\n" + shown  # "A tuple consists of ... commas, for instance:" shows the example too
        if kind == "howto" and code is not None:
            result = ReadResult(shown, False, "code", supporting)
        elif kind in ("definition", "why", "howto"):
            result = ReadResult(sentence, False, "sentence", supporting)
        else:
            result = yield from self._short_answer(question, supporting, antecedent, sentence, params)
        if result.how != "span":
            yield TokenEvent(result.answer)
        result.answer_chunk_ids = list(dict.fromkeys(s.chunk_id for s in supporting))
        yield result

    def _antecedent(self, best: SupportingSentence, chunks: Sequence[RetrievedChunk]) -> SupportingSentence | None:
        """The sentence right before ``best`` in its chunk when ``best`` opens with a pronoun that refers to it
        ("It is the basis for Coordinated Universal Time" after "International Atomic Time (TAI) is ..."): the
        answer shows both, or a person cannot tell what "it" is. None otherwise, and when that sentence is a fragment
        cut at the chunk's start (its tail explains nothing)."""
        if best.kind == "code" or not _PRONOUN_START.match(best.text):
            return None
        chunk = _chunk_of(best, chunks)
        if chunk is None:
            return None
        units = self.units.units(chunk.id)
        i = next((j for j, unit in enumerate(units) if unit.start <= best.start < unit.end), 0)
        if i == 0 or units[i - 1].kind not in ("sentence", "item"):
            return None
        before = units[i - 1]
        if is_fragment(before, chunk.text[before.start: before.end], chunk.text, chunk.metadata.get("start", 0) > 0):
            return None
        return unit_support(chunk, before, best.score)

    def _short_answer(self, question: str, supporting: list[SupportingSentence], antecedent: SupportingSentence | None,
                      sentence: str, params) -> Generator[TokenEvent, None, ReadResult]:
        """The model's short answer from the supporting sentences (the antecedent aside), streamed; ``sentence``
        (the best supporting sentence as an answer, after its antecedent) when the sentences do not contain it (or
        the model abstains on them)."""
        contexts = [" ".join(s.text.split()) for s in supporting if s.kind != "code" and s is not antecedent] \
            or [supporting[0].text]  # without the antecedent: with it the model wrote fewer short answers
        run = self.generator.run(question, contexts, replace(params, max_new_tokens=min(params.max_new_tokens,
                                                                                       SHORT_ANSWER_TOKENS)))
        pieces: list[str] = []
        try:
            for piece in run:
                pieces.append(piece)
        finally:
            run.close()
        raw = "".join(pieces)
        result = run.result
        assert result is not None  # set once the run is drained
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        answer, abstained = self.generator.prompt.postprocess(raw, question)
        grounded = self.generator.prompt.grounded_in(contexts, question, spans_only=True)
        answer = whole_list(tidy_span(answer), contexts)  # "Windows" -> "Windows, macOS, and Unix"
        if not abstained and answer and grounded(raw) and stands_alone(answer, contexts, asks_for_number(question)):
            yield TokenEvent(answer)
            return ReadResult(answer, False, "span", supporting, raw, usage, run.first_token_s)
        return ReadResult(sentence, False, "sentence", supporting, raw, usage, run.first_token_s)


def _chunk_of(unit: SupportingSentence, chunks: Sequence[RetrievedChunk]):
    """The retrieved chunk ``unit`` comes from, or None."""
    return next((c.chunk for c in chunks if c.chunk.id == unit.chunk_id), None)


def _introduces(sentence: SupportingSentence, code: SupportingSentence, chunks: Sequence[RetrievedChunk]) -> bool:
    """True when ``sentence`` ends in ":" and ``code`` is the block right after it in its chunk."""
    chunk = _chunk_of(sentence, chunks)
    return (chunk is not None and code.chunk_id == sentence.chunk_id and sentence.text.rstrip().endswith(":")
            and code.start >= sentence.end and not chunk.text[sentence.end: code.start].strip())


def _indented(unit: SupportingSentence, chunks: Sequence[RetrievedChunk]) -> str:
    """``unit``'s text from the start of its first line, so that line keeps its indent (a unit starts at its
    first non-blank character, and a code block's later lines keep theirs)."""
    chunk = _chunk_of(unit, chunks)
    if chunk is None:
        return unit.text
    line_start = chunk.text.rfind("\n", 0, unit.start) + 1
    lead = chunk.text[line_start: unit.start]
    return lead + unit.text if not lead.strip() else unit.text
