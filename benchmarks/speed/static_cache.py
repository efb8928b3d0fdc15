"""Decode tokens/s with a static KV cache: transformers ``generate`` with its default (dynamic) cache against
``cache_implementation="static"`` (preallocated key/value tensors, the layout ``torch.compile`` needs), beside
``GemModel.generate``, on the same model, prompt and threads, the three taking turns (the prompt, token count and
turn-taking of ``benchmarks.speed.backends``). Greedy outputs are compared too.

Usage:
    python -m benchmarks.speed.static_cache --json docs/static_cache.json
"""

from __future__ import annotations

import torch

from benchmarks.common import benchmark_arguments, machine, start, write_json
from benchmarks.speed.backends import NEW_TOKENS, PROMPT, median_rates


def main() -> None:
    args = benchmark_arguments(__doc__, "runs/static_cache").parse_args()
    model = start(args)
    prompt = model.apply_chat_template([{"role": "user", "content": PROMPT}])
    ids = torch.tensor([model.tokenizer(prompt, add_special_tokens=False).input_ids])
    outputs: dict[str, list[int]] = {}

    def plain(cache: str | None):
        def run() -> int:
            extra = {"cache_implementation": cache} if cache else {}
            with torch.inference_mode():
                out = model.hf_model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=model.pad_token_id,
                                              attention_mask=torch.ones_like(ids), **extra)
            outputs[cache or "dynamic"] = out[0, ids.shape[1]:].tolist()
            return out.shape[1] - ids.shape[1]
        return run

    rates = median_rates({"gem_generate": lambda: model.generate(prompt, max_new_tokens=NEW_TOKENS).completion_tokens,
                          "transformers_dynamic_cache": plain(None), "transformers_static_cache": plain("static")})
    report = {"what": "decode tokens/s, dynamic vs static KV cache (transformers generate) and GemModel.generate",
              "command": "python -m benchmarks.speed.static_cache", "machine": {**machine(args.threads),
                                                                                "dtype": str(model.dtype)},
              "prompt_tokens": int(ids.shape[1]), "new_tokens": NEW_TOKENS, "tokens_per_s": rates,
              "ratios": {"static_over_dynamic": round(rates["transformers_static_cache"]
                                                      / rates["transformers_dynamic_cache"], 2),
                         "gem_generate_over_dynamic": round(rates["gem_generate"]
                                                            / rates["transformers_dynamic_cache"], 2)},
              "static_greedy_equals_dynamic": outputs["static"] == outputs["dynamic"]}
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
