"""The four recipes in integrations/ run end to end, offline, and print an answer with its sources."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the recipes are run as ``python -m integrations.<name>`` from the repository root
    sys.path.insert(0, str(ROOT))

CORPUS_FILES = {path.name for path in (ROOT / "integrations" / "corpus").glob("*.txt")}
RECIPES = ["langchain_faiss", "langchain_chroma", "llama_index_faiss", "llama_index_chroma"]
QUESTION = "What does a dictionary map?"


def check_printed_answer(output: str, question: str) -> list[str]:
    """Question, a non-empty answer and at least one source from the bundled corpus -> the sources."""
    assert f"Question: {question}" in output
    answer = re.search(r"^Answer: (.*?)^Sources:$", output, re.S | re.M)
    assert answer and answer.group(1).strip(), output
    sources = re.findall(r"^  - (.+)$", output.split("Sources:", 1)[1], re.M)
    assert sources and set(sources) <= CORPUS_FILES, output
    return sources


@pytest.fixture
def no_network():
    """Block every internet socket for the duration of a test (the recipes must work offline)."""
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_answers_with_sources_offline(name, no_network, capsys):
    recipe = importlib.import_module(f"integrations.{name}")
    assert f"python -m integrations.{name}" in recipe.__doc__
    assert recipe.main([QUESTION, "--max-tokens", "16", "--top-k", "2"]) == 0
    sources = check_printed_answer(capsys.readouterr().out, QUESTION)
    assert 1 <= len(sources) <= 2
    assert "dictionaries.txt" in sources  # the shipped GEM embeddings retrieve the passage that answers


@pytest.mark.slow
def test_recipe_runs_as_documented_in_a_fresh_offline_process():
    dead_proxy = "http://127.0.0.1:9"  # any HTTP(S) request would fail
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HTTP_PROXY": dead_proxy,
           "HTTPS_PROXY": dead_proxy, "NO_PROXY": ""}
    run = subprocess.run([sys.executable, "-m", "integrations.langchain_faiss", "--max-tokens", "16"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    sources = check_printed_answer(run.stdout, "How do I create a virtual environment?")  # the default question
    assert "creating-virtual-environments.txt" in sources
