"""int8 dynamic quantisation of the linear layers (``torch.ao.quantization.quantize_dynamic``) against fp32 on the
same model, threads and inputs, in one process: decode tokens/s, embedding texts/s, and how far the embeddings and
the greedy text move. The lever issue 16 names for the embedding path; kept only if the numbers support it.

Usage:
    python -m benchmarks.speed.int8_dynamic --json docs/int8_dynamic.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, write_json
from benchmarks.speed.backends import PROMPT, median_rate

CORPUS = Path(__file__).resolve().parents[2] / "gem_rag" / "data" / "demo_corpus" / "texts"


def measure(model, prompt: str, texts: list[str]) -> dict:
    rate = median_rate(lambda: model.generate(prompt, max_new_tokens=64).completion_tokens)
    started = time.perf_counter()
    vectors = np.asarray(model.embed(texts, kind="document"), dtype=np.float32)
    return {"decode_tokens_per_s": rate, "embed_texts_per_s": round(len(texts) / (time.perf_counter() - started), 2),
            "vectors": vectors, "text": model.generate(prompt, max_new_tokens=64).text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=24, help="demo-corpus passages embedded (1,500 characters each)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    from gem_rag import get_default_model

    model = get_default_model()
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    texts = [f.read_text(encoding="utf-8")[start: start + 1500] for f in files for start in (0, 3000)][: args.texts]
    prompt = model.apply_chat_template([{"role": "user", "content": PROMPT}])
    fp32 = measure(model, prompt, texts)
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        quantize_dynamic(model.hf_model.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    int8 = measure(model, prompt, texts)
    cosines = (fp32["vectors"] * int8["vectors"]).sum(axis=1)
    rank_same = float(np.mean((fp32["vectors"] @ fp32["vectors"].T).argsort(1)[:, -2]
                              == (int8["vectors"] @ int8["vectors"].T).argsort(1)[:, -2]))
    result = {"what": "int8 dynamic quantisation of the decoder's linear layers vs fp32, same process",
              "machine": machine(args.threads),
              "command": "python -m benchmarks.speed.int8_dynamic" + (f" --json {args.json}" if args.json else ""),
              "fp32": {k: v for k, v in fp32.items() if k not in ("vectors", "text")},
              "int8": {k: v for k, v in int8.items() if k not in ("vectors", "text")},
              "embedding_cosine_int8_vs_fp32": {"min": round(float(cosines.min()), 4),
                                                "mean": round(float(cosines.mean()), 4)},
              "nearest_other_text_same": round(rank_same, 3),
              "greedy_text_same": fp32["text"] == int8["text"],
              "texts": len(texts)}
    if args.json:
        write_json(args.json, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
