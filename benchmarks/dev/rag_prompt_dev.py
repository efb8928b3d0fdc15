"""Prompt design check on questions written for this project over the training corpus, NOT SQuAD: token F1 and
abstention for prompt variants, answer modes and readings, with the item's own context (optionally widened to its
paragraph, plus distractors) or with the chunks the default retriever finds. The items are
benchmarks/dev/data/prompt_dev_wikipedia.jsonl (``--items wikipedia``) and prompt_dev_howto.jsonl (``--items
howto``); their datasheet is benchmarks/dev/data/README.md.

With --retrieve-from, the corpus is every paragraph of the pages the items come from (35 Wikipedia articles
or 16 Python docs pages; short paragraphs merged with the next until 100 words, like SQuAD's), indexed once
by the default pipeline into --index-dir; an item's gold passage is the one holding the start of its context.

Usage:
    python -m benchmarks.dev.rag_prompt_dev [--variants default,generative,...] [--distractors 2]
    python -m benchmarks.dev.rag_prompt_dev --retrieve-from WIKIPEDIA_JSONL --k 3   # retrieved contexts
    python -m benchmarks.dev.rag_prompt_dev --items howto --retrieve-from PYTHON_DOCS_JSONL   # how-to questions
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, machine, save_result
from gem_rag import get_default_model
from gem_rag.eval.metrics import squad_f1
from gem_rag.rag import RagPipeline, RetrievedChunk
from gem_rag.rag.chunk_reader import best_reading
from gem_rag.rag.prompt import DEFAULT_EXAMPLES, DEFAULT_SYSTEM

logger = logging.getLogger(__name__)
ITEMS = Path(__file__).resolve().parent / "data"  # prompt_dev_<items>.jsonl


def dev_items(name: str) -> list[tuple[str, str, list[str] | None]]:
    """The (context, question, gold answers or None) items of ``prompt_dev_<name>.jsonl``, in file order."""
    lines = (ITEMS / f"prompt_dev_{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [(row["context"], row["question"], row["answers"]) for row in map(json.loads, filter(str.strip, lines))]


# a how-to turn written for this project (not from any corpus) and a system text that mentions how-to answers:
# measured as variant "howto_turn", not adopted
HOWTO_EXAMPLE = ("To reset the router, hold the recessed button on its back for ten seconds. The lights blink twice "
                 "when the reset is complete.", "How do I reset the router?",
                 "hold the recessed button on its back for ten seconds")
HOWTO_SYSTEM = DEFAULT_SYSTEM.replace("(a name, number, date or short phrase)",
                                      "(a name, number, date or short phrase; for a how-to question, the instruction)")

VARIANTS = {  # rows measured at earlier commits used these names for other settings: see the command in each json
    "default": {},
    "joint": {"reading": "joint", "prefer_spans": False},  # the default until per-chunk reading
    "per_chunk": {"reading": "per_chunk", "prefer_spans": False},
    "per_chunk_spans": {"reading": "per_chunk", "prefer_spans": True},  # = default
    "howto_turn": {"examples": DEFAULT_EXAMPLES + (HOWTO_EXAMPLE,), "system_prompt": HOWTO_SYSTEM},
    "beams16": {"beams": 16},
    "extractive": {"answer_mode": "extractive"},
    "greedy": {"answer_mode": "extractive", "beams": 1},
    "beams4": {"answer_mode": "extractive", "beams": 4},
    "generative": {"answer_mode": "generative", "beams": 1},
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


def article_passages(items: list, corpus_path: str, min_words: int = 100) -> list[dict]:
    """{id, title, text} passages of the articles the items' contexts come from."""
    articles = [json.loads(line) for line in open(corpus_path, encoding="utf-8")]
    keys = [" ".join(context.split())[:80] for context, _, _ in items]
    passages = []
    for article in articles:
        text = " ".join(article["text"].split())
        if not any(key in text for key in keys):
            continue
        buffer: list[str] = []
        for paragraph in (" ".join(p.split()) for p in article["text"].split("\n\n") if p.strip()):
            buffer.append(paragraph)
            if sum(len(b.split()) for b in buffer) >= min_words:
                passages.append(" ".join(buffer))
                buffer = []
        if buffer:
            passages.append(" ".join(buffer))
    return [{"id": f"p{i}", "title": "", "text": t} for i, t in enumerate(passages)]


def retrieved_contexts(items: list, corpus_path: str, index_dir: str, k: int, model) -> tuple[list, float]:
    """The k chunks the default pipeline retrieves for each item's question, and the share of answerable items
    whose gold passage is among them."""
    passages = article_passages(items, corpus_path)
    if (Path(index_dir) / "CURRENT").exists():
        rag = RagPipeline.load(index_dir, model=model)
    else:
        import tempfile

        rag = RagPipeline(model)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dev_passages.jsonl"
            path.write_text("\n".join(json.dumps(p) for p in passages) + "\n")
            logger.info("indexed %s", rag.index(path, progress=True))
        rag.save(index_dir)
    contexts, hits = [], []
    for context, question, gold in items:
        found = rag.retrieve(question, k)
        contexts.append(found)
        if gold is not None:
            key = " ".join(context.split())[:80]
            hits.append(any(key in " ".join(r.chunk.text.split()) for r in found))
    return contexts, sum(hits) / len(hits)


# What to do with answers that passed none of the answer checks ("::", an echo of the question):
# "abstain" (the pipeline's rule: checked answers win, none checked means the abstention), "prefer_checked"
# (checked answers win, else the best unchecked one), "ignore" (the rule before: checks not consulted)
UNCHECKED_RULES = ("abstain", "prefer_checked", "ignore")


def unchecked_rules(readings: list) -> dict:
    """The reading each rule picks (None: the abstention)."""
    ignored = [dataclasses.replace(r, passed_checks=True) for r in readings]
    pick = best_reading(ignored)
    return {"abstain": best_reading(readings), "prefer_checked": best_reading(readings, checked_only=False),
            "ignore": readings[next(i for i, r in enumerate(ignored) if r is pick)]}


def rule_scores(pairs: list) -> dict:
    """Mean F1 over the answerable items and abstentions on the unanswerable ones, for one rule."""
    f1s = [0.0 if chosen is None or chosen.abstained else 100 * squad_f1(chosen.answer, gold)
           for gold, chosen in pairs if gold is not None]
    abstained = sum(chosen is None or chosen.abstained for gold, chosen in pairs if gold is None)
    unchecked_chosen = sum(chosen is not None and not chosen.passed_checks for _, chosen in pairs)
    return {"f1": round(sum(f1s) / max(len(f1s), 1), 2), "abstained_on_unanswerable": abstained,
            "abstained_on_answerable": sum(chosen is None or chosen.abstained for gold, chosen in pairs if gold is not None),
            "unchecked_answers_given": unchecked_chosen}


def run_variant(rag: RagPipeline, dev: list, retrieved: list | None, args: argparse.Namespace) -> tuple[dict, list]:
    """(summary, records) of one variant over the items: F1 on the answerable ones, abstentions on the others, and
    the same readings chosen with other rank penalties and unchecked-answer rules."""
    started = time.perf_counter()
    f1s, abstained, records = [], 0, []
    penalties = [float(x) for x in args.rank_penalties.split(",")] if rag.config.reading == "per_chunk" else []
    by_penalty: dict[float, list[float]] = {penalty: [] for penalty in penalties}
    by_rule: dict[str, list] = {rule: [] for rule in UNCHECKED_RULES}
    for n, (context, question, gold) in enumerate(dev):
        others = [dev[(n + i) % len(dev)][0] for i in range(1, args.distractors + 1)]
        chunks: list[str | RetrievedChunk] = retrieved[n] if retrieved else [context, *others]
        a = rag.answer_from_chunks(question, chunks, max_new_tokens=24)
        records.append({"question": question, "gold": gold, "answer": a.answer, "abstained": a.abstained,
                        "readings": [{"answer": r.answer, "abstained": r.abstained, "logprob": r.logprob,
                                      "tokens": r.tokens, "passed_checks": r.passed_checks} for r in a.readings]})
        for rule, chosen in unchecked_rules(a.readings).items():  # the same readings, unchecked answers treated otherwise
            by_rule[rule].append((gold, chosen))
        if gold is None:
            abstained += a.abstained
            continue
        f1s.append(100 * squad_f1(a.answer, gold) if not a.abstained else 0.0)
        for penalty in penalties:  # the same readings, another choice among them
            chosen = best_reading(a.readings, penalty) if len(a.readings) > 1 else a.readings[0]
            by_penalty[penalty].append(0.0 if chosen.abstained else 100 * squad_f1(chosen.answer, gold))
    summary = {"f1": sum(f1s) / len(f1s), "answerable": len(f1s), "abstained_on_unanswerable": abstained,
               "unanswerable": sum(g is None for _, _, g in dev), "seconds": time.perf_counter() - started,
               **({"f1_by_rank_penalty": {str(k): sum(v) / len(v) for k, v in by_penalty.items()}} if penalties else {}),
               "by_unchecked_rule": {rule: rule_scores(pairs) for rule, pairs in by_rule.items()}}
    return summary, records


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--items", default="wikipedia", choices=("wikipedia", "howto"),
                        help="factoid questions over the Wikipedia sample, or how-to questions over the Python docs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paragraph-from", default=None, metavar="WIKIPEDIA_JSONL",
                        help="widen each context to its whole paragraph in this corpus file (SQuAD-like length)")
    parser.add_argument("--distractors", type=int, default=0,
                        help="also put this many other items' contexts after the right one (like retrieved chunks)")
    parser.add_argument("--retrieve-from", default=None, metavar="WIKIPEDIA_JSONL",
                        help="answer from the chunks retrieved over the items' articles in this corpus file")
    parser.add_argument("--index-dir", default=None, help="default: runs/reader_dev_index_<items>")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--records", default=None, help="write every answer and reading to this JSON file")
    parser.add_argument("--rank-penalties", default="0,0.5,1,2,4",
                        help="per-chunk variants: also score the choice among the same readings with these penalties")
    return parser


def main() -> None:
    args = arguments().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    items = dev_items(args.items)
    dev = widen_to_paragraphs(items, args.paragraph_from) if args.paragraph_from else items
    model = get_default_model()
    retrieved, gold_retrieved = None, None
    if args.retrieve_from:
        index_dir = args.index_dir or f"runs/reader_dev_index_{args.items}"
        retrieved, gold_retrieved = retrieved_contexts(dev, args.retrieve_from, index_dir, args.k, model)
        logger.info("gold passage among the %d retrieved for %.0f%% of answerable items", args.k, 100 * gold_retrieved)
    summary, records = {}, {}
    for name in args.variants.split(","):
        rag = RagPipeline(model, reader="chunks", **VARIANTS[name])  # the variants are settings of the chunk reader
        summary[name], records[name] = run_variant(rag, dev, retrieved, args)
        s = summary[name]
        print(f"{name}: F1 {s['f1']:.1f} on {s['answerable']} answerable, abstained on "
              f"{s['abstained_on_unanswerable']}/{s['unanswerable']} unanswerable ({s['seconds']:.0f} s)")
        if "f1_by_rank_penalty" in s:
            print("  F1 by rank penalty:", {k: round(v, 1) for k, v in s["f1_by_rank_penalty"].items()})
        print("  by unchecked-answer rule:", s["by_unchecked_rule"])
        print("\n".join(f"    {r['question'][:50]:50s} -> {r['answer']!r}" for r in records[name]), flush=True)
    if args.records:
        with open(args.records, "w", encoding="utf-8") as handle:
            json.dump(records, handle, indent=1)
    name = (f"prompt_dev_retrieved_k{args.k}" if args.retrieve_from else
            f"prompt_dev_distractors{args.distractors}" + ("_paragraphs" if args.paragraph_from else ""))
    name += "" if args.items == "wikipedia" else f"_{args.items}"
    previous = json.loads((RESULTS / f"{name}.json").read_text()) if (RESULTS / f"{name}.json").exists() else {}
    variants = {**previous.get("variants", {}), **summary}  # earlier runs' variants are kept
    result = {"command": f"python -m benchmarks.dev.rag_prompt_dev --items {args.items} --variants {','.join(variants)} "
                         f"--distractors {args.distractors} --threads {args.threads}"
                         + (f" --paragraph-from {args.paragraph_from}" if args.paragraph_from else "")
                         + (f" --retrieve-from {args.retrieve_from} --k {args.k}" if args.retrieve_from else ""),
              **({"gold_passage_retrieved": gold_retrieved} if retrieved else {}),
              "mean_context_words": sum(len(c.split()) for c, _, _ in dev) / len(dev),
              "machine": machine(args.threads), "model": model.name, "items": len(dev), "variants": variants}
    logger.info("wrote %s", save_result(name, result))


if __name__ == "__main__":
    main()
