#!/usr/bin/env bash
# Adds the llama.cpp backend (extra "llamacpp") to .venv. llama-cpp-python has no wheel for this platform on
# PyPI, so it is compiled from source once (~10-20 min on 2 cores) into a wheel kept outside the clone
# ($GEM_RAG_WHEELS, default ~/.cache/gem_rag/wheels); later runs, fresh clones included, install that wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VERSION=0.3.36
WHEELS=${GEM_RAG_WHEELS:-$HOME/.cache/gem_rag/wheels}
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION from source (once)"
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/python -m pip wheel -q --no-deps "llama-cpp-python==$VERSION" -w "$WHEELS"
fi
.venv/bin/python -m pip install -q "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl "gguf>=0.10"
