"""What the four recipes share: the bundled corpus, the command line, and how an answer is printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from collections.abc import Iterable

CORPUS_DIR = Path(__file__).parent / "corpus"  # five Python-tutorial sections, PSF-2.0 (see corpus/SOURCE.md)
DEFAULT_QUESTION = "How do I create a virtual environment?"
SYSTEM_PROMPT = "Answer the question using only the given context. Be brief."


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    """``[question] [--max-tokens N] [--top-k K]`` for every recipe."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION, help=f"default: {DEFAULT_QUESTION!r}")
    parser.add_argument("--max-tokens", type=int, default=128, help="longest answer in tokens (default 128)")
    parser.add_argument("--top-k", type=int, default=3, help="passages retrieved (default 3)")
    return parser.parse_args(argv)


def print_answer(question: str, answer: str, sources: Iterable[str]) -> None:
    print(f"Question: {question}")
    print(f"Answer: {answer.strip()}")
    print("Sources:")
    for source in dict.fromkeys(sources):  # unique, in ranking order
        print(f"  - {source}")
