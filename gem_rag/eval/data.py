"""Evaluation inputs: SQuAD-format JSON, JSONL questions, JSONL passages; sampling with a seed.

Every loader raises :class:`EvalDataError` (a ``ValueError``) naming the file and the line or record at fault.

Example:
    >>> data = load_eval_data("squad-v1.1-dev.json", n=200, seed=0)
    >>> len(data.questions), len(data.passages), data.questions[0].relevant
    (200, 2067, ['Super_Bowl_50#0'])
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

from gem_rag.rag.ingest import JsonlError, jsonl_objects


class EvalDataError(ValueError):
    """A malformed evaluation file; the message names the file and the line or record."""


@dataclass
class EvalQuestion:
    """One question; ``answers`` (gold answer strings) and ``relevant`` (gold passage ids) may be empty."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    relevant: list[str] = field(default_factory=list)


@dataclass
class Passage:
    """One corpus passage (a SQuAD paragraph, a JSONL row)."""

    id: str
    text: str
    title: str = ""


@dataclass
class EvalData:
    """Questions plus, when the input has them, the passages to index (else the pipeline's own corpus)."""

    questions: list[EvalQuestion]
    passages: list[Passage]
    source: str
    index_paths: list[str] = field(default_factory=list)  # files/folders for RagPipeline.index (``--docs DIR``)

    @property
    def has_gold_passages(self) -> bool:
        return any(q.relevant for q in self.questions)

    @property
    def has_gold_answers(self) -> bool:
        return any(q.answers for q in self.questions)


def _str_list(value: object, where: str, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise EvalDataError(f"{where}: '{name}' must be a string or a list of strings, got {value!r}")


def load_squad(path: str | Path) -> EvalData:
    """SQuAD v1.1/v2 JSON: corpus = every paragraph (id ``"<title>#<i>"``), relevant = the question's paragraph.

    Unanswerable SQuAD v2 questions keep an empty ``answers`` list.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalDataError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise EvalDataError(f"{path}: a SQuAD file is an object with a 'data' list of articles")
    questions, passages, titles = [], [], set()
    for ai, article in enumerate(doc["data"]):
        where = f"{path}: data[{ai}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise EvalDataError(f"{where}: an article needs a 'paragraphs' list")
        title = str(article.get("title", f"article{ai}"))
        key = title if title not in titles else f"{title}~{ai}"  # passage ids stay unique under repeated titles
        titles.add(title)
        for pi, paragraph in enumerate(article["paragraphs"]):
            pwhere = f"{where}.paragraphs[{pi}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str) \
                    or not paragraph["context"].strip():
                raise EvalDataError(f"{pwhere}: a paragraph needs a non-empty 'context' string")
            pid = f"{key}#{pi}"
            passages.append(Passage(pid, paragraph["context"], title))
            for qi, qa in enumerate(paragraph.get("qas", [])):
                qwhere = f"{pwhere}.qas[{qi}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
                    raise EvalDataError(f"{qwhere}: needs a non-empty 'question' string")
                answers = qa.get("answers", [])
                if not isinstance(answers, list) or not all(isinstance(a, dict) and isinstance(a.get("text"), str)
                                                            for a in answers):
                    raise EvalDataError(f"{qwhere}: 'answers' must be a list of {{'text': ...}} objects")
                golds = list(dict.fromkeys(a["text"] for a in answers))
                questions.append(EvalQuestion(str(qa.get("id", f"{pid}/{qi}")), qa["question"], golds, [pid]))
    if not questions:
        raise EvalDataError(f"{path}: no questions found")
    return EvalData(questions, passages, str(path))


def _jsonl_records(path: Path, text_field: str, kind: str) -> Iterator[tuple[str, str, str, dict]]:
    """(where, id, text, row) of each record of a JSONL file: ``row[text_field]`` is a non-empty string (the text)
    and the ``id`` (default ``line<N>``) is unique in the file; ``kind`` names the records in messages."""
    with path.open(encoding="utf-8") as f:
        try:
            rows = list(jsonl_objects(f))
        except JsonlError as e:
            raise EvalDataError(f"{path}: {e}") from None
    if not rows:
        raise EvalDataError(f"{path}: the file holds no records")
    seen = set()
    for lineno, row in rows:
        where = f"{path}: line {lineno}"
        text = row.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise EvalDataError(f"{where}: needs a non-empty {text_field!r} string")
        record_id = str(row.get("id", f"line{lineno}"))
        if record_id in seen:
            raise EvalDataError(f"{where}: duplicate {kind} id {record_id!r}")
        seen.add(record_id)
        yield where, record_id, text, row


def load_questions_jsonl(path: str | Path) -> EvalData:
    """JSONL questions: ``{"question", "id"?, "answers"|"answer"?, "relevant"|"passage_id"?}`` per line.

    Rows with an ``answer_passage`` (like the Python FAQ set) also give the corpus: passage id = question id.
    """
    path = Path(path)
    questions, passages = [], []
    for where, qid, text, row in _jsonl_records(path, "question", "question"):
        answers = _str_list(row.get("answers", row.get("answer")), where, "answers")
        relevant = _str_list(row.get("relevant", row.get("passage_id")), where, "relevant")
        if "answer_passage" in row:
            if not isinstance(row["answer_passage"], str) or not row["answer_passage"].strip():
                raise EvalDataError(f"{where}: 'answer_passage' must be a non-empty string")
            passages.append(Passage(qid, row["answer_passage"], str(row.get("title", ""))))
            relevant = relevant or [qid]
        questions.append(EvalQuestion(qid, text, answers, relevant))
    return EvalData(questions, passages, str(path))


def load_passages_jsonl(path: str | Path) -> list[Passage]:
    """JSONL passages: ``{"id", "text", "title"?}`` per line (the corpus format of the project's data)."""
    records = _jsonl_records(Path(path), "text", "passage")
    return [Passage(pid, text, str(row.get("title", ""))) for _, pid, text, row in records]


def sample_questions(questions: list[EvalQuestion], n: int | None, seed: int = 0) -> list[EvalQuestion]:
    """``n`` questions drawn without replacement with ``seed`` (all of them when ``n`` is None or too big)."""
    if n is None or n >= len(questions):
        return list(questions)
    if n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return random.Random(seed).sample(questions, n)


def limit_passages(passages: list[Passage], questions: list[EvalQuestion], max_passages: int | None,
                   seed: int = 0) -> list[Passage]:
    """At most ``max_passages`` passages: every gold passage of ``questions`` plus distractors drawn with ``seed``
    (kept in corpus order). ``None`` keeps all."""
    if max_passages is None or max_passages >= len(passages):
        return list(passages)
    if max_passages < 1:
        raise ValueError(f"max_passages must be a positive int, got {max_passages!r}")
    gold = {pid for q in questions for pid in q.relevant}
    others = [i for i, p in enumerate(passages) if p.id not in gold]
    room = max(max_passages - (len(passages) - len(others)), 0)
    keep = set(random.Random(seed).sample(others, min(room, len(others))))
    return [p for i, p in enumerate(passages) if p.id in gold or i in keep]


def load_eval_data(path: str | Path, *, docs: str | Path | None = None, n: int | None = None,
                   seed: int = 0, max_passages: int | None = None) -> EvalData:
    """Load questions from a SQuAD ``.json`` or a ``.jsonl``; ``docs`` replaces the corpus: a passages ``.jsonl``
    is read here, any other file or folder is indexed by the pipeline (gold ids then match the chunk's source).

    Example:
        >>> load_eval_data("questions.jsonl", docs="corpus.jsonl", n=50).passages[:1]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation data not found: {path}")
    if path.suffix == ".json":
        data = load_squad(path)
    elif path.suffix == ".jsonl":
        data = load_questions_jsonl(path)
    else:
        raise EvalDataError(f"{path}: expected a SQuAD-format .json or a questions .jsonl")
    if docs is not None:
        if not Path(docs).exists():
            raise FileNotFoundError(f"--docs not found: {docs}")
        if Path(docs).suffix == ".jsonl":
            data.passages = load_passages_jsonl(docs)
        else:
            data.passages, data.index_paths = [], [str(docs)]
    data.questions = sample_questions(data.questions, n, seed)
    data.passages = limit_passages(data.passages, data.questions, max_passages, seed)
    return data
