"""The torch and llama.cpp backends of GemModel side by side, with the two-model pipeline and plain engines as
baselines, each engine in a process of its own (so peak RSS is its own), the same threads, one run.

Engines: ``torch`` (fp32); ``torch-bf16`` (bf16: the default on a CPU with bf16 units); ``llamacpp`` (the GGUF's
own Q4_1 weights); ``llamacpp-f16`` (the same weights re-stored as F16 once: faster prefill, slower decode);
``two-model`` (all-MiniLM-L6-v2 embeds, torch SmolLM2 in the default dtype writes). ``--engines`` runs a subset.

Per engine:

- decode tokens/s: greedy, a ~150-token chat prompt, 64 new tokens (EOS suppressed by asking for a long list),
  median of 5 after a warm-up, our loop and the plain engine taking turns; baselines: plain transformers ``generate`` (fp32, same weights) and llama.cpp's
  own high-level ``Llama`` on the same GGUF (the ceiling of the llama.cpp backend);
- indexing: the bundled demo corpus through ``RagPipeline.index`` (chunk + sentence embeddings, as the demo's
  first start does), chunks/s and seconds, plus the model load; all-MiniLM-L6-v2 (two-model pipeline) beside;
- answers: ``RagPipeline.answer`` (default settings) over the development questions that the demo corpus
  answers, p50 / p95 seconds; answers kept, so the run reports how often the backends give the same answer;
- peak RSS of the process after all of that.

Usage:
    python -m benchmarks.speed.backends --json docs/backends.json
    python -m benchmarks.speed.backends --engines torch,torch-bf16,two-model --json docs/backends_bf16.json
    python -m benchmarks.speed.backends --engine llamacpp      # one engine, figures to stdout
    python -m benchmarks.speed.backends --decode-only --json docs/decode.json   # decode rates alone (minutes)
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import benchmark_arguments, machine, write_json
from benchmarks.dev.reader_dev import score

logger = logging.getLogger(__name__)
ENGINES = ("torch", "torch-bf16", "llamacpp", "llamacpp-f16", "two-model")  # llamacpp: the GGUF's own Q4_1 weights
DTYPES = {"torch": "float32", "torch-bf16": "bfloat16"}  # two-model: the default dtype
PROMPT = ("Here is a passage.\n\nThe aardvark is a medium-sized, burrowing, nocturnal mammal native to Africa. It is "
          "the only living species of the order Tubulidentata. Unlike most other insectivores, it has a long pig-like "
          "snout, which is used to sniff out food. It roams over most of the southern two-thirds of the African "
          "continent, avoiding areas that are mainly rocky. A nocturnal feeder, it subsists on ants and termites, "
          "which it will dig out of their hills using its sharp claws and powerful legs.\n\n"
          "Write a numbered list of twenty facts about animals of Africa, one per line.")
NEW_TOKENS = 64


def median_rate(run, repeats: int = 3) -> float:
    return median_rates({"run": run}, repeats)["run"]


def median_rates(runs: dict, repeats: int = 5) -> dict[str, float]:
    """Tokens/s of each ``runs`` callable (it returns the tokens it made): the median of ``repeats`` timed calls
    after a warm-up, the callables taking turns so that a machine whose speed drifts (a shared VM) slows all alike."""
    for run in runs.values():
        run()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            tokens = run()
            rates[name].append(tokens / (time.perf_counter() - started))
    return {name: round(float(np.median(r)), 1) for name, r in rates.items()}


def decode_rates(model, engine: str, threads: int) -> dict:
    """GemModel.generate's tokens/s and, measured in turns with it, the plain engine's on the same weights."""
    prompt = model.apply_chat_template([{"role": "user", "content": PROMPT}])
    runs = {"gem_generate": lambda: model.generate(prompt, max_new_tokens=NEW_TOKENS).completion_tokens}
    if engine.startswith("torch"):
        import torch

        ids = torch.tensor([model.tokenizer(prompt, add_special_tokens=False).input_ids])

        def plain() -> int:
            with torch.inference_mode():
                out = model.hf_model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                              attention_mask=torch.ones_like(ids), pad_token_id=model.pad_token_id)
            return out.shape[1] - ids.shape[1]

        runs["transformers_generate"] = plain
    if engine.startswith("llamacpp"):
        from llama_cpp import Llama

        plain_llama = Llama(str(model.context.path), n_ctx=2048, n_threads=threads, verbose=False)
        runs["llama_cpp_python_Llama"] = lambda: plain_llama.create_completion(
            prompt, max_tokens=NEW_TOKENS, temperature=0.0)["usage"]["completion_tokens"]
    return {"prompt_tokens": model.count_tokens(prompt), **median_rates(runs)}


def dev_questions() -> list[dict]:
    from benchmarks.dev.reader_dev import all_rows

    return [row for row in all_rows() if row["corpus"] == "demo"]


def run_engine(engine: str, threads: int, questions: int, decode_only: bool = False) -> dict:
    import torch

    from gem_rag import GemModel
    from gem_rag.rag import RagPipeline
    from gem_rag.server.indexes import BUNDLED_CORPUS

    torch.set_num_threads(threads)
    started = time.perf_counter()
    if engine.startswith("llamacpp"):
        model = GemModel.from_pretrained(backend="llamacpp", threads=threads,
                                         gguf_type="f16" if engine == "llamacpp-f16" else "stored")
    else:
        model = GemModel.from_pretrained(threads=threads, dtype=DTYPES.get(engine))
    out: dict = {"engine": engine, "model_load_s": round(time.perf_counter() - started, 1),
                 "dtype": str(getattr(model, "dtype", "gguf"))}
    embedder = None
    if engine == "two-model":
        from gem_rag.baselines import EncoderEmbedder

        embedder = EncoderEmbedder.minilm()
    else:
        out["decode_tokens_per_s"] = decode_rates(model, engine, threads)
    if decode_only:
        return out
    pipeline = RagPipeline(model, embedder=embedder)
    report = pipeline.index(BUNDLED_CORPUS)
    out["index"] = {"chunks": report.chunks_added, "seconds": round(report.seconds, 1),
                    "chunks_per_s": round(report.chunks_added / report.seconds, 2)}
    rows = dev_questions()[:questions]
    pipeline.answer("warm-up question?")
    times, answers, correct = [], [], 0
    for row in rows:
        started = time.perf_counter()
        answer = pipeline.answer(row["question"])
        times.append(time.perf_counter() - started)
        answers.append(answer.answer)
        correct += bool(score(row, answer)["correct"])
    out["answer_s"] = {"p50": round(float(np.percentile(times, 50)), 3), "p95": round(float(np.percentile(times, 95)), 3),
                       "questions": len(rows), "correct": correct}
    out["answers"] = answers
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    parser = benchmark_arguments(__doc__, "runs/backends")
    parser.add_argument("--engine", choices=ENGINES, help="run one engine in this process and print its figures")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of {ENGINES} (default: all)")
    parser.add_argument("--questions", type=int, default=95, help="development questions on the demo corpus")
    parser.add_argument("--decode-only", action="store_true",
                        help="decode rates only (the engines with a decode loop), ratios of those")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.threads, args.questions, args.decode_only)))
        return
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise SystemExit(f"unknown engines {unknown}; choose from {ENGINES}")
    engines = [e for e in engines if e != "two-model"] if args.decode_only else engines
    partial = Path(args.cache) / ("partial_decode.json" if args.decode_only else "partial.json")
    results = json.loads(partial.read_text()) if partial.is_file() else {}  # finished engines: a killed run resumes
    for engine in engines:
        if engine in results:
            continue
        logger.info("engine %s ...", engine)
        done = subprocess.run([sys.executable, "-m", "benchmarks.speed.backends", "--engine", engine,
                               "--threads", str(args.threads), "--questions", str(args.questions)]
                              + ["--decode-only"] * args.decode_only,
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
        if done.returncode:
            raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        write_json(partial, results)
        logger.info("%s: %s", engine, {k: v for k, v in results[engine].items() if k != "answers"})
    if args.decode_only:
        report = {"what": "GemModel decode rates on both backends; each engine in its own process",
                  "command": f"python -m benchmarks.speed.backends --decode-only --threads {args.threads} --engines {args.engines}",
                  "machine": machine(args.threads), "engines": results, "ratios": decode_ratios(results)}
    else:
        report = {"what": "GemModel backends: decode, indexing, answers, memory; each engine in its own process",
                  "command": f"python -m benchmarks.speed.backends --engines {args.engines} --json {args.json}",
                  "machine": machine(args.threads), "engines": results, "ratios": ratios(results)}
    logger.info("ratios: %s", report["ratios"])
    if args.json:
        write_json(args.json, report)


def decode_ratios(results: dict) -> dict:
    """Each engine's decode rate over the fp32 torch backend's and over its plain engine's (its ceiling)."""
    rates = {engine: out["decode_tokens_per_s"] for engine, out in results.items() if "decode_tokens_per_s" in out}
    out: dict = {}
    for engine, rate in rates.items():
        plain = rate.get("transformers_generate") or rate.get("llama_cpp_python_Llama")
        if plain:
            out[f"decode_{engine}_over_its_plain_engine"] = round(rate["gem_generate"] / plain, 2)
        if engine != "torch" and "torch" in rates:
            out[f"decode_{engine}_over_torch"] = round(rate["gem_generate"] / rates["torch"]["gem_generate"], 2)
    return out


def ratios(results: dict) -> dict:
    """Decode ratios, and for every single-model engine: indexing, answer latency and peak RSS against the
    two-model pipeline, indexing against fp32 torch, and how many answers equal fp32 torch's."""
    out = decode_ratios(results)
    two, base = results.get("two-model"), results.get("torch")
    for engine, run in ((e, r) for e, r in results.items() if e != "two-model"):
        if two:
            out[f"index_chunks_per_s_{engine}_over_minilm"] = round(run["index"]["chunks_per_s"]
                                                                    / two["index"]["chunks_per_s"], 2)
            for q in ("p50", "p95"):
                out[f"answer_{q}_{engine}_over_two_model"] = round(run["answer_s"][q] / two["answer_s"][q], 2)
            out[f"peak_rss_{engine}_over_two_model"] = round(run["peak_rss_mb"] / two["peak_rss_mb"], 2)
        if base and engine != "torch":
            out[f"index_chunks_per_s_{engine}_over_torch"] = round(run["index"]["chunks_per_s"]
                                                                   / base["index"]["chunks_per_s"], 2)
            same = sum(a == b for a, b in zip(base["answers"], run["answers"]))
            out[f"answers_identical_torch_vs_{engine}"] = f"{same}/{len(base['answers'])}"
    return out


if __name__ == "__main__":
    main()
