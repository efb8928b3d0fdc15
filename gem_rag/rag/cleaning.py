"""Text worth reading: what ingestion drops or rewrites before a document is chunked.

Reference lists, footnotes, external-link blocks and "see also" lists would otherwise compete in retrieval
and be read as answers (they share every name of the article and say nothing about it); reStructuredText
markup (roles, labels, index and toctree directives) would show up in answers and highlights.

Rules, in order:
- sections headed References, External links, Footnotes, Notes, Further reading, See also, Bibliography,
  Sources, Citations or Works cited are dropped with their subsections (wiki ``==X==``, Markdown ``#`` and
  reST underlined headings);
- reST: ``.. _label:`` targets and the bodies of index / toctree / highlight / author / module / only /
  testsetup directives are dropped; note / warning / seealso / version directives become a lead line ("Note:", "Changed in version 3.6:") and
  their body is un-indented; signatures (``.. function:: dump(obj, fp)``) keep their text; code-block bodies
  stay indented (they are code); roles become their text (``:func:`open``` -> ```open```, ``:ref:`text <x>```
  -> ``text``); a paragraph's closing ``::`` becomes ``:``; double backticks become single;
- reST cross-references to a bare label (``:ref:`typesmapping```), which Sphinx shows as the target's title
  that a document alone does not have: a "(see ...)" aside made of one goes ("the *dictionary* (see
  :ref:`typesmapping`)" -> "the *dictionary*"); elsewhere the label stays as it is ("See tut-classes for");
- headings become their bare title on a line of their own (underlines dropped);
- lines that are only a bullet or markup (``*``, ``|``, ``thumb|...``) are dropped; runs of blank lines shrink
  to one; in Markdown prose, empty parentheses left by stripped pronunciations (``Albedo () or``) go;
- a document's title (:func:`clean_title`) loses the same inline markup, its backticks and emphasis, and
  reST's ``---`` dash becomes an em dash (``:mod:`json` --- JSON encoder`` -> ``json — JSON encoder``).

``CLEANING_VERSION`` is part of an index's manifest: a change to these rules re-indexes cached folders.

Example:
    >>> clean_text("Intro.\\n\\n==References==\\n* Smith 2001\\n", ".md")
    'Intro.\\n'
"""

from __future__ import annotations

import re

CLEANING_VERSION = 3

BOILERPLATE_HEADINGS = frozenset({
    "references", "external links", "footnotes", "notes", "further reading", "see also", "bibliography",
    "sources", "citations", "works cited", "notes and references", "references and notes", "external link",
})
_DROP_DIRECTIVES = frozenset({"index", "toctree", "highlight", "sectionauthor", "moduleauthor", "module",
                              "currentmodule", "only", "testsetup", "testcleanup", "doctest", "raw", "include",
                              "tabularcolumns", "productionlist", "audit-event", "impl-detail", "rubric"})
_NOTE_DIRECTIVES = frozenset({"note", "warning", "seealso", "versionadded", "versionchanged", "deprecated",
                              "tip", "important", "caution", "hint", "attention"})
_NOTE_LEADS = {"versionadded": "New in version {}:", "versionchanged": "Changed in version {}:",
               "deprecated": "Deprecated since version {}:", "seealso": "See also:", "warning": "Warning:"}
_CODE_DIRECTIVES = frozenset({"code-block", "sourcecode", "code", "literalinclude"})
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_TARGET = re.compile(r"^\s*\.\.\s+_[^:]*:\s*\S*\s*$")
_COMMENT = re.compile(r"^\.\.(\s.*)?$")
_ROLE = re.compile(r":(?:[\w-]+:)?([\w-]+):`([^`]+)`")
_CODE_ROLES = frozenset({"func", "meth", "class", "mod", "data", "attr", "exc", "const", "obj", "keyword",
                         "option", "envvar", "file", "program", "samp", "command", "kbd", "mailheader", "token"})
_LINK = re.compile(r"`([^`<]+?)\s*<[^>`]+>`_{1,2}")
_TABLE_BORDER = re.compile(r"^\s*\+[-=+]+\+\s*$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_UNDERLINE = re.compile(r"^([=\-~^#*+\"'`])\1{2,}\s*$")
_WIKI_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_MD_HEADING = re.compile(r"^(#+)\s+(.*)$")
_EMPTY_PARENS = re.compile(r" \((?:\s|[;,])*\)")  # what a stripped pronunciation or template leaves
_BARE_REF = "\x00"  # marks a bare cross-reference label between two of these until the text-wide pass
_LABEL = re.compile(f"{_BARE_REF}([^{_BARE_REF}]*){_BARE_REF}")
_SEE_BARE_REF = re.compile(rf"\s*\((?:see|cf\.)(?:\s+also)?\s+{_LABEL.pattern}[^(){_BARE_REF}]*\)", re.IGNORECASE)
_RESIDUE = re.compile(r"^\s*(?:[*\-+#|]|\d+\.|thumb\|.*|upright.*)?\s*$")


def clean_text(text: str, suffix: str) -> str:
    """``text`` of a file with extension ``suffix`` (".md", ".rst", ...) without boilerplate and markup."""
    lines = text.splitlines()
    if suffix == ".rst":
        lines = _resolve_bare_references(_clean_rest(lines))
    lines = _drop_boilerplate_sections(lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        heading = _heading(lines, i)
        if _UNDERLINE.match(line.strip()) or _RESIDUE.match(line) and line.strip():
            continue
        if suffix == ".md" and not line.startswith((" ", "\t")):  # prose, not code: "Albedo () or" -> "Albedo or"
            line = _EMPTY_PARENS.sub("", line)
        # "==History==" / "# History" / reST "History" + underline -> "History", a paragraph of its own
        for piece in ("", heading[1], "") if heading is not None else (line,):
            if piece.strip() or out and out[-1].strip():
                out.append(piece.rstrip())
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + ("\n" if text.endswith("\n") else "") if out else ""


def clean_title(title: str) -> str:
    """A title as a reader sees it: inline markup, backticks and emphasis gone, ``---`` / ``--`` as an em dash.

    Example:
        >>> clean_title(":mod:`json` --- JSON encoder and decoder")
        'json — JSON encoder and decoder'
    """
    title = _clean_inline(title)
    title = re.sub(r"\s+-{2,3}\s+", " — ", title)
    title = re.sub(r"[`*]", "", title)
    return " ".join(title.split())


def _heading(lines: list[str], i: int) -> tuple[int, str] | None:
    """(level, title) when line ``i`` is a heading (wiki ``==x==``, Markdown ``# x``, reST text + underline)."""
    line = lines[i].strip()
    if _UNDERLINE.match(line):
        return None
    if (m := _WIKI_HEADING.match(line)) and m.group(2):
        return len(m.group(1)), m.group(2)
    if m := _MD_HEADING.match(line):
        return len(m.group(1)), m.group(2)
    if line and i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1].strip()) and not _UNDERLINE.match(line):
        return " =-~^\"'`#*+".find(lines[i + 1].strip()[0]) + 1, line
    return None


def _drop_boilerplate_sections(lines: list[str]) -> list[str]:
    out: list[str] = []
    dropping: int | None = None  # level of the boilerplate heading being skipped
    for i, line in enumerate(lines):
        heading = _heading(lines, i)
        if heading is not None:
            level, title = heading
            if dropping is not None and level <= dropping:
                dropping = None
            if dropping is None and title.strip(" :").lower() in BOILERPLATE_HEADINGS:
                dropping = level
        if dropping is None:
            out.append(line)
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, base: int) -> int:
    """Index after the indented body that follows line ``start`` (blank lines inside it included)."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def _clean_rest(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if _TARGET.match(line):
            i += 1
            continue
        if directive is None and _COMMENT.match(line.strip()) and _indent(line) == 0:
            i = _block_end(lines, i, 0)  # a reST comment and its indented continuation
            continue
        if directive is None:
            out.append(_clean_inline(line))
            i += 1
            continue
        base, name, argument = len(directive.group(1)), directive.group(2).lower(), directive.group(3)
        end = _block_end(lines, i, base)
        body = [b for b in lines[i + 1: end] if not re.match(r"^\s*:[\w-]+:(\s|$)", b)]  # options
        body = _clean_rest([_dedent_once(b, base) for b in body])
        if name in _CODE_DIRECTIVES:
            out.extend(" " * (base + 3) + b if b.strip() else b for b in body)  # still indented: code
        elif name in _NOTE_DIRECTIVES or name not in _DROP_DIRECTIVES:
            lead = _NOTE_LEADS.get(name, "Note:").format(argument) if name in _NOTE_DIRECTIVES else _clean_inline(argument)
            if lead:
                out.extend([" " * base + lead, ""])
            out.extend(body)
        out.append("")
        i = end
    return out


def _resolve_bare_references(lines: list[str]) -> list[str]:
    """Drop "(see <bare label>)" asides and unmark other bare labels (see the module docstring); the asides may
    span lines, so this reads the text whole."""
    return _LABEL.sub(r"\1", _SEE_BARE_REF.sub("", "\n".join(lines))).split("\n")


def _dedent_once(line: str, base: int) -> str:
    """Un-indent a directive body line by its first indent step (code nested in it stays indented)."""
    return line[base + 3:] if line[: base + 3].strip() == "" else line.lstrip()


def _clean_inline(line: str) -> str:
    if _TABLE_BORDER.match(line):
        return ""
    if _TABLE_ROW.match(line):
        line = "; ".join(cell.strip() for cell in line.strip().strip("|").split("|") if cell.strip())
    def role(match: re.Match) -> str:
        name, content = match.group(1), match.group(2)
        shown = re.sub(r"\s*<[^>]*>$", "", content).lstrip("~!") or content
        if name in ("pep", "rfc"):
            return f"{name.upper()} {shown}"
        if name in ("ref", "doc") and "<" not in content:
            return f"{_BARE_REF}{content.lstrip('~!/')}{_BARE_REF}"  # resolved by _resolve_bare_references
        return f"`{shown}`" if name in _CODE_ROLES else shown

    line = _ROLE.sub(role, line)
    line = _LINK.sub(r"\1", line)  # `text <https://...>`_ -> text
    line = re.sub(r"\s?\[#?[\w-]*\]_", "", line)  # footnote references
    line = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"\1", line)
    line = line.replace("``", "`")
    line = re.sub(r"(?<=\S)\s*::\s*$", ":", line)  # "as follows::" -> "as follows:"
    return "" if line.strip() == "::" else line
