"""Check prompt_dev_wikipedia.jsonl and prompt_dev_howto.jsonl: fields, ids, that every row's page is in its corpus
file, that a `verbatim` row's context is text of that page and that every answer is a span of its context.
Usage: python benchmarks/dev/data/check_prompt_dev.py [--data-root ../shared/data] [FILE ...]

Pages are read from <data-root>/corpus/<corpus_file> (data root: --data-root, else $GEM_RAG_DATA, else
../shared/data relative to the repository); whitespace is collapsed before comparing. Exit 1 on any problem.
"""
import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = (HERE / "prompt_dev_wikipedia.jsonl", HERE / "prompt_dev_howto.jsonl")
FIELDS = ("id", "title", "question", "answers", "context", "corpus_file", "verbatim")
log = logging.getLogger("check_prompt_dev")


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def check_row(row: dict, pages: dict[str, list[str]]) -> list[str]:
    errs = [f"missing field {f}" for f in FIELDS if f not in row]
    if errs:
        return errs
    if not row["question"].strip():
        errs.append("empty question")
    answers = row["answers"]
    if answers is not None:
        if not isinstance(answers, list) or not 1 <= len(answers) <= 3:
            errs.append("answers must be null or a list of 1-3 strings")
        else:
            errs += [f"answer not in context: {a!r}" for a in answers if a not in row["context"]]
    if row["title"] not in pages:
        errs.append(f"no page titled {row['title']!r} in {row['corpus_file']}")
    elif row["verbatim"] and not any(row["context"] in text for text in pages[row["title"]]):
        errs.append(f"context not verbatim in {row['title']!r}: {row['context'][:60]!r}")
    return errs


def read_pages(path: Path) -> dict[str, list[str]]:
    pages: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for record in map(json.loads, f):
            pages.setdefault(record["title"], []).append(collapse(record["text"]))
    return pages


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, default=list(FILES))
    ap.add_argument("--data-root", type=Path,
                    default=Path(os.environ.get("GEM_RAG_DATA", HERE.parents[3] / "shared/data")))
    args = ap.parse_args()
    corpora: dict[str, dict[str, list[str]]] = {}
    bad = 0
    for file in args.files:
        rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        ids: set[str] = set()
        for row in rows:
            name = str(row.get("corpus_file"))
            if name not in corpora:
                corpora[name] = read_pages(args.data_root / "corpus" / name)
            errs = check_row(row, corpora[name]) + (["duplicate id"] if row.get("id") in ids else [])
            ids.add(row.get("id"))
            for e in errs:
                log.error("%s %s: %s", file.name, row.get("id"), e)
            bad += bool(errs)
        unanswerable = sum(row.get("answers") is None for row in rows)
        log.info("%s: %d rows (%d answerable, %d unanswerable, %d pages, %d not verbatim)", file.name, len(rows),
                 len(rows) - unanswerable, unanswerable, len({row.get("title") for row in rows}),
                 sum(not row.get("verbatim") for row in rows))
    log.info("%d rows with problems", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
