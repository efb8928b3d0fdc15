"""Check question_passage_dev.jsonl: fields, unique ids, that every passage key exists and holds its answer string.
Usage: python benchmarks/dev/data/check_question_passage_dev.py --passages runs/s11/heldout_passages.jsonl [--file F]

The passages file has one {"key", "source", "doc", "title", "heading", "text"} object per line (the held-out rows,
key = first 12 hex digits of sha1 of the text; see README.md). Answers are matched case-insensitively after
collapsing whitespace; at most 2 questions may name one passage. Prints counts per source; exit 1 on any problem.
"""
import argparse
import collections
import json
import logging
import sys
from pathlib import Path

FIELDS = ("id", "question", "passage", "source", "doc", "answer")
MAX_PER_PASSAGE = 2
log = logging.getLogger("check_question_passage_dev")


def norm(s: str) -> str:
    return " ".join(s.split()).lower()


def check_row(r: dict, passages: dict) -> list[str]:
    errs = [f"missing field {f}" for f in FIELDS if not isinstance(r.get(f), str) or not r[f].strip()]
    if errs:
        return errs
    p = passages.get(r["passage"])
    if p is None:
        return [f"passage not found: {r['passage']}"]
    errs += [f"{f} {r[f]!r} does not match the passage's {p[f]!r}" for f in ("source", "doc") if r[f] != p[f]]
    if norm(r["answer"]) not in norm(p["text"]): errs.append(f"answer not in passage: {r['answer']!r}")
    return errs


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=Path(__file__).with_name("question_passage_dev.jsonl"))
    ap.add_argument("--passages", type=Path, required=True, help="held-out passages JSONL (key, source, doc, text)")
    args = ap.parse_args()
    passages = {p["key"]: p for p in map(json.loads, args.passages.read_text(encoding="utf-8").splitlines()) if p}
    rows = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad, ids, per_passage = 0, set(), collections.Counter(r.get("passage") for r in rows)
    for r in rows:
        errs = check_row(r, passages) + (["duplicate id"] if r.get("id") in ids else [])
        if per_passage[r.get("passage")] > MAX_PER_PASSAGE:
            errs.append(f"{per_passage[r.get('passage')]} questions name this passage")
        ids.add(r.get("id"))
        for e in errs:
            log.error("%s: %s", r.get("id"), e)
        bad += bool(errs)
    for source, n in sorted(collections.Counter(r.get("source") for r in rows).items()):
        mine = [r for r in rows if r.get("source") == source]
        log.info("%-20s %3d questions, %3d passages, %2d docs", source, n,
                 len({r.get("passage") for r in mine}), len({r.get("doc") for r in mine}))
    log.info("%d rows (%d passages, %d docs), %d with problems",
             len(rows), len(per_passage), len({r.get("doc") for r in rows}), bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
