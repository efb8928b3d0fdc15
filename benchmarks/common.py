"""What every benchmark shares: where the data is, a description of the machine, writing results.

The data root is one flag (``--data-root``) or the environment variable ``GEM_RAG_DATA``, defaulting to the
shared folder next to the repository (``../shared/data``); nothing in the library needs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    parser.add_argument("--data-root", default=None, help="shared data folder (default: $GEM_RAG_DATA or ../shared/data)")
    parser.add_argument("--cache", default=cache, help="where the indexes are kept between runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the figures here")
    return parser


def start(args: argparse.Namespace):
    """Logging on, torch's thread count from ``args``; returns the shared default model."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from gem_rag import get_default_model

    torch.set_num_threads(args.threads)
    return get_default_model()
