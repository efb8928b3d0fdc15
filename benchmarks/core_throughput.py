"""Embedding and decoding throughput of GemModel vs a plain transformers forward/generate of the same model.

Run (writes the "Core throughput" section of docs/benchmarks.md):
    .venv/bin/python benchmarks/core_throughput.py --corpus ../shared/data/corpus/python-3.11-docs.jsonl --n 2000

Both sides embed the same ~256-token chunks in the same length-sorted batches, so the ratio is the library's
overhead (tokenisation, batching, pooling); decoding compares GemModel.generate with model.generate (greedy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import machine_line, write_section  # noqa: E402

from gem_rag import GemModel  # noqa: E402


def load_chunks(corpus: Path, n: int, model: GemModel, chunk_tokens: int = 256) -> list[str]:
    """The first ``n`` chunks of ``chunk_tokens`` tokens cut from the corpus pages, in file order."""
    chunks: list[str] = []
    with corpus.open() as lines:
        for line in lines:
            ids = model.tokenizer(json.loads(line)["text"], add_special_tokens=False).input_ids
            for start in range(0, len(ids) - chunk_tokens + 1, chunk_tokens):
                chunks.append(model.tokenizer.decode(ids[start:start + chunk_tokens]))
                if len(chunks) == n:
                    return chunks
    return chunks


def plain_transformers_embed(model: GemModel, texts: list[str], batch_size: int) -> None:
    """What a user would write by hand: tokenise with padding, forward the backbone, gather the last token."""
    tok, hf = model.tokenizer, model.hf_model
    tok.padding_side = "right"
    tok.pad_token = tok.pad_token or tok.eos_token
    order = sorted(texts, key=len, reverse=True)
    for start in range(0, len(order), batch_size):
        batch = tok([t + "<|gem_0|>" for t in order[start:start + batch_size]], padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = hf.base_model(**batch).last_hidden_state
        last = batch["attention_mask"].sum(1) - 1
        torch.nn.functional.normalize(hidden[torch.arange(len(last)), last].float(), dim=-1).numpy()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def embedding_rows(chunks: list[str], batch_size: int) -> list[str]:
    rows = []
    for dtype in ("float32", "bfloat16"):
        model = GemModel.from_pretrained(dtype=dtype)
        tokens = sum(len(r) for r in model._embedding_rows(chunks, model.max_length))
        model.embed(chunks[:batch_size], batch_size=batch_size)  # warm-up
        ours = timed(lambda: model.embed(chunks, batch_size=batch_size, token_budget=batch_size * 260))
        plain = timed(lambda: plain_transformers_embed(model, chunks, batch_size))
        rows.append(f"| embed, {dtype} | {len(chunks) / ours:.1f} texts/s, {tokens / ours:.0f} tok/s | "
                    f"{len(chunks) / plain:.1f} texts/s, {tokens / plain:.0f} tok/s | {plain / ours:.3f} |")
        print(rows[-1], flush=True)
    return rows


def decoding_rows(new_tokens: int) -> list[str]:
    rows = []
    prompt = "Write a long story about a lighthouse keeper who finds a message in a bottle."
    for dtype in ("float32", "bfloat16"):
        model = GemModel.from_pretrained(dtype=dtype)
        chat = model.apply_chat_template([{"role": "user", "content": prompt}])
        ids = model.tokenizer(chat, return_tensors="pt", add_special_tokens=False)
        model.generate(chat, max_new_tokens=8)  # warm-up
        start = time.perf_counter()
        ours = model.generate(chat, max_new_tokens=new_tokens)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.hf_model.generate(**ids, max_new_tokens=new_tokens, do_sample=False,
                                          pad_token_id=model.pad_token_id)
        plain_s = time.perf_counter() - start
        plain_tokens = out.shape[1] - ids["input_ids"].shape[1]
        ours_rate, plain_rate = ours.completion_tokens / ours_s, plain_tokens / plain_s
        rows.append(f"| decode, {dtype} (greedy, {ours.completion_tokens} tokens) | {ours_rate:.1f} tok/s | "
                    f"{plain_rate:.1f} tok/s | {ours_rate / plain_rate:.3f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("../shared/data/corpus/python-3.11-docs.jsonl"))
    parser.add_argument("--n", type=int, default=2000, help="number of ~256-token chunks to embed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()

    chunks = load_chunks(args.corpus, args.n, GemModel.from_pretrained())
    rows = embedding_rows(chunks, args.batch_size) + decoding_rows(args.new_tokens)
    command = "python " + " ".join(sys.argv)
    body = "\n".join([
        f"Command: `{command}`  ",
        f"Machine: {machine_line()}  ",
        f"Date: {time.strftime('%Y-%m-%d')}. Chunks: {len(chunks)} x 256 tokens of the Python 3.11 docs.",
        "",
        "| what | gem_rag (GemModel) | plain transformers, same model | ratio (gem_rag / plain) |",
        "|---|---|---|---|",
        *rows,
        "",
        "A ratio of 1.0 means no library overhead; above 1.0, gem_rag is faster (length-sorted, token-budgeted batches).",
    ])
    write_section(args.docs, "Core throughput", body)


if __name__ == "__main__":
    main()
