"""The demo's first start as a new user meets it: ``gem-rag demo`` in a fresh process on an empty cache, timed
until the page is served and until ``/api/status`` says the index is ready (questions are answered from then
on), then one question over ``/v1/rag/answer``.

Cases (each its own GEM_RAG_CACHE under a temporary folder, one after the other):
- ``empty``: nothing cached, as on a fresh machine (the GGUF is converted, the index built);
- ``converted``: the converted model cached, no index (a new corpus version, or a cleared index cache).

Usage:
    python -m benchmarks.speed.first_start --json docs/first_start.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import machine, write_json

logger = logging.getLogger(__name__)
QUESTION = "How do I create a virtual environment?"


def get(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except OSError:
        return 0, {}
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {}  # the page


def first_start(cache: Path, port: int, timeout_s: float) -> dict:
    """Seconds from the command to the page and to the ready index, and the answer to QUESTION."""
    started = time.perf_counter()
    server = subprocess.Popen([str(Path(sys.executable).parent / "gem-rag"), "demo", "--port", str(port)],
                              env={**os.environ, "GEM_RAG_CACHE": str(cache)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base, result = f"http://127.0.0.1:{port}", {}
    try:
        while time.perf_counter() - started < timeout_s and "ready_s" not in result:
            if "page_s" not in result and get(base + "/")[0] == 200:
                result["page_s"] = round(time.perf_counter() - started, 1)
            if "page_s" in result and get(base + "/api/status")[1].get("state") == "ready":
                result["ready_s"] = round(time.perf_counter() - started, 1)
            time.sleep(0.2)
        asked = time.perf_counter()
        _, answer = get(base + "/v1/rag/answer", {"question": QUESTION})
        result.update(question=QUESTION, answer=answer.get("answer"), answer_s=round(time.perf_counter() - asked, 2))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the index per case")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cases = {}
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty"
        cases["empty"] = first_start(empty, args.port, args.timeout)
        logger.info("empty cache: %s", cases["empty"])
        converted = Path(folder) / "converted"
        converted.mkdir()
        (converted / "models").symlink_to(empty / "models")  # the model the first case converted, no index
        cases["converted"] = first_start(converted, args.port, args.timeout)
        logger.info("converted model cached: %s", cases["converted"])
    result = {"what": "the demo's first start (gem-rag demo, fresh process)", "machine": machine(),
              "command": "python -m benchmarks.speed.first_start" + (f" --json {args.json}" if args.json else ""),
              "cases": cases}
    if args.json:
        write_json(args.json, result)
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
