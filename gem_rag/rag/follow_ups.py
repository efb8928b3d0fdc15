"""Where an answer continues past its best unit, inside the unit's chunk: the code a sentence introduces or the API
signature it describes, the solution sentence after a how-to problem, the code block a sentence was cut by, the
example that follows ("For example:" and its code), and the reason after a why-question's fact. The sentence
reader (:mod:`gem_rag.rag.sentence_reader`) calls these on its ranked candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gem_rag.rag.types import RetrievedChunk, SupportingSentence
from gem_rag.rag.unit_index import UnitIndex

_REASON = re.compile(r"\b(?:because|since|so\s+that|in\s+order\s+to|ensures?|avoids?|prevents?|otherwise|due\s+to|"
                     r"the\s+reason|the\s+advantage|this\s+means)\b|,\s+as\s+(?:the|a|an|it|they|this|these|its|their)\b",
                     re.IGNORECASE)  # a sentence that gives a reason ("..., as the high water table precludes digging")
_EXAMPLE_LEAD = re.compile(r"^\W*(?:for\s+(?:example|instance)|an?\s+example|here\s+is|here's)\b[^.]{0,60}:\s*$",
                           re.IGNORECASE)  # "For example:", "Here is an example of ...:"
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*$")  # "list.reverse()", "json.dump(obj, fp, *, skipkeys=False)"


@dataclass
class Candidate:
    """A unit of a retrieved chunk as the reader ranks it."""

    chunk: RetrievedChunk
    index: int  # the unit's index in its chunk
    sentence: SupportingSentence


def solution(units: UnitIndex, best: Candidate) -> Candidate | None:
    """The sentence after ``best`` in its chunk when ``best`` states a problem and that sentence solves it:
    ``best`` holds no code and introduces none, the next unit is a sentence that holds code (backticks) or
    introduces a code block ("Many classes like to create objects with instances customized to a specific
    initial state. Therefore a class may define a special method named `__init__()`, like this:"). None
    otherwise. It takes ``best``'s score: it is found through ``best``."""
    chunk = best.chunk.chunk
    chunk_units = units.units(chunk.id)
    if "`" in best.sentence.text or code_unit(chunk_units, best.index, chunk.text) is not None:
        return None
    following = next_sentence(units, best)
    if following is None or ("`" not in following.sentence.text
                             and code_unit(chunk_units, following.index, chunk.text) is None):
        return None
    return following


def next_sentence(units: UnitIndex, best: Candidate) -> Candidate | None:
    """The sentence right after the sentence ``best`` in its chunk, with ``best``'s score; None when either
    is not a sentence or ``best`` is the chunk's last unit."""
    chunk = best.chunk.chunk
    chunk_units = units.units(chunk.id)
    after = best.index + 1
    if best.sentence.kind != "sentence" or after >= len(chunk_units) or chunk_units[after].kind != "sentence":
        return None
    return Candidate(best.chunk, after, unit_support(chunk, chunk_units[after], best.sentence.score))


def interrupting_code(units: UnitIndex, best: Candidate) -> Candidate | None:
    """The code block right before ``best`` in its chunk when ``best`` continues the sentence that block cut in
    two (it opens lower-case: "That means that by adding this code at the end of your module:: <code> you can
    make the file usable as a script ..."): for a how-to question that code is what to do. None otherwise."""
    chunk = best.chunk.chunk
    chunk_units = units.units(chunk.id)
    before = best.index - 1
    if (best.sentence.kind != "sentence" or not chunk.text[chunk_units[best.index].start:][:1].islower() or before < 0
            or chunk_units[before].kind != "code"):
        return None
    return Candidate(best.chunk, before, unit_support(chunk, chunk_units[before], best.sentence.score, kind="code"))


def example_code(units: UnitIndex, best: Candidate) -> Candidate | None:
    """The code block of the example that follows ``best`` in its chunk when ``best`` holds no code: one or two
    sentences on, a sentence that announces an example ("For example:") and the block after it ("The most useful
    form is to specify a default value for one or more arguments. This creates a function that ... For example:"
    <code>): for a how-to question that code is how. None otherwise. It takes ``best``'s score."""
    chunk = best.chunk.chunk
    chunk_units = units.units(chunk.id)
    if best.sentence.kind != "sentence" or "`" in best.sentence.text:
        return None
    for i in range(best.index + 1, min(best.index + 3, len(chunk_units) - 1)):
        if chunk_units[i].kind != "sentence":
            return None
        if _EXAMPLE_LEAD.match(chunk.text[chunk_units[i].start: chunk_units[i].end]) and chunk_units[i + 1].kind == "code":
            return Candidate(best.chunk, i + 1, unit_support(chunk, chunk_units[i + 1], best.sentence.score, kind="code"))
    return None


def gives_reason(text: str) -> bool:
    """Whether a sentence gives a reason ("because ...", "so that ...", "..., as the high water table ...")."""
    return bool(_REASON.search(text))


def reason(units: UnitIndex, best: Candidate) -> Candidate | None:
    """The sentence after ``best`` in its chunk when a "why" question's best sentence states the fact without a
    reason and that sentence gives one ("... however, lists are not efficient for this purpose. While appends
    ... are fast, doing inserts or pops from the beginning of a list is slow (because all of the other elements
    have to be shifted by one)."). None otherwise. It takes ``best``'s score."""
    if gives_reason(best.sentence.text):
        return None
    following = next_sentence(units, best)
    return following if following is not None and gives_reason(following.sentence.text) else None


def code_unit(units, i: int, chunk_text: str):
    """The code that goes with unit ``i``: the code block right after it when it introduces one ("... run:"),
    or the API signature it describes ("list.reverse()" above "Reverse the elements of the list in place.")."""
    text = chunk_text[units[i].start: units[i].end]
    if text.rstrip().endswith(":") and i + 1 < len(units) and units[i + 1].kind == "code":
        return units[i + 1]
    return units[i - 1] if under_signature(units, i, chunk_text) else None


def under_signature(units, i: int, chunk_text: str) -> bool:
    """True when unit ``i`` sits right under an API signature heading ("list.reverse()")."""
    return (i > 0 and units[i - 1].kind == "heading"
            and bool(_SIGNATURE.match(chunk_text[units[i - 1].start: units[i - 1].end])))


def unit_support(chunk, unit, score: float, kind: str | None = None) -> SupportingSentence:
    """``unit`` of ``chunk`` (its whole span) as a supporting sentence with ``score`` (of ``kind``, else the unit's)."""
    return SupportingSentence(chunk.text[unit.start: unit.end], chunk.id, unit.start, unit.end, score,
                              kind or unit.kind)
