"""Where the bundled demo corpus's chunks open: how many open at the document's start, after a sentence stop
(``.``, ``!``, ``?``) or after a blank line, against those that open elsewhere (at a code line, or mid-sentence).
The figure behind reader rules 28 and 29 (docs/reader_rules_s15.txt): run it on the chunker of a commit to see how
often a reader meets a chunk whose first sentence is a tail. Tokenizer only; no model pass.

Usage:
    python -m benchmarks.dev.chunk_starts [--json runs/chunk_starts.json]
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from benchmarks.common import machine, write_json

logger = logging.getLogger(__name__)
DEMO_TEXTS = Path(__file__).resolve().parents[2] / "gem_rag" / "data" / "demo_corpus" / "texts"
_AFTER_A_BREAK = re.compile(r"[.!?]\s*$|\n\s*\n\s*$")  # the text before a chunk ends a sentence or a paragraph


def chunk_starts(chunker, documents) -> dict:
    """Counts of chunk openings, and a few examples of the others (the 25 characters before, the 60 after)."""
    chunks = clean = 0
    others: list[str] = []
    for doc in documents:
        for chunk in chunker.split(doc):
            chunks += 1
            start = chunk.metadata["start"]
            if start == 0 or _AFTER_A_BREAK.search(doc.text[max(0, start - 20): start]):
                clean += 1
            elif len(others) < 12:
                others.append(f"{doc.text[max(0, start - 25): start]!r} || {chunk.text[:60]!r}")
    return {"chunks": chunks, "open_after_a_stop_or_blank_line": clean, "examples_of_others": others}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write the counts here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from gem_rag import get_default_model
    from gem_rag.rag import Chunker, RagConfig, load_documents

    config = RagConfig()
    documents, _ = load_documents([DEMO_TEXTS])
    chunker = Chunker(get_default_model().tokenizer, config.chunk_tokens, config.chunk_overlap)
    report = {"what": "where the demo corpus's chunks open", "command": "python -m benchmarks.dev.chunk_starts",
              "machine": machine(), **chunk_starts(chunker, documents)}
    logger.info("%d chunks, %d open after a stop or a blank line", report["chunks"],
                report["open_after_a_stop_or_blank_line"])
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
