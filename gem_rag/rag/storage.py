"""Crash-safe, versioned index folders with one writer at a time and checksummed versions.

Layout: ``<folder>/CURRENT`` names the live version ``<folder>/v-<stamp>/``; every version holds
``CHECKSUMS.json`` (sha256 and size of each of its files); ``<folder>/.lock`` is the writers' lock and holds
the PID of the writer that last took it.

What holds now (each checked in tests/test_storage_reliability.py, see docs/reliability.md):

- Durability: when :func:`write_version` returns, the new version's files, its checksums, ``CURRENT`` and the
  folder entries are fsynced. An interrupted write (exception, ``kill -9``, power loss) leaves the previous
  version current and loadable.
- One writer at a time: :func:`write_version` holds an exclusive ``flock`` on ``<folder>/.lock`` for the whole
  call, against other threads and processes alike. Another writer waits up to ``timeout`` seconds, then gets
  :class:`IndexLockedError` naming the holder's PID. The kernel drops the lock when its holder dies, so a
  killed writer never blocks the next one. (POSIX only: where ``fcntl`` is missing there is no lock.)
- Readers take no lock and never see a half-switched version: ``CURRENT`` changes by one atomic rename, and a
  version that stops being current is kept (always the one before current, others for ``grace`` seconds
  after they were replaced), so a reader that got a version path can finish reading it.
- Checksums: :func:`current_version` verifies the version's files against ``CHECKSUMS.json`` by default and
  raises :class:`CorruptIndexError` naming each damaged file. Versions saved before checksums existed load
  with a warning, unverified.
- Leftovers of interrupted writes (``.tmp-*`` folders, ``.CURRENT.*`` files) are removed by the next writer:
  with the lock held, no live writer owns them.

Example:
    >>> write_version(folder, lambda tmp: (tmp / "data.json").write_text("{}"))
    >>> read_json(current_version(folder) / "data.json")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path, PurePosixPath
from collections.abc import Callable, Iterable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: no writers' lock
    fcntl = None

logger = logging.getLogger(__name__)

POINTER = "CURRENT"
LOCK_FILE = ".lock"
CHECKSUMS = "CHECKSUMS.json"
CHECKSUMS_FORMAT = "gem_rag.checksums/1"
LOCK_TIMEOUT_S = 60.0  # how long a second writer waits for the first
RETIRED_GRACE_S = 60.0  # how long a replaced version stays readable (the one before current always stays)
_POLL_S = 0.02
_held: set[tuple[str, int]] = set()  # (folder, thread) pairs holding a writer lock in this process
_unverified_warned: set[str] = set()


class RagIndexError(ValueError):
    """Base of the index errors below (a ValueError, so callers that catch bad input catch it)."""


class CorruptIndexError(RagIndexError):
    """A persisted index is unreadable, incomplete, or its files do not match their checksums."""


class IndexMismatchError(RagIndexError):
    """A persisted index was built with another model, embedding dimension or store."""


class IndexLockedError(RagIndexError):
    """Another writer kept the index folder's lock for longer than this writer would wait."""


class NotAnIndexFolderError(RagIndexError, NotADirectoryError):
    """A file was given where an index folder was expected (also an OSError / NotADirectoryError)."""


class MissingKeyError(CorruptIndexError, KeyError):
    """A key a saved index must hold is missing (also a KeyError, for code that catches that)."""

    __str__ = BaseException.__str__  # the message, not KeyError's quoted repr


class StoredDict(dict):
    """A JSON object read by :func:`read_json`: ``data[key]`` on a missing key raises
    :class:`MissingKeyError` naming the key and the file (``get`` / ``in`` behave as for any dict)."""

    def __init__(self, data: dict, path: Path):
        super().__init__(data)
        self.path = path

    def __missing__(self, key):
        raise MissingKeyError(f"{self.path} has no {key!r} entry; the index is damaged or from another version")


# ---------------------------------------------------------------------------------------------- writing
def write_version(folder: str | Path, write: Callable[[Path], None], *, timeout: float = LOCK_TIMEOUT_S,
                  grace: float = RETIRED_GRACE_S) -> Path:
    """Write a new version of ``folder`` with ``write(tmp_folder)``, checksum it and make it current atomically.

    Holds the folder's writer lock for the whole call (waiting up to ``timeout`` s, else
    :class:`IndexLockedError`). Returns the new version folder. Versions replaced more than ``grace`` s ago
    are deleted, except the one before the new current one.
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotAnIndexFolderError(f"{folder} is a file, not an index folder")
    folder.mkdir(parents=True, exist_ok=True)
    with writer_lock(folder, timeout):
        _remove_leftovers(folder)
        previous = _previous_name(folder)
        name = _new_name()
        tmp = folder / f".tmp-{name}"
        tmp.mkdir()
        try:
            write(tmp)
            _write_checksums(tmp)
            _fsync_tree(tmp)
            os.rename(tmp, folder / name)
            _switch(folder, name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if previous and previous != name and (folder / previous).is_dir():
            os.utime(folder / previous)  # its mtime now says when it stopped being current
        _remove_retired(folder, keep={name, previous}, grace=grace)
    return folder / name


@contextlib.contextmanager
def writer_lock(folder: str | Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<folder>/.lock`` exclusively (flock) while the block runs; :class:`IndexLockedError` naming
    the holder's PID when it is not free within ``timeout`` seconds. The lock file is never deleted."""
    folder = Path(folder)
    key = (str(folder.resolve()), threading.get_ident())
    if key in _held:
        raise RuntimeError(f"{folder}: write_version called again from inside its own write callback")
    if fcntl is None:
        yield
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, folder, timeout)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(fd: int, folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + max(0.0, timeout)
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _lock_holder(folder)
            if time.monotonic() >= deadline:
                raise IndexLockedError(f"index at {folder} is being updated by {holder} (waited {timeout:g} s); "
                                       "try again when that update is done") from None
            if not waited:
                logger.info("Index at %s is being updated by %s; waiting up to %g s", folder, holder, timeout)
                waited = True
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def _lock_holder(folder: Path) -> str:
    try:
        pid = (folder / LOCK_FILE).read_text().strip()
    except OSError:
        pid = ""
    if not pid.isdigit():
        return "another writer"
    return f"PID {pid} (this process)" if int(pid) == os.getpid() else f"PID {pid}"


def _previous_name(folder: Path) -> str | None:
    """The current version's name before a write; None (with a warning) when ``CURRENT`` is damaged, so
    that writing a new version repairs the folder."""
    try:
        return _pointer_name(folder)
    except CorruptIndexError as err:
        logger.warning("%s; the new version replaces it", err)
        return None


def _new_name() -> str:
    now = time.time()
    return f"v-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}{int(now % 1 * 1e6):06d}-{uuid.uuid4().hex[:8]}"


def _switch(folder: Path, name: str) -> None:
    """Make ``name`` current: write the pointer beside ``CURRENT``, fsync, rename over it (atomic), fsync."""
    pointer_tmp = folder / f".{POINTER}.{uuid.uuid4().hex[:8]}"
    try:
        with open(pointer_tmp, "w", encoding="utf-8") as out:
            out.write(name)
            out.flush()
            os.fsync(out.fileno())
        os.replace(pointer_tmp, folder / POINTER)
    except BaseException:
        pointer_tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


def _remove_leftovers(folder: Path) -> None:
    """Remove ``.tmp-*`` folders and ``.CURRENT.*`` files (called with the lock held: all are stale)."""
    for entry in folder.iterdir():
        if entry.name.startswith(".tmp-"):
            logger.info("Removing %s, left by an interrupted write", entry)
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{POINTER}."):
            entry.unlink(missing_ok=True)


def _remove_retired(folder: Path, keep: set, grace: float) -> None:
    """Delete version folders not in ``keep`` whose mtime (when they were replaced) is over ``grace`` s old."""
    now = time.time()
    for entry in folder.iterdir():
        if not entry.name.startswith("v-") or entry.name in keep:
            continue
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > grace:
            shutil.rmtree(entry, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- checksums
def _version_files(version: Path) -> list[Path]:
    return sorted(p for p in version.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def _write_checksums(version: Path) -> None:
    files = {p.relative_to(version).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
             for p in _version_files(version)}
    (version / CHECKSUMS).write_text(json.dumps({"format": CHECKSUMS_FORMAT, "files": files}, indent=1))


def verify_version(version: str | Path) -> None:
    """Check every file listed in the version's ``CHECKSUMS.json`` (size, then sha256); raise
    :class:`CorruptIndexError` naming each missing or damaged file. A version without the file (saved before
    checksums existed) passes with a warning, once per process."""
    version = Path(version)
    listing = version / CHECKSUMS
    if not listing.is_file():
        if str(version) not in _unverified_warned:
            _unverified_warned.add(str(version))
            logger.warning("%s has no %s (saved by an older gem_rag): its files are not verified; save it "
                           "again to add checksums", version, CHECKSUMS)
        return
    data = read_json(listing)
    files = data.get("files")
    if data.get("format") != CHECKSUMS_FORMAT or not isinstance(files, dict):
        raise CorruptIndexError(f"{listing} is not a {CHECKSUMS_FORMAT} file; the index is damaged")
    damaged = [f"{rel} ({problem})" for rel, entry in sorted(files.items())
               if (problem := _check_file(version, rel, entry))]
    if damaged:
        raise CorruptIndexError(f"{version}: {', '.join(damaged)}: the file does not match {CHECKSUMS}; "
                                "the index is damaged")


def _check_file(version: Path, rel: str, entry) -> str | None:
    """What is wrong with one listed file, or None."""
    parts = PurePosixPath(rel).parts
    if not isinstance(entry, dict) or PurePosixPath(rel).is_absolute() or ".." in parts or not parts:
        return "bad checksum entry"
    path = version.joinpath(*parts)
    try:
        if path.stat().st_size != entry.get("bytes"):
            return "wrong size"
        return None if _sha256(path) == entry.get("sha256") else "checksum mismatch"
    except FileNotFoundError:
        return "missing"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- reading
def current_version(folder: str | Path, *, verify: bool = True) -> Path:
    """The live version folder of ``folder``, its checksums verified unless ``verify`` is False.

    Raises FileNotFoundError when ``folder`` does not exist, :class:`NotAnIndexFolderError` when it is a file,
    :class:`CorruptIndexError` when there is no live version or a file is damaged. ``CURRENT`` is read again
    once if the version it named is gone (replaced meanwhile).
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotAnIndexFolderError(f"{folder} is a file, not an index folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"no index at {folder}: the folder does not exist")
    for _ in range(2):
        name = _pointer_name(folder)
        if name is None:
            raise CorruptIndexError(f"{folder} holds no saved index ({POINTER} is missing); was it saved with .save()?")
        version = folder / name
        if version.is_dir():
            break
    else:
        raise CorruptIndexError(f"{folder}: {POINTER} names {name}, which is missing; the index is damaged")
    if verify:
        verify_version(version)
    return version


def _pointer_name(folder: Path) -> str | None:
    """The version name in ``CURRENT`` (None when there is none); CorruptIndexError if it is not one."""
    try:
        name = (folder / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptIndexError(f"{folder / POINTER} is unreadable ({err}); the index is damaged") from None
    if not name.startswith("v-") or "/" in name or "\\" in name:
        raise CorruptIndexError(f"{folder / POINTER} holds {name[:80]!r}, not a version name; the index is damaged")
    return name


def read_json(path: Path) -> StoredDict:
    """A JSON object from ``path`` as a :class:`StoredDict` (nested objects too, so a missing key raises
    :class:`MissingKeyError` naming it and the file), or :class:`CorruptIndexError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_hook=lambda obj: StoredDict(obj, path))
    except FileNotFoundError:
        raise CorruptIndexError(f"{path} is missing; the index is incomplete") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptIndexError(f"{path} is not valid JSON ({err}); the index is damaged") from None
    if not isinstance(data, dict):
        raise CorruptIndexError(f"{path} should hold a JSON object")
    return data


def require_keys(data: dict, keys: Iterable[str], path: str | Path) -> dict:
    """``data`` when it holds every one of ``keys``; else :class:`MissingKeyError` naming the missing ones."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise MissingKeyError(f"{path} has no {', '.join(repr(k) for k in missing)} "
                              f"entr{'y' if len(missing) == 1 else 'ies'}; the index is damaged or from another version")
    return data


# ---------------------------------------------------------------------------------------------- fsync
def _fsync_tree(folder: Path) -> None:
    for path in _version_files(folder) + [folder / CHECKSUMS]:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        _fsync_dir(sub)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """fsync a folder's entries (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
