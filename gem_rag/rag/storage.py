"""Crash-safe folders: a new version is written to a temporary folder, then made current by one atomic
rename of a small pointer file. An interrupted write leaves the previous version current and usable.

Layout: ``<folder>/CURRENT`` names the live version ``<folder>/v-<stamp>/``; older versions are removed
after the switch.

Example:
    >>> write_version(folder, lambda tmp: (tmp / "data.json").write_text("{}"))
    >>> current_version(folder) / "data.json"
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

POINTER = "CURRENT"


class RagIndexError(ValueError):
    """Base of the index errors below (a ValueError, so callers that catch bad input catch it)."""


class CorruptIndexError(RagIndexError):
    """A persisted index is unreadable or incomplete."""


class IndexMismatchError(RagIndexError):
    """A persisted index was built with another model, embedding dimension or store."""


def write_version(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a new version of ``folder`` with ``write(tmp_folder)`` and make it current atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = folder / f".tmp-{name}"
    tmp.mkdir()
    try:
        write(tmp)
        for file in tmp.iterdir():
            _fsync(file)
        final = folder / name
        os.rename(tmp, final)
        pointer_tmp = folder / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        pointer_tmp.write_text(name)
        _fsync(pointer_tmp)
        os.replace(pointer_tmp, folder / POINTER)  # the atomic switch
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in folder.iterdir():  # previous versions and leftovers of interrupted writes
        if old.name != name and (old.name.startswith("v-") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def current_version(folder: str | Path) -> Path:
    """The live version folder of ``folder``; raises :class:`CorruptIndexError` if there is none."""
    folder = Path(folder)
    pointer = folder / POINTER
    if not folder.is_dir():
        raise FileNotFoundError(f"no index at {folder}: the folder does not exist")
    if not pointer.is_file():
        raise CorruptIndexError(f"{folder} holds no saved index ({POINTER} is missing); was it saved with .save()?")
    version = folder / pointer.read_text().strip()
    if not version.is_dir():
        raise CorruptIndexError(f"{folder}: {POINTER} names {version.name}, which is missing; the index is damaged")
    return version


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or :class:`CorruptIndexError` naming the file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptIndexError(f"{path} is missing; the index is incomplete") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptIndexError(f"{path} is not valid JSON ({err}); the index is damaged") from None
    if not isinstance(data, dict):
        raise CorruptIndexError(f"{path} should hold a JSON object")
    return data


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
