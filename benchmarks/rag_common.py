"""Shared helpers of the RAG benchmarks: the SQuAD-derived corpus and questions, machine description."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
from pathlib import Path

DEFAULT_SQUAD = "/work/shared/data/squad-v1.1-dev.json"
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "rag_benchmarks"


def load_squad(path: str) -> tuple[list[dict], list[dict]]:
    """(paragraphs [{id, title, text}], questions [{question, answers, paragraph_id, context}]) in file order."""
    data = json.loads(Path(path).read_text())["data"]
    paragraphs, questions = [], []
    for article in data:
        for i, para in enumerate(article["paragraphs"]):
            pid = f"{article['title']}#{i}"
            paragraphs.append({"id": pid, "title": article["title"].replace("_", " "), "text": para["context"]})
            for qa in para["qas"]:
                questions.append({"question": qa["question"], "answers": [a["text"] for a in qa["answers"]],
                                  "paragraph_id": pid, "context": para["context"]})
    return paragraphs, questions


def sample_questions(questions: list[dict], n: int, seed: int = 0) -> list[dict]:
    return random.Random(seed).sample(questions, n)


def add_question_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every question-answering benchmark over a saved SQuAD index takes."""
    parser.add_argument("--squad", default=DEFAULT_SQUAD)
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--answer-mode", default="generative", help="RagPipeline answer_mode")
    parser.add_argument("--beams", type=int, default=8, help="RagPipeline beams")
    parser.add_argument("--reading", default="per_chunk", help="RagPipeline reading: per_chunk or joint")
    parser.add_argument("--prefer-spans", type=int, default=1, help="RagPipeline prefer_spans (1 or 0)")


def answering(args: argparse.Namespace) -> dict:
    """RagPipeline keywords for the answer settings in ``args``; the prompt is the current default, not the one
    saved with the index."""
    return {"reader": "chunks", "answer_mode": args.answer_mode, "beams": args.beams, "reading": args.reading,
            "prefer_spans": bool(args.prefer_spans), "system_prompt": None, "examples": None, "prompt_template": None}


def questions_for(args: argparse.Namespace) -> list[dict]:
    """Set torch's thread count from ``args`` and return the seeded question sample they ask for."""
    import torch

    torch.set_num_threads(args.threads)
    _, questions = load_squad(args.squad)
    return sample_questions(questions, args.questions, seed=0)


def write_corpus_jsonl(paragraphs: list[dict], path: Path) -> Path:
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in paragraphs) + "\n")
    return path


def paragraph_ranking(retrieved, k: int) -> list[str]:
    """Paragraph ids in rank order (a paragraph counted once, at its best chunk)."""
    out: list[str] = []
    for r in retrieved:
        pid = r.chunk.metadata.get("doc_id") or r.chunk.metadata.get("source", "").rsplit("#", 1)[-1]
        if pid not in out:
            out.append(pid)
    return out[:k]


def machine() -> dict:
    load = os.getloadavg()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1m": round(load[0], 1), "python": platform.python_version(),
            "commit": commit}


def save_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    return path
