"""The app's terminal commands: `gem-rag index` then `gem-rag ask --docs` (cached), on a tiny corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_server_api import write_tiny_corpus


def isolated_cache(tmp: Path) -> dict:
    """Env with a fresh GEM_RAG_CACHE that still sees the converted model (no 20 s re-conversion)."""
    from gem_rag.core.loading import cache_root

    cache = tmp / "cache"
    cache.mkdir()
    models = cache_root() / "models"
    if models.is_dir():
        (cache / "models").symlink_to(models, target_is_directory=True)
    return {**os.environ, "GEM_RAG_CACHE": str(cache)}


def gem_rag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gem_rag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    return write_tiny_corpus(tmp / "docs"), isolated_cache(tmp)


def test_index_then_ask_uses_the_cache(setup):
    docs, env = setup
    indexed = gem_rag("index", str(docs), env=env)
    assert indexed.returncode == 0, indexed.stderr
    assert "3 files indexed" in indexed.stdout and env["GEM_RAG_CACHE"] in indexed.stdout

    asked = gem_rag("ask", "When is the Quillby lantern festival held?", "--docs", str(docs), "-k", "2",
                    "--max-tokens", "32", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "Indexing" not in asked.stderr and "index ready: " in asked.stderr  # reused, nothing re-embedded
    answer, _, sources = asked.stdout.partition("Sources:")
    assert "March" in answer, asked.stdout
    assert "[1] The Quillby lantern festival" in sources and "quillby.md" in sources
    assert "Timings:" in sources


def test_ask_reports_missing_docs(setup):
    _, env = setup
    result = gem_rag("ask", "anything?", "--docs", "/no/such/folder", env=env)
    assert result.returncode == 2 and "no such file or folder" in result.stderr


def test_bundled_corpus_is_small_and_licensed():
    from gem_rag.rag.ingest import SUPPORTED_SUFFIXES
    from gem_rag.server.indexes import BUNDLED_CORPUS

    files = [f for f in BUNDLED_CORPUS.rglob("*") if f.is_file()]
    assert len(files) >= 10 and all(f.suffix in SUPPORTED_SUFFIXES for f in files)
    size = sum(f.stat().st_size for f in files)
    assert 100_000 < size < 500_000  # sized so the first start indexes in a few minutes on 2 cores
    notes = (BUNDLED_CORPUS.parent / "SOURCE.md").read_text()
    assert "PSF-2.0" in notes and "CC BY-SA 3.0" in notes
