"""Index folders (gem_rag.rag.storage): one writer at a time, readers never see a half-switched version,
every version checksummed, leftovers cleaned. Fast, no model; the guarantees are listed in docs/reliability.md.

Every test here failed on the storage.py before issue 19 (two concurrent saves destroyed the folder, a reader
saw transient errors, a flipped byte loaded silently, temp files stayed, a missing key was a raw KeyError).
"""

import hashlib
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
import torch

from gem_rag.rag import Chunk, FaissStore
from gem_rag.rag import storage

FORK = multiprocessing.get_context("fork")  # the workers inherit the imported modules: no re-import


def _writer(tag: str, size: int = 4096):
    """A write callback putting a random payload and a JSON file naming it in the version folder."""
    def write(tmp):
        payload = os.urandom(size)
        (tmp / "data.bin").write_bytes(payload)
        (tmp / "meta.json").write_text(json.dumps({"writer": tag, "sha256": hashlib.sha256(payload).hexdigest()}))
    return write


def _check_loadable(folder) -> str:
    """Load the live version as a reader would (checksums verified) and check its files agree; its writer."""
    version = storage.current_version(folder)
    meta = json.loads((version / "meta.json").read_text())
    assert hashlib.sha256((version / "data.bin").read_bytes()).hexdigest() == meta["sha256"], version
    return meta["writer"]


def _save_trials(folders, barrier, tag, report):
    """Worker: for each trial folder, meet the other worker at the barrier, then save into it."""
    errors = []
    for folder in folders:
        barrier.wait(timeout=60)
        try:
            storage.write_version(folder, _writer(tag))
        except Exception as err:  # reported to the test, which fails on any
            errors.append(f"{folder.name}: {err!r}")
    report.write_text(json.dumps(errors))


def test_concurrent_saves_from_two_processes_leave_a_loadable_folder(tmp_path):
    folders = [tmp_path / f"trial{i}" for i in range(50)]
    barrier = FORK.Barrier(2)
    workers = [FORK.Process(target=_save_trials, args=(folders, barrier, tag, tmp_path / f"{tag}.json"))
               for tag in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
        assert worker.exitcode == 0
    errors = [e for tag in "ab" for e in json.loads((tmp_path / f"{tag}.json").read_text())]
    broken = []
    for folder in folders:
        try:
            _check_loadable(folder)
            versions = sorted(folder.glob("v-*"))
            assert len(versions) == 2, versions  # both saves landed; the one before current is kept
            for version in versions:
                storage.verify_version(version)
        except Exception as err:
            broken.append(f"{folder.name}: {err!r}")
    assert not errors and not broken, f"{len(errors)} failed saves, {len(broken)}/50 broken folders: {(errors + broken)[:3]}"


def test_two_threads_saving_into_one_folder_take_turns(tmp_path):
    for trial in range(20):
        folder = tmp_path / f"t{trial}"
        barrier, errors = threading.Barrier(2), []

        def save(tag):
            barrier.wait(timeout=30)
            try:
                storage.write_version(folder, _writer(tag))
            except Exception as err:
                errors.append(repr(err))

        threads = [threading.Thread(target=save, args=(tag,)) for tag in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors and _check_loadable(folder) in "ab" and len(list(folder.glob("v-*"))) == 2


def _write_loop(folder, count, tag, report):
    errors = []
    for _ in range(count):
        try:
            storage.write_version(folder, _writer(tag, size=64 * 1024))
        except Exception as err:
            errors.append(repr(err))
    report.write_text(json.dumps(errors))


def _read_loop(folder, stop, report):
    reads, errors = 0, []
    while not stop.is_set() or reads < 20:
        try:
            _check_loadable(folder)
            reads += 1
        except Exception as err:
            errors.append(repr(err))
    report.write_text(json.dumps({"reads": reads, "errors": errors[:5], "failed": len(errors)}))


def test_a_reader_never_sees_an_error_while_two_processes_write(tmp_path):
    folder = tmp_path / "idx"
    storage.write_version(folder, _writer("first"))
    stop = FORK.Event()
    reader = FORK.Process(target=_read_loop, args=(folder, stop, tmp_path / "reader.json"))
    writers = [FORK.Process(target=_write_loop, args=(folder, 40, tag, tmp_path / f"{tag}.json")) for tag in "ab"]
    reader.start()
    for worker in writers:
        worker.start()
    for worker in writers:
        worker.join(timeout=180)
    stop.set()
    reader.join(timeout=60)
    assert reader.exitcode == 0 and all(w.exitcode == 0 for w in writers)
    result = json.loads((tmp_path / "reader.json").read_text())
    write_errors = [e for tag in "ab" for e in json.loads((tmp_path / f"{tag}.json").read_text())]
    assert result["failed"] == 0 and not write_errors, (result, write_errors[:3])
    assert result["reads"] >= 20 and _check_loadable(folder) in "ab"


def test_replaced_versions_stay_readable_for_the_grace_period_then_go(tmp_path):
    folder = tmp_path / "idx"
    first, second, third = (storage.write_version(folder, _writer(tag)) for tag in "abc")
    assert first.is_dir() and second.is_dir() and third.is_dir()  # a reader of `first` can finish
    fourth = storage.write_version(folder, _writer("d"), grace=0)
    assert sorted(folder.glob("v-*")) == sorted([third, fourth])  # the one before current always stays
    assert _check_loadable(folder) == "d"


def test_a_flipped_byte_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "idx"
    storage.write_version(folder, _writer("a"))
    data = storage.current_version(folder) / "data.bin"
    damaged = bytearray(data.read_bytes())
    damaged[1000] ^= 0x01
    data.write_bytes(bytes(damaged))
    with pytest.raises(storage.CorruptIndexError, match=r"data\.bin \(checksum mismatch\)"):
        storage.current_version(folder)
    (storage.current_version(folder, verify=False) / "meta.json").unlink()
    with pytest.raises(storage.CorruptIndexError, match=r"meta\.json \(missing\)"):
        storage.current_version(folder)


def test_a_flipped_byte_in_the_faiss_vectors_is_refused_on_load(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    store = FaissStore()
    store.add([f"c{i}" for i in range(20)], vectors, [Chunk(f"c{i}", f"text {i}", {}) for i in range(20)])
    store.persist(tmp_path / "idx")
    index_file = storage.current_version(tmp_path / "idx") / "index.faiss"
    damaged = bytearray(index_file.read_bytes())
    offset = bytes(damaged).find(vectors[7].tobytes())  # chunk c7's vector, as FAISS stores it
    assert offset > 0
    damaged[offset + 5] ^= 0x10  # a changed vector: FAISS itself reads this without complaint
    index_file.write_bytes(bytes(damaged))
    with pytest.raises(storage.CorruptIndexError, match=r"index\.faiss"):
        FaissStore.load(tmp_path / "idx")


def _hold_lock(folder, ready):
    def write(tmp):
        ready.write_text(str(os.getpid()))
        time.sleep(600)
    storage.write_version(folder, write)


def test_a_second_writer_is_told_the_pid_and_a_killed_writer_blocks_nobody(tmp_path):
    folder, ready = tmp_path / "idx", tmp_path / "ready"
    storage.write_version(folder, _writer("a"))
    holder = FORK.Process(target=_hold_lock, args=(folder, ready))
    holder.start()
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        started = time.monotonic()
        with pytest.raises(storage.IndexLockedError, match=rf"index at .*idx is being updated by PID {holder.pid}"):
            storage.write_version(folder, _writer("b"), timeout=0.3)
        assert 0.25 < time.monotonic() - started < 5
        assert _check_loadable(folder) == "a"  # readers are not blocked by a writer
    finally:
        holder.kill()  # SIGKILL mid-write: the kernel drops its lock
        holder.join(timeout=30)
    assert list(folder.glob(".tmp-*")) and _check_loadable(folder) == "a"  # killed mid-write: the old one is current
    started = time.monotonic()
    storage.write_version(folder, _writer("c"), timeout=5)
    assert time.monotonic() - started < 2 and _check_loadable(folder) == "c"
    assert not list(folder.glob(".tmp-*"))


def test_leftovers_of_interrupted_writes_are_removed_by_the_next_writer(tmp_path):
    folder = tmp_path / "idx"
    storage.write_version(folder, _writer("a"))
    (folder / ".CURRENT.deadbeef").write_text("v-never")
    (folder / ".tmp-v-interrupted").mkdir()
    (folder / ".tmp-v-interrupted" / "index.faiss").write_bytes(b"partial")
    storage.write_version(folder, _writer("b"))
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [".lock"]
    assert _check_loadable(folder) == "b"


def test_a_missing_key_in_a_saved_json_file_is_a_corrupt_index_naming_it(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps({"format": "gem_rag.pipeline/1", "store": {"kind": "FaissStore"}}))
    data = storage.read_json(path)
    with pytest.raises(storage.CorruptIndexError, match=r"pipeline\.json has no 'manifest' entry") as caught:
        data["manifest"]
    assert isinstance(caught.value, KeyError)  # code that catches KeyError still does
    with pytest.raises(storage.CorruptIndexError, match="'dim'"):
        data["store"]["dim"]
    assert data.get("manifest") is None and data == {"format": "gem_rag.pipeline/1", "store": {"kind": "FaissStore"}}
    with pytest.raises(storage.CorruptIndexError, match="'sources', 'examples' entries"):
        storage.require_keys(data, ["format", "sources", "examples"], path)


def test_a_file_given_as_an_index_folder_is_named_as_a_file(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an index")
    with pytest.raises(NotADirectoryError, match=r"notes\.txt is a file, not an index folder"):
        storage.current_version(notes)
    with pytest.raises(storage.RagIndexError, match="is a file, not an index folder"):
        FaissStore.load(notes)
    with pytest.raises(storage.RagIndexError, match="is a file, not an index folder"):
        storage.write_version(notes, _writer("a"))
    assert notes.read_text() == "not an index"


def test_a_training_checkpoint_loads_with_weights_only(tmp_path):
    from dataclasses import asdict

    from gem_rag.training.config import TrainConfig
    from gem_rag.training.trainer import plain_values, read_checkpoint

    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), betas=(0.9, 0.98))
    layer(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    state = {"phase": 2, "step": np.int64(7), "history": [{"loss": np.float32(0.5)}], "seconds": {"1": 1.5}}
    config = asdict(TrainConfig(rows="rows.jsonl.gz", out_dir=str(tmp_path), extra={"where": tmp_path}))
    torch.save({"model": layer.state_dict(), "optimizer": optimizer.state_dict(), "state": plain_values(state),
                "config": plain_values(config)}, tmp_path / "checkpoint.pt")
    saved = read_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["state"] == {"phase": 2, "step": 7, "history": [{"loss": 0.5}], "seconds": {"1": 1.5}}
    assert saved["config"]["extra"] == {"where": str(tmp_path)} and torch.equal(saved["model"]["weight"], layer.weight)
    torch.save({"state": {"where": tmp_path}}, tmp_path / "object.pt")  # a Python object: not unpickled
    with pytest.raises(ValueError, match=r"object\.pt holds objects other than tensors"):
        read_checkpoint(tmp_path / "object.pt")
