"""Decode throughput with concurrent generations (server requests arriving together): 1, 2, 4 and 8 threads each
generating 64 greedy tokens from a chat prompt, total tokens/s, on the torch and the llama.cpp backends; on both the
steps of all open generations run as one batch (gem_rag.core.step_batcher), and the steps each forward pass carried
are reported.

Usage:
    python -m benchmarks.speed.concurrent_decode --json docs/concurrent_decode.json
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import benchmark_arguments, machine, write_json

logger = logging.getLogger(__name__)
STREAMS = (1, 2, 4, 8)
NEW_TOKENS = 64


def total_rate(model, prompts: list[str]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(len(prompts)) as pool:
        tokens = sum(pool.map(lambda p: model.generate(p, max_new_tokens=NEW_TOKENS).completion_tokens, prompts))
    return round(tokens / (time.perf_counter() - started), 1)


def main() -> None:
    args = benchmark_arguments(__doc__, "runs/concurrent_decode").parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from gem_rag import GemModel

    torch.set_num_threads(args.threads)
    topics = ["rivers", "birds", "planets", "cheeses", "mountains", "poets", "trees", "oceans"]
    report: dict = {"what": "total decode tokens/s with concurrent generations", "machine": machine(args.threads),
                    "command": "python -m benchmarks.speed.concurrent_decode", "engines": {}}
    for name, options in (("torch", {}), ("llamacpp-f16", {"backend": "llamacpp"})):
        model = GemModel.from_pretrained(threads=args.threads, **options)
        prompts = [model.apply_chat_template([{"role": "user", "content": f"Write a long list of {t}, one per line."}])
                   for t in topics]
        total_rate(model, prompts[:1])  # warm-up
        report["engines"][name] = {str(n): total_rate(model, prompts[:n]) for n in STREAMS}
        report["engines"][name]["steps_per_decode_call"] = round(model.batcher.steps / model.batcher.batches, 2)
        logger.info("%s: %s", name, report["engines"][name])
        del model
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
