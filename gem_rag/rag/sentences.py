"""A chunk's reading units: its sentences, list items and code blocks, with character offsets.

The reader answers from units: it embeds them (in the chunk's own forward pass, see
``GemModel.embed_with_units``), finds the ones that answer a question and shows them highlighted in the
chunk. Units are what a person reads as one statement:

- prose is split into sentences at ``.``, ``!`` or ``?`` followed by space and a capital, digit, quote or
  backtick, except after common abbreviations ("e.g.", "Dr.") and initials ("B.C.");
- a list item (``* x``, ``- x``, ``1. x``) is one unit with its continuation lines;
- an indented block, a ``>>>`` session (or the part of one a chunk's start cut: its ``...`` continuation lines
  mark it) or a fenced block is one ``code`` unit;
- a short line of its own without final punctuation is a ``heading``.

Two properties of a unit inside its chunk serve the reader: :func:`label_length` (caption lines left above a
sentence) and :func:`is_fragment` (the tail of a unit cut at the chunk's start).

Example:
    >>> [(u.kind, text[u.start:u.end]) for u in split_units(text := "Intro\\n\\nRun it:\\n\\n   python3 x.py\\n")]
    [('heading', 'Intro'), ('sentence', 'Run it:'), ('code', 'python3 x.py')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("sentence", "item", "code", "heading")
_ABBREVIATIONS = frozenset("e.g i.e etc vs mr mrs ms dr st jr sr no fig approx ca cf al inc ltd co "
                           "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k lit".split())  # "lit." literally
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9\"'`(\[*])")
LIST_MARKER = re.compile(r"^\s*(?:[*\-+•]|\d+[.)]|#\.)\s+")  # a list item's "* ", "4. ", "#. "
FENCE = re.compile(r"^\s*(?:```|~~~)")  # a Markdown code fence
_CONTINUATION = re.compile(r"^\s+\.\.\.(?:\s|$)")  # an indented "... " line: a Python session's continuation prompt
_CLOSING = re.compile(r"[.!?:;,)\]\"']\s*$")  # a line that ends a sentence or a clause
_ENDED = re.compile(r"[.!?:;)\]\"'`*]\s*$")  # a sentence that ends (not cut off mid-clause)
LABEL_MAX_WORDS = 8


@dataclass(frozen=True)
class Unit:
    """``text[start:end]`` of the chunk is one sentence, list item, code block or heading."""

    start: int
    end: int
    kind: str


def split_units(text: str) -> list[Unit]:
    """The units of ``text`` in order (blank and markup-only stretches belong to none)."""
    units: list[Unit] = []
    for start, end, block in _blocks(text):
        lines = block.split("\n")
        if _is_code(lines):
            units.append(_trimmed(text, start, end, "code"))
        elif len(lines) == 1 and _is_heading(block):
            units.append(_trimmed(text, start, end, "heading"))
        elif any(LIST_MARKER.match(line) for line in lines):
            units.extend(_items(text, start, lines))
        else:
            units.extend(_sentences(text, start, end))
    return [u for u in units if u.end > u.start]


def _blocks(text: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of blank-line-separated blocks; a fenced block is one block, blank lines and all."""
    blocks: list[tuple[int, int, str]] = []
    pos, start, fenced = 0, None, False
    for line in text.splitlines(keepends=True):
        blank = not line.strip()
        if FENCE.match(line):
            fenced = not fenced
        if blank and not fenced:
            if start is not None:
                blocks.append((start, pos, text[start:pos].rstrip("\n")))
                start = None
        elif start is None:
            start = pos
        pos += len(line)
    if start is not None:
        blocks.append((start, pos, text[start:pos].rstrip("\n")))
    return blocks


def _is_code(lines: list[str]) -> bool:
    first = lines[0]
    if FENCE.match(first) or first.lstrip().startswith((">>>", "$ ", "...")):
        return True
    # a session cut at the chunk's start: "('banana')\n    3\n    >>> fruits.index(...)", or "line in f:\n   ...
    # print(line)\n   This is the first line of the file." (its output is code too, not sentences)
    if any(line.lstrip().startswith(">>> ") or _CONTINUATION.match(line) for line in lines):
        return True
    return all(line.startswith(("  ", "\t")) for line in lines if line.strip()) and not LIST_MARKER.match(first)


def _is_heading(line: str) -> bool:
    stripped = line.strip()
    return 0 < len(stripped.split()) <= 12 and not stripped.endswith((".", ":", "!", "?", ",", ";"))


def _trimmed(text: str, start: int, end: int, kind: str) -> Unit:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    return Unit(start + lead, start + len(piece.rstrip()), kind)


def _items(text: str, start: int, lines: list[str]) -> list[Unit]:
    units: list[Unit] = []
    pos, item_start = start, None
    for line in lines:
        if LIST_MARKER.match(line) and item_start is not None:
            units.append(_trimmed(text, item_start, pos - 1, "item"))
            item_start = None
        if item_start is None:
            item_start = pos
        pos += len(line) + 1
    if item_start is not None:
        units.append(_trimmed(text, item_start, pos - 1, "item"))
    return units


def _sentences(text: str, start: int, end: int) -> list[Unit]:
    units: list[Unit] = []
    sentence_start = start
    for match in _BOUNDARY.finditer(text, start, end):
        before = text[sentence_start: match.start()].split()
        last = before[-1].lower().rstrip(".").lstrip("([\"'") if before else ""  # "(lit." -> "lit"
        if last in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)*[a-z]", last) and len(last) <= 3:
            continue  # "e.g. Foo", "B.C. The", "J. Smith"
        cut = match.end() - len(match.group()) + len(match.group().rstrip())
        units.append(_trimmed(text, sentence_start, cut, "sentence"))
        sentence_start = match.end()
    units.append(_trimmed(text, sentence_start, end, "sentence"))
    return units


def label_length(text: str, chunk_text: str, start: int) -> int:
    """How many characters of label lines open the sentence ``text`` (at ``start`` in ``chunk_text``): lines that
    start a line, have at most LABEL_MAX_WORDS words and no closing punctuation, and are followed by a line that
    starts upper-case, as image captions left above a paragraph are ("Aardvark resting\nEntrance to burrow\n
    Aardvarks live ..."). They are not the sentence: its shown text and highlight start after them."""
    cut = 0
    while (start + cut == 0 or chunk_text[start + cut - 1] == "\n") and "\n" in text[cut:]:
        line, rest = text[cut:].split("\n", 1)
        if len(line.split()) > LABEL_MAX_WORDS or _CLOSING.search(line) or not rest.lstrip()[:1].isupper():
            break
        cut += len(line) + 1 + len(rest) - len(rest.lstrip())
    return cut


def is_fragment(unit: Unit, text: str, chunk_text: str, continues: bool = False) -> bool:
    """True for a unit cut by the chunk's boundary. At the chunk's start: a sentence that starts lower-case or with
    punctuation, or, first in a chunk that ``continues`` its document (not its first chunk), one that starts with a
    digit (the chunk starts at an overlap offset: "11th century This abacus ...") or whose backticks or parentheses
    do not pair (``Control-D` on Unix, `Control-Z` on Windows) at the ...``); or a code session
    whose first line is neither a prompt (``>>>``, ``$``, ``...``), a fence nor indented, at the chunk's very start
    (``.close()`` / ``>>> f.read()`` is the end of the previous chunk's example, not an answer). At its end: a
    sentence that does not end (no closing punctuation), last in the chunk or in its paragraph (the chunk stops
    mid-sentence, or the page's formula was stripped: "The arithmetic mean is" before a blank line)."""
    first = not chunk_text[: unit.start].strip()
    if unit.kind != "code":
        unpaired = text.count("`") % 2 == 1 or text.count(")") > text.count("(")
        cut_number = continues and first and unit.kind == "sentence" and text[:1].isdigit()  # "11th century This ..."
        cut_end = (unit.kind == "sentence" and not _ENDED.search(text)
                   and (not chunk_text[unit.end:].strip() or chunk_text[unit.end:].lstrip(" \t").startswith("\n\n")))
        return (text[:1].islower() or text[:1] in ".,;:)*`" or cut_end
                or (continues and first and (unpaired or cut_number)))
    at_line_start = unit.start == 0 or chunk_text[unit.start - 1] == "\n"
    return first and at_line_start and not text.startswith((">>>", "$", "...", "```", "~~~"))
