"""Write the Lee background corpus (300 ABC news articles) as a training corpus file for `gem-rag train`.

The 300 articles ship inside the gensim wheel (gensim/test/test_data/lee_background.cor); Lee, Pincombe & Welsh
(2005) collected them as the background corpus of their document-similarity study, separate from the 50 rated
documents. This fetches the wheel from PyPI (no model hub), reads the file from it, and writes
`{"id", "title", "text", "source", "license"}` rows. With ``--check-against`` it refuses to write when an article
shares text with the evaluation documents (largest share of 6-word shingles).

    python scripts/lee_background_corpus.py --out runs/data/lee-background.jsonl \
        --check-against ../shared/data/lee-document-similarity.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GENSIM = "gensim==4.4.0"
MEMBER = "gensim/test/test_data/lee_background.cor"
LICENSE = "research data (Lee, Pincombe & Welsh 2005) shipped with gensim 4.4.0 (LGPL-2.1)"


def read_articles() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", GENSIM, "--no-deps", "--only-binary=:all:",
                        "-d", folder, "-q"], check=True)
        wheel = next(Path(folder).glob("gensim-*.whl"))
        text = zipfile.ZipFile(wheel).read(MEMBER).decode("latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def largest_overlap(articles: list[str], evaluation_file: Path) -> float:
    """Largest share of an article's (or an evaluation document's) 6-word shingles found in the other."""
    documents = set()
    for line in evaluation_file.read_text().splitlines():
        if line.strip():
            pair = json.loads(line)
            documents.update((pair["a"], pair["b"]))
    held = [shingles(d) for d in documents]
    return max(len(s & h) / max(1, min(len(s), len(h))) for s in map(shingles, articles) for h in held)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the .jsonl file to write")
    parser.add_argument("--check-against", help="lee-document-similarity.jsonl: refuse if an article overlaps it")
    parser.add_argument("--max-overlap", type=float, default=0.05, help="largest shingle share allowed")
    args = parser.parse_args(argv)
    articles = read_articles()
    if args.check_against:
        overlap = largest_overlap(articles, Path(args.check_against))
        print(f"largest 6-word shingle share with the evaluation documents: {overlap:.3f}")
        if overlap > args.max_overlap:
            print(f"refused: above --max-overlap {args.max_overlap}", file=sys.stderr)
            return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        for i, text in enumerate(articles):
            row = {"id": f"lee-background-{i:03d}", "title": "", "text": text, "source": f"{GENSIM} wheel, {MEMBER}",
                   "license": LICENSE}
            handle.write(json.dumps(row) + "\n")
    print(f"wrote {len(articles)} articles to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
