"""The one-off GGUF -> safetensors conversion of the default model, with and without the memoised GGUF parsing of
``gem_rag.core.loading`` (one process, into temporary folders; the file is read once beforehand so both runs
find it in the page cache), and whether both write the same bytes.

Usage:
    python -m benchmarks.speed.gguf_conversion --json docs/gguf_conversion.json
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from gem_rag.core import loading

    gguf = loading.default_gguf_path()
    gguf.read_bytes()  # page cache: both runs read it from memory
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        memoised = loading._gguf_read_once
        for case, reading in (("parsed_per_call", contextlib.nullcontext), ("memoised", memoised)):
            loading._gguf_read_once = reading  # convert_gguf enters it around the transformers loads
            started = time.perf_counter()
            loading.convert_gguf(gguf, Path(folder) / case)
            seconds[case] = round(time.perf_counter() - started, 1)
        loading._gguf_read_once = memoised
        same = filecmp.cmp(Path(folder) / "parsed_per_call" / "model.safetensors",
                           Path(folder) / "memoised" / "model.safetensors", shallow=False)
    result = {"what": "GGUF conversion of the default model", "machine": machine(),
              "command": "python -m benchmarks.speed.gguf_conversion" + (f" --json {args.json}" if args.json else ""),
              "seconds": seconds, "speed_up": round(seconds["parsed_per_call"] / seconds["memoised"], 2),
              "same_safetensors_bytes": same}
    if args.json:
        write_json(args.json, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
