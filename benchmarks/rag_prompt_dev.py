"""Prompt design check on questions written for this project over the training corpus (wikipedia-sample),
NOT SQuAD: oracle-context token F1 and abstention for prompt variants and answer modes.

    .venv/bin/python benchmarks/rag_prompt_dev.py [--variants default,generative,...] [--distractors 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gem_rag import get_default_model
from gem_rag.eval.metrics import squad_f1
from gem_rag.rag import ABSTAIN_PHRASE, RagPipeline
from gem_rag.rag.prompt import DEFAULT_EXAMPLES, DEFAULT_SYSTEM
from rag_common import RESULTS, machine, save_result
from reader_dev_items import ITEMS

# (context from corpus/wikipedia-sample.jsonl, question, gold answers); None gold = not answerable from the context
DEV = [
    ("The population is growing by 2.184% annually. There are 44.51 births and 24.81 deaths per 1,000 citizens. "
     "The net migration rate is 2.14 migrants per 1,000 citizens. The fertility rate of Angola is 5.97 children born "
     "per woman as of 2011.", "What is the fertility rate of Angola?", ["5.97 children born per woman", "5.97"]),
    ("Asia has the second largest nominal GDP of all continents, after Europe, but the largest when measured in "
     "purchasing power parity. As of 2011, the largest economies in Asia are China, Japan, India, South Korea and "
     "Indonesia.", "Which continent has the largest nominal GDP?", ["Europe"]),
    ("Connes was awarded the Fields Medal in 1982, the Crafoord Prize in 2001 and the gold medal of the CNRS in 2004. "
     "He was an invited speaker at the ICM in 1974 at Vancouver and in 1986 at Berkeley.",
     "When did Connes receive the Fields Medal?", ["1982"]),
    ("Popularity of the song increased greatly following the September 11 attacks; at some sporting events it was "
     "sung in addition to the traditional singing of the national anthem.",
     "After which event did the song become more popular?", ["the September 11 attacks", "September 11 attacks"]),
    ("Angola is the third-largest trading partner of the United States in Sub-Saharan Africa, largely because of its "
     "petroleum exports. The U.S. imports 7% of its oil from Angola.",
     "What share of its oil does the U.S. import from Angola?", ["7%"]),
    ("Birds are endothermic, have a high metabolic rate, a light skeletal system and powerful muscles. The long bones "
     "are thin, hollow and very light. There are no teeth and the narrow jaws are adapted into a horn-covered beak.",
     "What are the jaws of birds adapted into?", ["a horn-covered beak", "horn-covered beak"]),
    ("Following French President Nicolas Sarkozy's visit in 2008, relations have improved. Earlier, the Angolagate "
     "scandal embarrassed both governments by exposing corruption and illicit arms deals.",
     "Which French president visited Angola in 2008?", ["Nicolas Sarkozy"]),
    ("Like Harold Fleming, Christopher Ehret divides Afroasiatic into two branches, Omotic and Erythrean. He divides "
     "Omotic into two branches, North Omotic and South Omotic.",
     "Into which two branches does Ehret divide Afroasiatic?", ["Omotic and Erythrean"]),
    ("Life expectancy at birth is 37.63 years; 36.73 years for males and 38.57 years for females.",
     "What is the life expectancy of females?", ["38.57 years"]),
    ("The U.S. Government has invested USD $4 billion in Angola's petroleum sector.",
     "How much has the U.S. Government invested in Angola's petroleum sector?", ["USD $4 billion", "$4 billion"]),
    ("Connes was awarded the Fields Medal in 1982, the Crafoord Prize in 2001 and the gold medal of the CNRS in 2004.",
     "Where was Connes born?", None),
    ("Birds are tetrapods but their front limbs are wings covered with feathers and adapted for flight.",
     "How many species of birds live in Antarctica?", None),
]

DEV += [(context, question, gold) for _, context, question, gold in ITEMS]

VARIANTS = {  # in docs/rag_benchmarks, "extractive" rows were measured as "default" at commit 8d81917
    "default": {},
    "extractive": {"answer_mode": "extractive"},
    "greedy": {"answer_mode": "extractive", "beams": 1},
    "beams4": {"answer_mode": "extractive", "beams": 4},
    "generative": {"answer_mode": "generative", "beams": 1},
    "generative_beams8": {"answer_mode": "generative"},
    "no_abstain_shot": {"examples": DEFAULT_EXAMPLES[:2]},
    "abstain_first": {"examples": (DEFAULT_EXAMPLES[2],) + DEFAULT_EXAMPLES[:2]},
    "no_shots": {"examples": ()},
    "plain_system": {"system_prompt": "Answer the question using the context.", "examples": ()},
}


def widen_to_paragraphs(items: list, corpus_path: str) -> list:
    """Replace each context by the whole corpus paragraph that contains it (kept as is when none does)."""
    paragraphs = []
    with open(corpus_path, encoding="utf-8") as handle:
        for line in handle:
            paragraphs += [p for p in json.loads(line)["text"].split("\n\n") if p.strip()]
    normalised = [" ".join(p.split()) for p in paragraphs]
    out = []
    for context, question, gold in items:
        key = " ".join(context.split())
        found = next((p for p, n in zip(paragraphs, normalised) if key in n), context)
        out.append((" ".join(found.split()), question, gold))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paragraph-from", default=None, metavar="WIKIPEDIA_JSONL",
                        help="widen each context to its whole paragraph in this corpus file (SQuAD-like length)")
    parser.add_argument("--distractors", type=int, default=0,
                        help="also put this many other DEV contexts after the right one (like retrieved chunks)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = widen_to_paragraphs(DEV, args.paragraph_from) if args.paragraph_from else DEV
    model = get_default_model()
    summary = {}
    for name in args.variants.split(","):
        rag = RagPipeline(model, **VARIANTS[name])
        start = time.perf_counter()
        f1s, abst_ok, lines = [], 0, []
        for n, (context, question, gold) in enumerate(dev):
            others = [dev[(n + i) % len(dev)][0] for i in range(1, args.distractors + 1)]
            a = rag.answer_from_chunks(question, [context, *others], max_new_tokens=24)
            if gold is None:
                abst_ok += a.abstained
            else:
                f1s.append(100 * squad_f1(a.answer, gold) if not a.abstained else 0.0)
            lines.append(f"    {question[:50]:50s} -> {a.answer!r}")
        n_unans = sum(g is None for _, _, g in dev)
        summary[name] = {"f1": sum(f1s) / len(f1s), "answerable": len(f1s), "abstained_on_unanswerable": abst_ok,
                         "unanswerable": n_unans, "seconds": time.perf_counter() - start}
        print(f"{name}: F1 {sum(f1s) / len(f1s):.1f} on {len(f1s)} answerable, abstained on {abst_ok}/{n_unans} "
              f"unanswerable ({time.perf_counter() - start:.0f} s)")
        print("\n".join(lines), flush=True)
    name = f"prompt_dev_distractors{args.distractors}" + ("_paragraphs" if args.paragraph_from else "")
    previous = json.loads((RESULTS / f"{name}.json").read_text()) if (RESULTS / f"{name}.json").exists() else {}
    variants = {**previous.get("variants", {}), **summary}  # earlier runs' variants are kept
    result = {"command": f"benchmarks/rag_prompt_dev.py --variants {','.join(variants)} --distractors "
                         f"{args.distractors} --threads {args.threads}"
                         + (f" --paragraph-from {args.paragraph_from}" if args.paragraph_from else ""),
              "mean_context_words": sum(len(c.split()) for c, _, _ in dev) / len(dev),
              "machine": machine(), "model": model.name, "items": len(DEV), "variants": variants}
    print("wrote", save_result(name, result))


if __name__ == "__main__":
    main()
