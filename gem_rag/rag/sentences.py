"""A chunk's reading units: its sentences, list items and code blocks, with character offsets.

The reader answers from units: it embeds them (in the chunk's own forward pass, see
``GemModel.embed_with_units``), finds the ones that answer a question and shows them highlighted in the
chunk. Units are what a person reads as one statement:

- prose is split into sentences at ``.``, ``!`` or ``?`` followed by space and a capital, digit, quote or
  backtick, except after common abbreviations ("e.g.", "Dr.") and initials ("B.C.");
- a list item (``* x``, ``- x``, ``1. x``) is one unit with its continuation lines;
- an indented block, a ``>>>`` session or a fenced block is one ``code`` unit;
- a short line of its own without final punctuation is a ``heading``.

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
    if any(line.lstrip().startswith(">>> ") for line in lines):
        return True  # a session cut at the chunk's start: "('banana')\n    3\n    >>> fruits.index(...)"
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
