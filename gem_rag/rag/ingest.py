"""Ingestion: read files and folders into documents, and cut documents into token-aware chunks.

Supported: ``.txt``, ``.md``, ``.rst``, ``.html``/``.htm`` (tags stripped), ``.jsonl`` (one document per
row with ``text`` and optional ``title``/``id``). Every text is cleaned first (gem_rag.rag.cleaning: reference
sections, footnotes and markup dropped), so chunk offsets refer to the cleaned text.

Example:
    >>> docs, skipped = load_documents(["notes/", "faq.jsonl"])
    >>> chunker = Chunker(model.tokenizer, chunk_tokens=256, overlap=32)
    >>> chunks = [c for d in docs for c in chunker.split(d)]
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from collections.abc import Iterable, Iterator

from gem_rag.rag.cleaning import clean_text, clean_title
from gem_rag.rag.types import Chunk

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".rst")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES


@dataclass
class Document:
    """A text with where it came from; ``source`` is unique per document (``path`` or ``path#row-id``)."""

    text: str
    source: str
    title: str = ""
    metadata: dict = field(default_factory=dict)


class UnreadableFile(Exception):
    """A file that cannot be turned into documents; the message is the reason reported to the user."""


class JsonlError(ValueError):
    """A line of JSONL text that is not a JSON object; the message names the line."""


def content_hash(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or UTF-8 text."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    """Stable chunk id: a hash of source path, character offsets and text."""
    return hashlib.sha1(f"{source}\x00{start}\x00{end}\x00{text}".encode()).hexdigest()[:24]


def text_key(text: str) -> str:
    """De-duplication key: hash of the text with whitespace collapsed."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- files -> documents
def iter_files(paths: str | Path | Iterable[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """Yield (file, None) for every supported file under ``paths``, or (path, reason) for a path that
    cannot be used. Folders are walked recursively in sorted order, hidden entries skipped."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
                if file.is_file() and not hidden and file.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield file, None
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                yield path, None
            else:
                yield path, f"unsupported file type {path.suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        else:
            yield path, "no such file or folder"


def read_file(path: Path, raw: bytes | None = None) -> list[Document]:
    """Documents of one supported file; raises :class:`UnreadableFile` with the reason."""
    try:
        raw = path.read_bytes() if raw is None else raw
    except OSError as err:
        raise UnreadableFile(f"cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"not UTF-8 text (byte {err.start})") from None
    suffix = path.suffix.lower()
    source = str(path)
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(text, source)
    if suffix in HTML_SUFFIXES:
        title, body = html_to_text(text)
        body = clean_text(body, suffix)
        return [Document(body, source, title or path.stem)] if body.strip() else []
    title = clean_title(_guess_title(text, suffix)) or path.stem
    text = clean_text(text, suffix)
    return [Document(text, source, title)] if text.strip() else []


def load_documents(paths: str | Path | Iterable[str | Path]) -> tuple[list[Document], list[tuple[str, str]]]:
    """(documents, skipped) for files and folders; skipped holds (path, reason) of unusable files."""
    docs: list[Document] = []
    skipped: list[tuple[str, str]] = []
    for file, reason in iter_files(paths):
        if reason is None:
            try:
                docs.extend(read_file(file))
                continue
            except UnreadableFile as err:
                reason = str(err)
        skipped.append((str(file), reason))
    return docs, skipped


def source_file(source: str, doc_id=None) -> str:
    """The file a document's ``source`` names: ``path`` for a JSONL row's ``path#row-id`` (``doc_id``: the row's
    id, which only JSONL rows carry), else the source itself. For chunks stored without ``source_file``."""
    if doc_id is None:
        return source
    row = "#" + str(doc_id)
    if source.endswith(row) and source[: -len(row)].lower().endswith(JSONL_SUFFIXES):
        return source[: -len(row)]
    at = source.lower().find(".jsonl#")  # a row whose "doc_id" field replaced its id: the first "file.jsonl#"
    return source[: at + len(".jsonl")] if at >= 0 else source


def jsonl_objects(lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of JSONL text; :class:`JsonlError` at the first line that is
    not a JSON object."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise JsonlError(f"line {line_no}: not valid JSON ({err.msg}, column {err.colno})") from None
        if not isinstance(row, dict):
            raise JsonlError(f"line {line_no}: each line must be a JSON object, got {type(row).__name__}")
        yield line_no, row


def _read_jsonl(text: str, source: str) -> list[Document]:
    try:
        rows = list(jsonl_objects(text.splitlines()))
    except JsonlError as err:
        raise UnreadableFile(str(err)) from None
    docs = []
    for line_no, row in rows:
        if not isinstance(row.get("text"), str):
            raise UnreadableFile(f"line {line_no}: no string field 'text'")
        if not row["text"].strip():
            continue
        row_id = str(row.get("id", line_no))
        row["text"] = clean_text(row["text"], ".md")
        if not row["text"].strip():
            continue
        extra = {k: v for k, v in row.items() if k not in ("text", "title", "id") and isinstance(v, (str, int, float, bool))}
        title = clean_title(str(row.get("title") or ""))
        docs.append(Document(row["text"], f"{source}#{row_id}", title, {"doc_id": row_id, **extra}))
    return docs


def _guess_title(text: str, suffix: str) -> str:
    lines = [line.strip() for line in text.splitlines()[:20]]
    for i, line in enumerate(lines):
        if suffix == ".md" and line.startswith("#"):
            return line.lstrip("#").strip()
        if suffix == ".rst" and line and i + 1 < len(lines) and re.fullmatch(r"([=\-~^#*+])\1{2,}", lines[i + 1]):
            return line
    return ""


class _TextExtractor(HTMLParser):
    SKIP = {"script", "style", "noscript", "template"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page: scripts and styles dropped, block tags become line breaks."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text)
    return " ".join(parser.title.split()), text.strip()


# ---------------------------------------------------------------- documents -> chunks
class Chunker:
    """Cut documents into windows of at most ``chunk_tokens`` model tokens overlapping by ``overlap`` tokens.

    A window that does not reach the end of the document is shortened to end at a sentence or line
    break when one lies in its last quarter, so chunks rarely stop mid-sentence.
    """

    def __init__(self, tokenizer, chunk_tokens: int = 256, overlap: int = 32):
        if not isinstance(chunk_tokens, int) or chunk_tokens < 16:
            raise ValueError(f"chunk_tokens must be an int >= 16, got {chunk_tokens!r}")
        if not isinstance(overlap, int) or not 0 <= overlap < chunk_tokens // 2:
            raise ValueError(f"chunk_overlap must be an int in [0, chunk_tokens/2), got {overlap!r}")
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap

    def settings(self) -> dict:
        return {"chunk_tokens": self.chunk_tokens, "chunk_overlap": self.overlap}

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans (start, end) of the chunks of ``text``."""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        n = len(offsets)
        spans: list[tuple[int, int]] = []
        first = 0
        while first < n:
            last = min(first + self.chunk_tokens, n)  # exclusive token index
            if last < n:
                last = self._sentence_end(text, offsets, first, last)
            spans.append((offsets[first][0], offsets[last - 1][1]))
            if last >= n:
                break
            first = max(last - self.overlap, first + 1)
        return spans

    def _sentence_end(self, text: str, offsets, first: int, last: int) -> int:
        floor = first + (3 * (last - first)) // 4
        for i in range(last - 1, floor, -1):
            piece = text[offsets[i][0]: offsets[i][1]]
            if piece.rstrip().endswith((".", "!", "?", "\n")) or text[offsets[i][1]: offsets[i][1] + 1] == "\n":
                return i + 1
        return last

    def split(self, doc: Document) -> list[Chunk]:
        """Chunks of one document, metadata carrying source, title, offsets and the document's metadata."""
        chunks = []
        for start, end in self.spans(doc.text):
            raw = doc.text[start:end]
            text = raw.strip()
            if not text:
                continue
            start += len(raw) - len(raw.lstrip())
            end = start + len(text)
            meta = {**doc.metadata, "source": doc.source, "title": doc.title, "start": start, "end": end}
            chunks.append(Chunk(chunk_id(doc.source, start, end, text), text, meta))
        return chunks
