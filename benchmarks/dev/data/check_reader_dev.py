"""Check reader_dev.jsonl: fields, kinds, and that every support string is in its document (whitespace normalised).
Usage: python benchmarks/dev/data/check_reader_dev.py [--data-root ../shared/data] [--file reader_dev.jsonl]

Demo rows are read from gem_rag/data/demo_corpus/texts; extra rows from <data-root>/corpus/<corpus_file>
(data root: --data-root, else $GEM_RAG_DATA, else ../shared/data relative to the repository). Exit 1 on any problem.
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "gem_rag/data/demo_corpus/texts"
KINDS = {"fact", "definition", "howto", "why", "offtopic", "unanswerable"}
FIELDS = ("id", "question", "kind", "corpus", "doc", "accepted", "support", "abstain")
log = logging.getLogger("check_reader_dev")


def norm(s: str) -> str:
    return " ".join(s.split()).lower()


def check_row(r: dict, extra_text) -> list[str]:
    errs = [f"missing field {f}" for f in FIELDS if f not in r]
    if errs:
        return errs
    abstain = r["kind"] in ("offtopic", "unanswerable")
    if r["kind"] not in KINDS: errs.append(f"bad kind {r['kind']!r}")
    if r["corpus"] not in ("demo", "extra"): errs.append(f"bad corpus {r['corpus']!r}")
    if r["abstain"] is not abstain: errs.append("abstain does not match kind")
    if not isinstance(r["question"], str) or not r["question"].strip(): errs.append("empty question")
    if not all(isinstance(x, list) and all(isinstance(s, str) and s.strip() for s in x) for x in (r["accepted"], r["support"])):
        errs.append("accepted/support must be lists of non-empty strings")
    if abstain:
        if r["accepted"] or r["support"]: errs.append("abstain row with accepted/support")
        if r["kind"] == "offtopic" and r["doc"] is not None: errs.append("offtopic row with a doc")
    if not abstain and not (r["accepted"] and r["support"]): errs.append("answerable row needs accepted and support")
    if r["kind"] != "offtopic" and not r["doc"]:
        return errs + ["no doc"]
    if r["doc"] is None:
        return errs
    path = DEMO / r["doc"] if r["corpus"] == "demo" else None
    text = (path.read_text(encoding="utf-8") if path.is_file() else None) if path else extra_text(r.get("corpus_file"), r["doc"])
    if text is None:
        return errs + [f"document not found: {r['doc']}"]
    t = norm(text)
    errs += [f"support not in document: {s!r}" for s in r["support"] if norm(s) not in t]
    return errs


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=Path(__file__).with_name("reader_dev.jsonl"))
    ap.add_argument("--data-root", type=Path, default=Path(os.environ.get("GEM_RAG_DATA", REPO.parent / "shared/data")))
    args = ap.parse_args()
    cache: dict[str, dict[str, str]] = {}

    def extra_text(corpus_file, doc_id):
        if corpus_file not in cache:
            path = args.data_root / "corpus" / str(corpus_file)
            if not path.is_file():
                return None
            with path.open(encoding="utf-8") as f:
                cache[corpus_file] = {row["id"]: row["text"] for row in map(json.loads, f)}
        return cache[corpus_file].get(doc_id)

    rows = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad, ids = 0, set()
    for r in rows:
        errs = check_row(r, extra_text) + (["duplicate id"] if r.get("id") in ids else [])
        ids.add(r.get("id"))
        for e in errs:
            log.error("%s: %s", r.get("id"), e)
        bad += bool(errs)
    log.info("%d rows, %d with problems", len(rows), bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
