"""SentenceReader, the default reader: find the sentences that answer the question inside the retrieved
chunks, then give the answer a person accepts, with those sentences as its support.

1. **Find.** Every unit (sentence, list item, code block) of the retrieved chunks was embedded at indexing
   in its chunk's forward pass. A unit scores its cosine with the question's vector, plus ``lexical_weight``
   times the share of the question's content words it contains (each word weighted by its rarity in the
   index), less ``FRAGMENT_PENALTY`` for a fragment cut at a chunk's start and, for other questions than
   how-to ones, ``CODE_PENALTY`` for a code block (how-to questions favour sentences that introduce or
   hold code instead, and by ``HOWTO_VERB_BONUS`` the one that does the question's verb: an API entry's
   description opening with it, "Use `X` to <verb>"), plus ``DEFINITION_BONUS`` for a sentence that states
   what a "what is X?" or "what is the X of Y?" question asks (``question_types.defining_pattern``,
   ``stating_pattern``). The best unit is the support, with the code block right after it when it introduces
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
   reason, followed by one that does ("because ..."), is supported by that next sentence. (Chosen on the development set,
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
from gem_rag.rag.answer_text import as_answer, first_lines, stands_alone, tidy_span
from gem_rag.rag.bm25 import STEM, tokenize
from gem_rag.rag.config import RagConfig
from gem_rag.rag.question_types import (answer_test, asked_platform, asks_for_number, defining_pattern,
                                        does_asked_verb, holds_asked_number, named_words, question_kind, stating_pattern)
from gem_rag.rag.sentences import is_fragment, label_length
from gem_rag.rag.types import RetrievedChunk, SupportEvent, SupportingSentence, TokenEvent
from gem_rag.rag.unit_index import UnitIndex

_PRONOUN_START = re.compile(r"^\W*(?:it|this|that|these|those|they|he|she|its|their|his|her)\s+\w",
                            re.IGNORECASE)  # "It is the basis for ...": who "it" is, is in the sentence before
_REASON = re.compile(r"\b(?:because|since|so\s+that|in\s+order\s+to|ensures?|avoids?|prevents?|otherwise|due\s+to|"
                     r"the\s+reason|the\s+advantage|this\s+means)\b", re.IGNORECASE)  # a sentence that gives a reason
_EXAMPLE_LEAD = re.compile(r"^\W*(?:for\s+(?:example|instance)|an?\s+example|here\s+is|here's)\b[^.]{0,60}:\s*$",
                           re.IGNORECASE)  # "For example:", "Here is an example of ...:"
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*$")  # "list.reverse()", "json.dump(obj, fp, *, skipkeys=False)"
_STOPWORDS = frozenset("a an the is was are were be been of in on at by to for from do does did how what why when "
                       "where who whom which can could should would will i you we it its this that these those with "
                       "and or as my me your there their use using get".split())
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


@dataclass
class Candidate:
    chunk: RetrievedChunk
    index: int  # the unit's index in its chunk
    sentence: SupportingSentence


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
                score = float(cosines[i]) + self.config.lexical_weight * sum(
                    weights[w] for w in sorted(asked & content_words(text))) / total
                if is_fragment(unit, text, chunk.text, chunk.metadata.get("start", 0) > 0):
                    score -= FRAGMENT_PENALTY
                if defines is not None and defines.search(text):
                    score += DEFINITION_BONUS  # "Albedo is ..." for "What is albedo?", "The albedo of Earth is ..."
                if howto:
                    score += HOWTO_BONUS * ((_code_unit(units, i, chunk.text) is not None) + ("`" in text))
                    if does is not None and does(text, _under_signature(units, i, chunk.text)):
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
        """:meth:`support`, and the sentence to show before the first support when that support is the solution a
        how-to question's best sentence leads to (:meth:`_solution`), or the reason a "why" question's best sentence
        is followed by (:meth:`_reason`), else None."""
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
        solution = (self._solution(ranked[0]) or self._interrupting_code(ranked[0]) or self._example(ranked[0])
                    if kind == "howto"
                    else self._reason(ranked[0]) if kind == "why" else None)
        if solution is not None:
            ranked = [solution] + ranked[1:]
        chosen: list[SupportingSentence] = []
        for candidate in ranked[: self.config.support_sentences]:
            chosen.append(candidate.sentence)
            code = self._introduced_code(candidate)
            if code is not None and code not in chosen:
                chosen.append(code)
        return chosen, best if solution is not None else None

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

    def _solution(self, best: Candidate) -> Candidate | None:
        """The sentence after ``best`` in its chunk when ``best`` states a problem and that sentence solves it:
        ``best`` holds no code and introduces none, the next unit is a sentence that holds code (backticks) or
        introduces a code block ("Many classes like to create objects with instances customized to a specific
        initial state. Therefore a class may define a special method named `__init__()`, like this:"). None
        otherwise. It takes ``best``'s score: it is found through ``best``."""
        chunk = best.chunk.chunk
        units = self.units.units(chunk.id)
        if "`" in best.sentence.text or _code_unit(units, best.index, chunk.text) is not None:
            return None
        following = self._next_sentence(best)
        if following is None or ("`" not in following.sentence.text
                                 and _code_unit(units, following.index, chunk.text) is None):
            return None
        return following

    def _next_sentence(self, best: Candidate) -> Candidate | None:
        """The sentence right after the sentence ``best`` in its chunk, with ``best``'s score; None when either
        is not a sentence or ``best`` is the chunk's last unit."""
        chunk = best.chunk.chunk
        units = self.units.units(chunk.id)
        after = best.index + 1
        if best.sentence.kind != "sentence" or after >= len(units) or units[after].kind != "sentence":
            return None
        return Candidate(best.chunk, after, _unit_support(chunk, units[after], best.sentence.score))

    def _interrupting_code(self, best: Candidate) -> Candidate | None:
        """The code block right before ``best`` in its chunk when ``best`` continues the sentence that block cut in
        two (it opens lower-case: "That means that by adding this code at the end of your module:: <code> you can
        make the file usable as a script ..."): for a how-to question that code is what to do. None otherwise."""
        chunk = best.chunk.chunk
        units = self.units.units(chunk.id)
        before = best.index - 1
        if (best.sentence.kind != "sentence" or not chunk.text[units[best.index].start:][:1].islower() or before < 0
                or units[before].kind != "code"):
            return None
        return Candidate(best.chunk, before, _unit_support(chunk, units[before], best.sentence.score, kind="code"))

    def _example(self, best: Candidate) -> Candidate | None:
        """The code block of the example that follows ``best`` in its chunk when ``best`` holds no code: one or two
        sentences on, a sentence that announces an example ("For example:") and the block after it ("The most useful
        form is to specify a default value for one or more arguments. This creates a function that ... For example:"
        <code>): for a how-to question that code is how. None otherwise. It takes ``best``'s score."""
        chunk = best.chunk.chunk
        units = self.units.units(chunk.id)
        if best.sentence.kind != "sentence" or "`" in best.sentence.text:
            return None
        for i in range(best.index + 1, min(best.index + 3, len(units) - 1)):
            if units[i].kind != "sentence":
                return None
            if _EXAMPLE_LEAD.match(chunk.text[units[i].start: units[i].end]) and units[i + 1].kind == "code":
                return Candidate(best.chunk, i + 1, _unit_support(chunk, units[i + 1], best.sentence.score, kind="code"))
        return None

    def _reason(self, best: Candidate) -> Candidate | None:
        """The sentence after ``best`` in its chunk when a "why" question's best sentence states the fact without a
        reason and that sentence gives one ("... however, lists are not efficient for this purpose. While appends
        ... are fast, doing inserts or pops from the beginning of a list is slow (because all of the other elements
        have to be shifted by one)."). None otherwise. It takes ``best``'s score."""
        if _REASON.search(best.sentence.text):
            return None
        following = self._next_sentence(best)
        return following if following is not None and _REASON.search(following.sentence.text) else None

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
        code = _code_unit(self.units.units(chunk.id), candidate.index, chunk.text)
        if code is None:
            return None
        return _unit_support(chunk, code, candidate.sentence.score, kind="code")  # a signature heading is code too

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
        shown = first_lines(_indented(code, chunks), CODE_LINES) if code is not None else ""
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
        return _unit_support(chunk, before, best.score)

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
        answer = tidy_span(answer)
        if not abstained and answer and grounded(raw) and stands_alone(answer, contexts):
            yield TokenEvent(answer)
            return ReadResult(answer, False, "span", supporting, raw, usage, run.first_token_s)
        return ReadResult(sentence, False, "sentence", supporting, raw, usage, run.first_token_s)


def _code_unit(units, i: int, chunk_text: str):
    """The code that goes with unit ``i``: the code block right after it when it introduces one ("... run:"),
    or the API signature it describes ("list.reverse()" above "Reverse the elements of the list in place.")."""
    text = chunk_text[units[i].start: units[i].end]
    if text.rstrip().endswith(":") and i + 1 < len(units) and units[i + 1].kind == "code":
        return units[i + 1]
    return units[i - 1] if _under_signature(units, i, chunk_text) else None


def _under_signature(units, i: int, chunk_text: str) -> bool:
    """True when unit ``i`` sits right under an API signature heading ("list.reverse()")."""
    return i > 0 and units[i - 1].kind == "heading" and bool(_SIGNATURE.match(chunk_text[units[i - 1].start: units[i - 1].end]))


def _unit_support(chunk, unit, score: float, kind: str | None = None) -> SupportingSentence:
    """``unit`` of ``chunk`` (its whole span) as a supporting sentence with ``score`` (of ``kind``, else the unit's)."""
    return SupportingSentence(chunk.text[unit.start: unit.end], chunk.id, unit.start, unit.end, score,
                              kind or unit.kind)


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
