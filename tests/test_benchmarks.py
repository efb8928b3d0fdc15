"""The benchmarks package without running a benchmark: its modules import as a package, the development question
sets are well-formed JSONL, and the report writer renders the recorded results with the commands that run now."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "dev" / "data"


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name, count, prefix", [("prompt_dev_wikipedia.jsonl", 72, "wiki-"),
                                                 ("prompt_dev_howto.jsonl", 30, "howto-")])
def test_prompt_dev_sets_are_well_formed(name, count, prefix):
    items = rows(name)
    assert len(items) == count and len({r["id"] for r in items}) == count
    for r in items:
        assert set(r) == {"id", "title", "question", "answers", "context", "corpus_file", "verbatim"}
        assert r["id"].startswith(prefix) and r["question"].strip() and r["context"].strip()
        assert r["answers"] is None or (1 <= len(r["answers"]) <= 3 and all(a in r["context"] for a in r["answers"]))


def test_no_flat_scripts_left_at_the_top_level():
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")) == ["__init__.py", "common.py"]


def test_rag_report_renders_the_current_commands():
    out = subprocess.run([sys.executable, "-m", "benchmarks.reports.rag_report"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "Command: `python -m benchmarks.dev.fusion_dev --rows" in out
    assert "`python -m benchmarks.quality.rag_answer_quality --data-root " in out
    assert "Command: `benchmarks/" not in out and "--squad " not in out
