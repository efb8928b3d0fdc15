"""What every benchmark shares: where the data is, a description of the machine, writing results.

The data root is one flag (``--data-root``) or the environment variable ``GEM_RAG_DATA``, defaulting to the
shared folder next to the repository (``../shared/data``); nothing in the library needs it.
"""

from __future__ import annotations

import json
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
