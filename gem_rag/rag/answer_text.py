"""How the sentence reader's answers read: spans trimmed to what they say, sentences joined onto one line and
cleaned of the residue text extraction leaves in them, code blocks shown by their first lines.

These change the answer a person reads, never the supporting sentence: its text and character offsets stay the
source's, so the page highlights exactly what the document says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gem_rag.rag.sentences import FENCE, LIST_MARKER

NUMBER_WORDS = (r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|"
                r"eighty|ninety|hundreds?|thousands?|millions?|billions?|dozens?")
NUMBER = re.compile(rf"\d|\b(?:{NUMBER_WORDS})\b", re.IGNORECASE)
DIGIT = re.compile(r"\d")
_DANGLING = frozenset("in of at on by to for from with and or the a an as than".split())
# A clause inside brackets whose last word introduces something that is not there: Wikipedia's extracted text
# keeps "(TAI, from the French name )" and "soroban (, lit. )" where the foreign-script words were dropped.
_ORPHAN_CLAUSE = re.compile(r"[,;]\s*[^,;()]*?\b(?:name|lit\.|literally|from|meaning|pronounced|or|also)\s*(?=\))",
                            re.IGNORECASE)
_EMPTY_BRACKETS = re.compile(r"\s+\(\s*[,;:]?\s*\)")  # "soroban ( )", never a call's "f()"
_OPENING_PUNCTUATION = re.compile(r"\(\s*(?:[,;]\s*)+")


def tidy_span(span: str) -> str:
    """A span without the punctuation and function words it was cut at: "London Zoo in" -> "London Zoo"."""
    words = span.strip(" ,;:").split()
    while len(words) > 1 and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words).strip(" ,;:")


_NOT_AN_ITEM = _DANGLING | frozenset("is are was were be has have had will can could would may not it they this "
                                     "that".split())  # "1971 and was" is no list
_LIST_TAIL = re.compile(r"(?:,\s+[^\s,.;:]+(?:\s+[^\s,.;:]+)?)*,?\s+(?:and|or)\s+([^\s,.;:]+)")


def whole_list(span: str, contexts: Sequence[str]) -> str:
    """``span`` extended to the end of the list it starts in its context ("available on Windows" in "... available on
    Windows, macOS, and Unix operating systems" -> "available on Windows, macOS, and Unix"); unchanged when no
    list follows it (the list's last item is a word, not a function word: "1971 and was" is no list)."""
    pattern = re.compile(r"\s+".join(re.escape(word) for word in span.split()), re.IGNORECASE)
    for context in contexts:
        found = pattern.search(context)
        if found is None:
            continue
        tail = _LIST_TAIL.match(context, found.end())
        if tail is not None and tail.group(1).lower() not in _NOT_AN_ITEM:
            rest = context[found.end(): tail.end()]  # ", macOS, and Unix" or " and termites"
            return span + (" " if rest[0].isspace() else "") + " ".join(rest.split())
    return span


def stands_alone(span: str, contexts: Sequence[str], asks_number: bool = True) -> bool:
    """True when ``span`` says something without its sentence: it holds digits, code, a name (a capitalised word
    that opens no context sentence) or, when the question asks for a number (``asks_number``), a number word.
    "highly variable" for "What is the albedo of snow?" does not: the sentence it comes from ("Snow albedo is highly
    variable, ranging from as high as 0.9 ...") answers instead; nor does "two objects" for "What does the is
    operator compare?", nor a bare "Yes" or "No" (the sentence says why)."""
    if span.strip(" .!").lower() in ("yes", "no"):
        return False
    if DIGIT.search(span) or "`" in span or asks_number and NUMBER.search(span):
        return True
    openers = {context.split()[0].strip("\"'(") for context in contexts if context.split()}
    return any(word[:1].isupper() and word.strip("\"'(,.") not in openers for word in span.split())


def first_lines(text: str, n: int) -> str:
    """The first ``n`` lines of a code block, without its fences (```` ```python ````) and common indent."""
    lines = [line for line in text.strip("\n").split("\n") if line.strip() and not FENCE.match(line)] or [text]
    indent = min(len(line) - len(line.lstrip()) for line in lines[:n])
    return "\n".join(line[indent:] for line in lines[:n])


def lines_through_name(text: str, n: int, names: Sequence[str], limit: int = 8) -> str:
    """:func:`first_lines` of a code block, or, when those ``n`` lines hold none of ``names`` (what its sentence
    writes as inline code, "The `continue` statement ..."), the lines through the first that holds one, up to
    ``limit`` lines."""
    lines = first_lines(text, limit).split("\n")
    named = [re.compile(rf"(?<!\w){re.escape(name)}(?!\w)") for name in names]
    holds = next((i for i, line in enumerate(lines) if any(pattern.search(line) for pattern in named)), None)
    if holds is None or holds < n:
        return first_lines(text, n)  # dedented by its own n lines, as without a name
    return "\n".join(lines[: holds + 1])


def as_answer(text: str) -> str:
    """A sentence as an answer: its lines joined, without a list item's marker ("4. The average albedo ..." ->
    "The average albedo ...": out of its list the number means nothing, and at a chunk's start it can be the tail
    of a number cut by the chunk boundary, "0.|4.") and without bracketed residue: "International Atomic Time (TAI,
    from the French name ) is ..." -> "International Atomic Time (TAI) is ..."."""
    text = LIST_MARKER.sub("", " ".join(text.split()))
    text = _OPENING_PUNCTUATION.sub("(", _ORPHAN_CLAUSE.sub("", text))
    return _EMPTY_BRACKETS.sub("", text)
