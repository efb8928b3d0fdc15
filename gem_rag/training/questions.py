"""Questions a passage answers, written by the model itself: query-shaped positives from unlabelled text.

The instruct model reads a training passage and writes one question the passage answers (doc2query, InPars and
Promptagator do this with a larger writer); the pair (question, passage) then trains the GEM token as a question
would meet it at retrieval time. Rows are picked a document at a time (its first passages), so ``--doc-group``
batches hold passages of one document as each other's negatives. Only training rows get questions: held-out rows
stay untouched.

Example:
    >>> picked = pick_rows(rows, {"wikipedia-sample": 800}, per_doc=8, seed=0)
    >>> for done in write_questions(model, rows, picked, "runs/q/questions.jsonl", batch=16):
    ...     print(done, "of", len(picked))
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from gem_rag.training.data import Row

# One worked example before the passage: without it the 135M model mostly asks about "the text" itself.
EXAMPLE_PASSAGE = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is "
                   "named after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to "
                   "1889.")
EXAMPLE_TITLE = "Eiffel Tower"
EXAMPLE_QUESTION = "Who designed the Eiffel Tower?"
PROMPT = 'Passage from "{title}":\n{passage}\n\nAsk a question that this passage answers.'
MAX_QUESTION_TOKENS = 40
META_WORDS = {"text", "passage", "question", "answer", "eiffel"}  # a question about the prompt, not the passage
QUESTION_WORDS = {"what", "which", "where", "when", "does", "purpose", "difference", "between", "there", "that", "this"}
_WORD = re.compile(r"\w+")


def question_messages(row: Row) -> list[dict]:
    """The chat that asks the model for one question ``row`` answers."""
    return [{"role": "user", "content": PROMPT.format(title=EXAMPLE_TITLE, passage=EXAMPLE_PASSAGE)},
            {"role": "assistant", "content": EXAMPLE_QUESTION},
            {"role": "user", "content": PROMPT.format(title=row.title or row.heading, passage=row.text)}]


def row_key(row: Row) -> str:
    """A row's identity across files: its document and the start of its text."""
    return f"{row.doc}\t{' '.join(row.text.split()[:12])}"


def pick_rows(rows: Sequence[Row], passages_per_source: dict[str, int], *, per_doc: int, seed: int) -> list[int]:
    """Indices of training rows to write questions for: whole documents (up to ``per_doc`` passages each, in order),
    drawn at random per source until that source's passage budget is spent."""
    rng = random.Random(seed)
    by_doc: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.split == "train" and row.source in passages_per_source:
            by_doc.setdefault(row.doc, []).append(i)
    picked: list[int] = []
    for source, budget in sorted(passages_per_source.items()):
        docs = sorted(d for d, idx in by_doc.items() if rows[idx[0]].source == source)
        rng.shuffle(docs)
        taken = 0
        for doc in docs:
            if taken >= budget:
                break
            chosen = by_doc[doc][: min(per_doc, budget - taken)]
            picked.extend(chosen)
            taken += len(chosen)
    return picked


def clean_question(text: str, row: Row) -> str | None:
    """The first line of the model's reply if it reads as a question about ``row``: 3-30 words ending in "?",
    sharing a word of four letters or more (question words aside) with the passage or its title, not about the
    prompt (META_WORDS), not a copy of the passage; else None."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(question|q)\s*[:.]\s*", "", line, flags=re.IGNORECASE).strip(" \"'")
    words = _WORD.findall(line.lower())
    source = _WORD.findall(f"{row.title} {row.heading} {row.text}".lower())
    if not line.endswith("?") or not 3 <= len(words) <= 30 or META_WORDS & set(words):
        return None
    shared = ({w for w in words if len(w) >= 4} - QUESTION_WORDS) & set(source)  # "&" binds before "-": brackets
    if not shared or " ".join(words) in " ".join(source):
        return None
    return line


def write_questions(model, rows: Sequence[Row], picked: Sequence[int], out_path: str | Path, *,
                    batch: int = 16) -> Iterator[int]:
    """Write ``{"key", "question"}`` lines (question None when the reply was not a question) for the picked rows to
    ``out_path``, appending; rows already there are skipped, so a stopped run resumes. Yields the count done."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = set(read_questions(out_path)) if out_path.is_file() else set()
    todo = [i for i in picked if row_key(rows[i]) not in done]
    count = len(picked) - len(todo)
    with out_path.open("a", encoding="utf-8") as handle:
        for start in range(0, len(todo), batch):
            chunk = [rows[i] for i in todo[start:start + batch]]
            prompts = [model.apply_chat_template(question_messages(row)) for row in chunk]
            replies = model.generate(prompts, max_new_tokens=MAX_QUESTION_TOKENS, stop=["\n"])
            for row, reply in zip(chunk, replies):
                record = {"key": row_key(row), "question": clean_question(reply.text, row)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            count += len(chunk)
            yield count


def read_questions(path: str | Path) -> dict[str, list[str]]:
    """{row key: questions} from a file :func:`write_questions` wrote (replies that were not questions left out)."""
    found: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                questions = found.setdefault(record["key"], [])
                if record["question"]:
                    questions.append(record["question"])
    return found


def rows_with_questions(rows: Sequence[Row], questions: dict[str, list[str]]) -> list[Row]:
    """The training rows that got at least one question (each carrying its questions) and every held-out row: a
    rows file on which every training pair can be a ``question`` positive."""
    kept = []
    for row in rows:
        asked = questions.get(row_key(row), [])
        if row.split != "train":
            kept.append(row)
        elif asked:
            kept.append(replace(row, questions=list(asked)))
    return kept
