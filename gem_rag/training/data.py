"""Training rows from a plain corpus: cleaned passages with their document title and section heading.

Input: ``.jsonl`` files (one ``{"text", "title"?, "id"?}`` object a line), ``.txt``/``.md``/``.rst`` files,
or folders of those. reStructuredText/Markdown headings are tracked so that a passage knows its section;
directives, comments, code blocks and tables are dropped; passages are deduplicated; whole documents are
held out for validation (chosen by a hash of their id, so the split is stable).

Example:
    >>> prepare_rows(["/work/shared/data/corpus"], "/tmp/rows.jsonl.gz", min_words=40, max_words=160)
    {'train': ..., 'val': ..., ...}
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Iterable, Iterator, Sequence

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".rst")
_UNDERLINE = re.compile(r"^([=\-~^\"'`*#+:.])\1{2,}\s*$")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$")
_ROLE = re.compile(r":[\w:+.-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`name <target>` -> name
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}")  # `text <url>`_ -> text
_LITERAL = re.compile(r"``([^`]+)``")
_EMPHASIS = re.compile(r"(\*\*|\*|`)([^*`]+)\1_?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")
_WORD = re.compile(r"\w+")


@dataclass
class Row:
    """One training passage."""

    text: str
    title: str
    heading: str  # the section heading the passage sits under ("" if none)
    doc: str  # document id
    source: str  # corpus file name, e.g. "wikipedia-sample"
    split: str  # "train" or "val"
    questions: list[str] = field(default_factory=list)  # questions the passage answers (written by a model)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (a simple punctuation rule; good enough for ICT queries)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def ict_pairs(rows: Sequence[Row], seed: int = 0) -> list[tuple[str, str]]:
    """Held-out ICT pairs: (one sentence of a row, the rest of the row) for each row of two or more sentences.

    The sentence is drawn with ``random.Random(seed)``, so the trainer's validation and the benchmarks build the
    same pairs.
    """
    rng = random.Random(seed)
    pairs = []
    for row in rows:
        sentences = split_sentences(row.text)
        if len(sentences) >= 2:
            pick = rng.randrange(len(sentences))
            pairs.append((sentences[pick], " ".join(sentences[:pick] + sentences[pick + 1:])))
    return pairs


def clean_inline(text: str) -> str:
    """Strip reST/Markdown inline markup, keeping the words."""
    text = _ROLE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(2), text)
    text = re.sub(r"::\s*$", ":", text)
    return " ".join(text.split())


def _is_noise(block: list[str]) -> bool:
    first = block[0]
    if first.startswith(("..", "+--", "+==", "===", "|", ">>>", "$ ", "#include", "```")):
        return True
    if all(line.startswith((" ", "\t")) for line in block):  # literal/code block or directive body
        return True
    letters = sum(ch.isalpha() for line in block for ch in line)
    total = sum(len(line) for line in block)
    return total == 0 or letters / total < 0.6


def sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(heading, paragraphs)`` for each section of a reST/Markdown/plain document."""
    lines = text.splitlines()
    heading, paragraphs, block = "", [], []

    def flush_block():
        if block and not _is_noise(block):
            cleaned = clean_inline(" ".join(line.strip() for line in block))
            if cleaned:
                paragraphs.append(cleaned)
        block.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        md = _MD_HEADING.match(line)
        rst = line.strip() and not _UNDERLINE.match(line) and _UNDERLINE.match(nxt) and len(nxt) >= len(line.strip())
        if md or rst:
            flush_block()
            if paragraphs:
                yield heading, paragraphs
            heading, paragraphs = clean_inline(md.group(1) if md else line.strip()), []
            i += 1 if md else 2
            continue
        if not line.strip() or _UNDERLINE.match(line):
            flush_block()
        else:
            block.append(line)
        i += 1
    flush_block()
    if paragraphs:
        yield heading, paragraphs


def chunk_paragraphs(paragraphs: Sequence[str], min_words: int, max_words: int) -> Iterator[str]:
    """Group paragraphs into passages of ``min_words``..``max_words`` words (long ones split at sentences)."""
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph.split()) <= max_words:
            pieces.append(paragraph)
            continue
        current: list[str] = []
        for sentence in split_sentences(paragraph):
            if current and len(" ".join(current + [sentence]).split()) > max_words:
                pieces.append(" ".join(current))
                current = []
            current.append(sentence)
        if current:
            pieces.append(" ".join(current))
    current_words: list[str] = []
    for piece in pieces:
        words = piece.split()
        if current_words and len(current_words) + len(words) > max_words:
            if len(current_words) >= min_words:
                yield " ".join(current_words)
            current_words = []
        current_words.extend(words[:max_words])
        if len(current_words) >= min_words:
            yield " ".join(current_words)
            current_words = []
    if len(current_words) >= min_words:
        yield " ".join(current_words)


def iter_documents(paths: Iterable[str | Path]) -> Iterator[tuple[str, str, str, str]]:
    """Yield ``(doc_id, title, text, source)`` from ``.jsonl``/text files or folders of them."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES + (".jsonl",))
            yield from iter_documents(files)
            continue
        if not path.is_file():
            raise FileNotFoundError(f"corpus path {path} does not exist")
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                for n, line in enumerate(handle):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if "text" not in record:
                        raise ValueError(f"{path}:{n + 1}: a .jsonl corpus row needs a 'text' field")
                    yield str(record.get("id", f"{path.stem}/{n}")), record.get("title", ""), record["text"], path.stem
        elif path.suffix in TEXT_SUFFIXES:
            doc_id = f"{path.parent.name}/{path.name}"  # stable across machines, unlike the absolute path
            yield doc_id, path.stem, path.read_text(encoding="utf-8", errors="replace"), path.parent.name
        else:
            raise ValueError(f"unsupported corpus file {path}: use .jsonl (with 'text'), .txt, .md or .rst")


def is_validation_doc(doc_id: str, val_percent: float) -> bool:
    """Stable hold-out: a document is in the validation slice when its id hashes below ``val_percent``."""
    bucket = int(hashlib.sha1(doc_id.encode()).hexdigest()[:8], 16) % 10_000
    return bucket < val_percent * 100


def build_rows(paths: Sequence[str | Path], *, min_words: int = 40, max_words: int = 160,
               val_percent: float = 2.0) -> list[Row]:
    """Clean, chunk and deduplicate the corpus into rows (train and validation)."""
    if not 5 <= min_words <= max_words:
        raise ValueError(f"need 5 <= min_words <= max_words, got {min_words}, {max_words}")
    seen: set[str] = set()
    rows: list[Row] = []
    for doc_id, title, text, source in iter_documents(paths):
        split = "val" if is_validation_doc(doc_id, val_percent) else "train"
        for heading, paragraphs in sections(text):
            for passage in chunk_paragraphs(paragraphs, min_words, max_words):
                key = hashlib.sha1(" ".join(_WORD.findall(passage.lower())).encode()).hexdigest()
                if key in seen:
                    continue
                seen.add(key)
                rows.append(Row(passage, clean_inline(title), heading, doc_id, source, split))
    return rows


def prepare_rows(paths: Sequence[str | Path], out_path: str | Path, **kwargs) -> dict:
    """Build rows (see :func:`build_rows`) and write them to ``out_path`` (``.jsonl`` or ``.jsonl.gz``).

    Returns counts per split and source.
    """
    rows = build_rows(paths, **kwargs)
    if not rows:
        raise ValueError(f"no passages found in {list(map(str, paths))}: check the paths and min_words")
    write_rows(rows, out_path)
    stats: dict = {"train": 0, "val": 0, "sources": {}}
    for row in rows:
        stats[row.split] += 1
        stats["sources"][row.source] = stats["sources"].get(row.source, 0) + 1
    logger.info("Wrote %d rows to %s: %s", len(rows), out_path, stats)
    return stats


def _open(path: Path, mode: str):
    return gzip.open(path, mode + "t", encoding="utf-8") if path.suffix == ".gz" else path.open(mode, encoding="utf-8")


def write_rows(rows: Iterable[Row], out_path: str | Path) -> None:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _open(out_path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")


def read_rows(path: str | Path) -> list[Row]:
    """Rows written by :func:`prepare_rows`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rows file {path} does not exist: make it with `gem-rag train --prepare-only`")
    with _open(path, "r") as handle:
        return [Row(**json.loads(line)) for line in handle if line.strip()]
