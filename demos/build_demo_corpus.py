"""Rebuild the bundled demo corpus (gem_rag/data/demo_corpus/) from the shared corpora.

The demo must index its corpus on first start in a few minutes on two CPU cores, so the
selection is small on purpose (see SOURCE.md for the measured size and indexing time).

    .venv/bin/python demos/build_demo_corpus.py --data /work/shared/data/corpus
    .venv/bin/python demos/build_demo_embeddings.py   # then the seed the demo's first start loads
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gem_rag" / "data" / "demo_corpus"

# Python 3.11 docs (PSF-2.0): most of the tutorial, plus the json module.
PYTHON_PAGES = [
    "tutorial/appetite", "tutorial/interpreter", "tutorial/introduction", "tutorial/controlflow",
    "tutorial/datastructures", "tutorial/modules", "tutorial/inputoutput", "tutorial/errors",
    "tutorial/classes", "tutorial/stdlib", "tutorial/stdlib2", "tutorial/venv", "library/json",
]
# Wikipedia (CC BY-SA 3.0): a few general-knowledge articles.
WIKIPEDIA_TITLES = ["Albedo", "Abacus", "Aardvark", "International Atomic Time"]

SOURCE_MD = """# Demo corpus: sources and licences

Built by `demos/build_demo_corpus.py` from the project's shared corpora; {files} files, {size_kb} KB of text
in `texts/`, which is what `gem-rag demo` indexes.

| folder | source | licence |
|---|---|---|
| `texts/python-docs/` | {n_python} pages of the Python 3.11 documentation (reStructuredText source, Debian package `python3.11-doc`) | PSF-2.0 (Python Software Foundation License Version 2), (c) Python Software Foundation |
| `texts/wikipedia/` | {n_wiki} English Wikipedia articles (2017 dump sample, markup stripped): {wiki_titles} | CC BY-SA 3.0, (c) Wikipedia contributors; see each article's history on en.wikipedia.org |

The texts are unchanged apart from the Wikipedia articles gaining a `# Title` line.

`embeddings.npz` holds the vectors of these texts' chunks and sentences as the shipped model embeds them
(derived from the texts above, under their licences), so the demo's first start need not embed them; `demos/build_demo_embeddings.py` rebuilds it.
"""


def _read_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build(data: Path, out: Path = OUT) -> None:
    python_rows = {r["id"].split("/", 1)[1]: r for r in _read_rows(data / "python-3.11-docs.jsonl")}
    wiki_rows = {r["title"]: r for r in _read_rows(data / "wikipedia-sample.jsonl")}
    missing = [p for p in PYTHON_PAGES if p not in python_rows] + [t for t in WIKIPEDIA_TITLES if t not in wiki_rows]
    if missing:
        raise SystemExit(f"not found in {data}: {missing}")
    if out.exists():
        shutil.rmtree(out)
    texts = out / "texts"  # what the demo indexes; SOURCE.md stays outside it
    size = 0
    for page in PYTHON_PAGES:
        target = texts / "python-docs" / f"{page}.rst"
        target.parent.mkdir(parents=True, exist_ok=True)
        size += target.write_text(python_rows[page]["text"], encoding="utf-8")
    for title in WIKIPEDIA_TITLES:
        target = texts / "wikipedia" / (title.replace(" ", "_") + ".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        size += target.write_text(f"# {title}\n\n{wiki_rows[title]['text']}\n", encoding="utf-8")
    (out / "SOURCE.md").write_text(SOURCE_MD.format(
        files=len(PYTHON_PAGES) + len(WIKIPEDIA_TITLES), size_kb=round(size / 1024), n_python=len(PYTHON_PAGES),
        n_wiki=len(WIKIPEDIA_TITLES), wiki_titles=", ".join(WIKIPEDIA_TITLES)), encoding="utf-8")
    print(f"wrote {len(PYTHON_PAGES) + len(WIKIPEDIA_TITLES)} files, {size / 1024:.0f} KB to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/corpus"), help="folder with the corpus .jsonl files")
    build(parser.parse_args().data)
