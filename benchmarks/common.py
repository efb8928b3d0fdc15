"""What every benchmark shares: where the data is, a description of the machine, writing results, and the
SQuAD task of the RAG benchmarks (speed, quality and dev rooms alike).

The data root is one flag (``--data-root``) or the environment variable ``GEM_RAG_DATA``, defaulting to the
shared folder next to the repository (``../shared/data``); nothing in the library needs it. SQuAD is read by the
library's loader (``gem_rag.eval.data.load_squad``), nowhere else.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "rag_benchmarks"  # the RAG benchmarks' figures, rendered by benchmarks.reports.rag_report
SQUAD = "squad-v1.1-dev.json"  # under the data root
DATA_ROOT_HELP = "shared data folder (default: $GEM_RAG_DATA or ../shared/data)"


def data_root(flag: str | None = None) -> Path:
    """The shared data folder: ``flag``, else $GEM_RAG_DATA, else ../shared/data beside the repository."""
    root = Path(flag or os.environ.get("GEM_RAG_DATA") or ROOT.parent / "shared" / "data")
    if not root.is_dir():
        raise FileNotFoundError(f"no data folder at {root}: pass --data-root or set GEM_RAG_DATA")
    return root


def cpu_features() -> list[str]:
    """The CPU's bf16-relevant flags (amx_bf16, avx512_bf16) and its widest vector unit."""
    try:
        flags = next(line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]


def machine(threads: int | None = None) -> dict:
    """CPU model, cores, the threads the benchmark used, load average, Python and the commit measured."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "gem_rag"], capture_output=True, text=True, cwd=ROOT).stdout
    return {"cpu": cpu, "cpu_features": cpu_features(), "cores": os.cpu_count(), "threads": threads,
            "load_avg_1m": round(os.getloadavg()[0], 1), "python": platform.python_version(),
            "commit": commit.strip() + ("+uncommitted" if dirty.strip() else "")}


def write_json(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def benchmark_arguments(doc: str, cache: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: --data-root, --cache (indexes kept between runs),
    --threads and --json (where the figures go)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--cache", default=cache, help="where the indexes are kept between runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default=None,
                        help="the model's dtype (float32, bfloat16; default: bf16 where the CPU has bf16 units)")
    parser.add_argument("--json", default=None, help="write the figures here")
    return parser


def start(args: argparse.Namespace):
    """Logging on, torch's thread count and the model's dtype from ``args``; returns the shared default model (with
    the GEM artefact ``args.gem`` where the benchmark takes one)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from gem_rag import GemModel, get_default_model, set_default_model

    torch.set_num_threads(args.threads)
    if getattr(args, "dtype", None):
        os.environ["GEM_RAG_DTYPE"] = args.dtype  # read by GemModel.from_pretrained when given no dtype
    if getattr(args, "gem", None):
        set_default_model(GemModel.from_pretrained(gem_weights=args.gem))
    return get_default_model()


def save_result(name: str, result: dict) -> Path:
    """Write one RAG benchmark's figures to docs/rag_benchmarks/<name>.json."""
    return write_json(RESULTS / f"{name}.json", result)


def squad(root: str | None, n: int | None = None, seed: int = 0,
          paragraphs: int | None = None) -> tuple[list[dict], list[dict]]:
    """SQuAD v1.1 dev under the data root as (paragraphs [{id, title, text}], questions [{question, answers,
    paragraph_id, context}]): every paragraph in file order (or the first ``paragraphs``) and ``n`` of their
    questions drawn with ``seed`` (all, in file order, when ``n`` is None)."""
    from gem_rag.eval.data import load_squad, sample_questions

    data = load_squad(data_root(root) / SQUAD)
    passages = data.passages[:paragraphs]
    text = {p.id: p.text for p in passages}
    asked = sample_questions([q for q in data.questions if q.relevant[0] in text], n, seed)
    return ([{"id": p.id, "title": p.title.replace("_", " "), "text": p.text} for p in passages],
            [{"question": q.question, "answers": q.answers, "paragraph_id": q.relevant[0],
              "context": text[q.relevant[0]]} for q in asked])


def write_corpus_jsonl(paragraphs: list[dict], path: Path) -> Path:
    """``paragraphs`` ({id, title, text}) as a corpus .jsonl that ``RagPipeline.index`` reads."""
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in paragraphs) + "\n")
    return path


def paragraph_ranking(retrieved: Sequence, k: int) -> list[str]:
    """Paragraph ids in rank order (a paragraph counted once, at its best chunk)."""
    out: list[str] = []
    for r in retrieved:
        pid = r.chunk.metadata.get("doc_id") or r.chunk.metadata.get("source", "").rsplit("#", 1)[-1]
        if pid not in out:
            out.append(pid)
    return out[:k]


def add_question_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every question-answering benchmark over a saved SQuAD index takes."""
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
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
    """Logging on, torch's thread count from ``args``; returns the seeded question sample they ask for."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(args.threads)
    return squad(args.data_root, args.questions, seed=0)[1]


def command_line(module: str, args: argparse.Namespace, skip: tuple[str, ...] = ()) -> str:
    """The command that reruns ``module`` with ``args`` (every option spelled out), for the results file."""
    words = [f"python -m {module}"]
    for name, value in vars(args).items():
        if name not in skip and value is not None and value is not False:
            words.append(f"--{name.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return " ".join(words)
