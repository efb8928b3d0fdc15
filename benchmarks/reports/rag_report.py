"""Render the `## RAG pipeline` tables of docs/benchmarks.md from docs/rag_benchmarks/*.json.

The results files keep each command as it ran; the tables show the command that runs the same benchmark now
(``current_command``: the scripts are modules of the benchmarks package, SQuAD is read from the data root).

Usage:
    python -m benchmarks.reports.rag_report [--results docs/rag_benchmarks]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from benchmarks.common import RESULTS

# recorded command -> the command now: (pattern, replacement), applied in order
NOW = ((r"^benchmarks/(fusion_dev|rag_prompt_dev|offtopic_dev)\.py", r"python -m benchmarks.dev.\1"),
       (r"^benchmarks/(rag_retrieval|rag_answer_quality)\.py", r"python -m benchmarks.quality.\1"),
       (r"^benchmarks/(rag_latency|rag_memory)\.py", r"python -m benchmarks.speed.\1"),
       (r"--squad (\S+)/squad-v1\.1-dev\.json", r"--data-root \1"), (r" --no_minilm False", ""))


def _load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def current_command(result: dict) -> str:
    """The command that runs ``result``'s benchmark now, with the options it ran with."""
    command = result["command"]
    for pattern, replacement in NOW:
        command = re.sub(pattern, replacement, command)
    return command


def _machine(result: dict) -> str:
    m = result["machine"]
    threads = re.search(r"--threads (\d+)", result["command"])
    return (f"{m['cpu']}, {m['cores']} cores shared (1-min load {m['load_avg_1m']} at the end), torch threads "
            f"{threads.group(1) if threads else 'default'}, commit {m.get('commit', '?')}")


def fusion_dev(r: dict) -> list[str]:
    q = r["queries"]
    out = [f"Fusion chosen on a development set (never SQuAD): {r['passages']} passages of the training corpus "
           f"(its held-out validation rows plus training distractors), {q['cloze']} cloze queries (a sentence "
           f"removed from its passage) and {q['heading']} heading queries (\"title: section heading\"); {r['metric']}.",
           "", "| fusion | cloze | heading | mean |", "|---|---|---|---|"]
    s = r["settings"]
    shown = ["dense", "bm25", "rrf k=60", *[f"{n} w={w}" for n in ("minmax", "zscore") for w in (0.3, 0.5, 0.7)]]
    for name in shown:
        bold = "**" if name == r["best"] else ""
        out.append(f"| {bold}{name}{bold} | {s[name]['cloze']:.3f} | {s[name]['heading']:.3f} | {bold}{s[name]['mean']:.3f}{bold} |")
    out += ["", f"w = dense weight. Best: {r['best']} (now the pipeline default). All settings in "
            f"`docs/rag_benchmarks/fusion_dev.json`. Command: `{current_command(r)}`; machine: {_machine(r)}."]
    return out


def prompt_dev(r: dict) -> list[str]:
    labels = {"extractive": "extractive, 8 beams", "beams4": "extractive, 4 beams",
              "greedy": "extractive, greedy", "generative": "free text, greedy",
              "generative_beams8": "free text, 8 beams",
              "default": "free text, 8 beams, few-shot example answers rejected"}
    if "--items" in r["command"]:  # the runs since per-chunk reading name their variants differently
        labels = {"joint": "joint reading (one prompt holding all three chunks)", "per_chunk": "per-chunk reading",
                  "per_chunk_spans": "per-chunk reading, context spans preferred",
                  "howto_turn": "same, plus a how-to turn in the prompt (not adopted)",
                  "default": "same, answers that failed every check never chosen (**default**)"}
    distractors = re.search(r"--distractors (\d+)", r["command"]).group(1)
    context = ("the gold context as its whole corpus paragraph" if "--paragraph-from" in r["command"]
               else "the gold context as a 2-5 sentence excerpt") + (
        f" plus {distractors} other items' contexts after it" if distractors != "0" else "")
    if "--retrieve-from" in r["command"]:
        k = re.search(r"--k (\d+)", r["command"]).group(1)
        context = (f"the {k} chunks the default pipeline retrieves (hybrid) from every paragraph of the pages the "
                   f"questions come from; gold passage among them for {100 * r['gold_passage_retrieved']:.0f}% of "
                   f"answerable questions")
    words = (f", {r['mean_context_words']:.0f} words on average"
             if "mean_context_words" in r and "--retrieve-from" not in r["command"] else "")
    howto = "--items howto" in r["command"]
    items = ("how-to questions written for this project over the Python docs of the training corpus "
             "(`benchmarks/dev/data/prompt_dev_howto.jsonl`" if howto else
             "questions written for this project over the training corpus (`benchmarks/dev/data/prompt_dev_wikipedia.jsonl`")
    out = [f"Answer decoding on a development set (never SQuAD): {r['items']} {items}, `benchmarks.dev.rag_prompt_dev`); "
           f"context = {context}{words}.",
           "", "| decoding | F1 (answerable) | abstained on unanswerable | seconds |", "|---|---|---|---|"]
    for name, v in r["variants"].items():
        out.append(f"| {labels.get(name, name)} | {v['f1']:.1f} (n={v['answerable']}) | "
                   f"{v['abstained_on_unanswerable']} / {v['unanswerable']} | {v['seconds']:.0f} |")
    penalties = {name: v["f1_by_rank_penalty"] for name, v in r["variants"].items() if "f1_by_rank_penalty" in v}
    if penalties and "--retrieve-from" in r["command"]:
        out += ["", "Per-chunk reading, the same readings chosen with other rank penalties (nats per rank below the "
                "first; the default is 2): F1 " + "; ".join(
                    f"{re.sub(r' [(][^)]*[)]$', '', labels.get(name, name))}: " + ", ".join(
                        f"{k} → {v:.1f}" for k, v in f1s.items()) for name, f1s in penalties.items()) + "."]
    rules = r["variants"].get("default", {}).get("by_unchecked_rule")
    if rules and "--retrieve-from" in r["command"]:
        names = {"abstain": "never chosen, abstain when no reading passed (**default**)",
                 "prefer_checked": "never chosen while a checked reading exists, else the best of them",
                 "ignore": "checks not consulted when choosing among readings"}
        out += ["", "The default's readings, answers that failed every check (\"::\", an echo of the question) "
                "treated three ways:", "", "| unchecked answers | F1 (answerable) | abstained on answerable | "
                "unchecked answers given |", "|---|---|---|---|"]
        out += [f"| {names[rule]} | {v['f1']:.1f} | {v['abstained_on_answerable']} | {v['unchecked_answers_given']} |"
                for rule, v in rules.items()]
    out += ["", f"Command: `{current_command(r)}`; machine: {_machine(r)}."]
    return out


def retrieval(r: dict) -> list[str]:
    out = [f"Retrieval, SQuAD v1.1 dev paragraphs ({r['paragraphs']}) and {r['questions']} questions (seed 0), "
           f"relevant = the question's paragraph. Model {r['model']} (artefact {r['gem_artefact']}).", "",
           "| embedder | retrieval | nDCG@10 | R@1 | R@10 | retrieve p50 / p95 (s) |", "|---|---|---|---|---|---|"]
    for name, entry in r["embedders"].items():
        for mode in ("dense", "bm25", "hybrid"):
            if mode in entry:
                e = entry[mode]
                label = {"gem": "GEM (single model)", "minilm": "all-MiniLM-L6-v2"}[name]
                out.append(f"| {label} | {mode} | {e['ndcg@10']:.3f} | {e['recall@1']:.3f} | {e['recall@10']:.3f} | "
                           f"{e['retrieve_p50_s']:.3f} / {e['retrieve_p95_s']:.3f} |")
    out += ["", "| embedder | chunks | indexing time (s) | chunks/s | tokens/s |", "|---|---|---|---|---|"]
    for name, entry in r["embedders"].items():
        out.append(f"| {name} | {entry['chunks']} | {entry['index_seconds']:.0f} | {entry['chunks_per_s']:.1f} | "
                   f"{entry['tokens_per_s']:.0f} |")
    out += ["", f"Command: `{current_command(r)}`; machine: {_machine(r)}."]
    return out


def _decoding(command: str) -> str:
    found = re.search(r"--answer-mode (\w+) --beams (\d+)(?: --reading (\w+))?", command)
    if not found:
        return "greedy"
    return f"{found.group(1)}, {found.group(2)} beams, reading {found.group(3) or 'joint'}"


def quality(r: dict) -> list[str]:
    decoding = _decoding(r["command"]) if "--answer-mode" in r["command"] else r.get("note", "")
    out = [f"Answer quality, SQuAD v1.1 dev, {r['questions']} questions (seed 0), default prompt; decoding: {decoding}. "
           f"Model {r['model']} (artefact {r['gem_artefact']}).", "",
           "| context | F1 | EM | abstained | F1 before post-processing |", "|---|---|---|---|---|"]
    for key, label in (("oracle", "oracle paragraph"), ("retrieved", "retrieved, hybrid k=3")):
        e, raw = r[key], r[key + "_without_postprocessing"]
        out.append(f"| {label} | {e['f1']:.1f} | {e['em']:.1f} | {e['abstained']} | {raw['f1']:.1f} |")
    out += ["", f"Gold paragraph among the 3 retrieved: {100 * r['gold_paragraph_retrieved']:.0f}%. "
            f"Command: `{current_command(r)}`; machine: {_machine(r)}."]
    return out


def latency(r: dict) -> list[str]:
    out = [f"Query latency, {r['questions']} questions, hybrid k=3, {_decoding(r['command'])}, max 32 new tokens; "
           f"model {r['model']} (artefact {r['gem_artefact']}).", "",
           "| pipeline | retrieval p50/p95 | prefill p50/p95 | TTFT p50/p95 | generation p50/p95 | total p50/p95 | F1 |",
           "|---|---|---|---|---|---|---|"]
    names = {"plain": "single model", "kv_reuse": "single model, KV reuse",
             "two_model": "two models (MiniLM embeds)"}
    for name in (n for n in names if n in r):
        e = r[name]
        cells = " | ".join(f"{e[k]['p50']:.2f} / {e[k]['p95']:.2f}" for k in
                           ("retrieval_s", "prefill_s", "ttft_s", "generation_s", "total_s"))
        out.append(f"| {names[name]} | {cells} | {e['f1']:.1f} |")
    ratio = r["plain"]["ttft_s"]["p50"] / r["kv_reuse"]["ttft_s"]["p50"]
    versus = ""
    if "plain_over_two_model_p50" in r:
        v = r["plain_over_two_model_p50"]
        versus = (f" Single / two-model p50: retrieval {v['retrieval_s']:.2f}, generation {v['generation_s']:.2f}, "
                  f"total {v['total_s']:.2f}.")
    out += ["", f"Seconds. TTFT p50 ratio single / KV reuse: {ratio:.2f}x.{versus} Same answer with and without reuse: "
            f"{100 * r['same_answer']:.0f}% (raw text {100 * r['same_raw_answer']:.0f}%), same chunks "
            f"{100 * r['same_chunks']:.0f}%. Cached states: {r['kv_state_mib']:.0f} MiB; computing a missing state "
            f"costs {r['state_compute_s_per_1k_tokens']:.2f} s per 1k tokens. Command: `{current_command(r)}`; machine: "
            f"{_machine(r)}."]
    return out


def offtopic(r: dict) -> list[str]:
    out = [f"Off-topic threshold on the development sets: the best dense hit's cosine of each question set against "
           f"each development index (on-topic: the questions' own corpus); the pipeline abstains below "
           f"{r['threshold']}.", "", "| questions -> passages | on-topic | min | median | max | below threshold |",
           "|---|---|---|---|---|---|"]
    for name, e in r["pairs"].items():
        out.append(f"| {name} | {'yes' if e['on_topic'] else 'no'} | {e['min']:.3f} | {e['median']:.3f} | "
                   f"{e['max']:.3f} | {100 * e['below_threshold']:.0f}% |")
    squad = (f" For the record (not used to choose): the 100 SQuAD questions' lowest best hit is "
             f"{r['squad_100_min_best_hit']:.3f}." if "squad_100_min_best_hit" in r else "")
    out += ["", f"Command: `{current_command(r)}`; machine: {_machine(r)}.{squad}"]
    return out


def memory(r: dict) -> list[str]:
    labels = {"llm_only": "SmolLM2 alone (generation only)", "single": "single model (GEM), index + answer",
              "single_kv_reuse": "single model + KV reuse (256 MiB cache)",
              "two_model": "two models (MiniLM + SmolLM2), index + answer"}
    out = [f"Peak RSS (fresh process per run, configurations interleaved), {r['paragraphs']} SQuAD paragraphs indexed "
           f"+ {r['questions']} answers.", "",
           "| configuration | median peak RSS (MB) | runs (MB) | peak after loading / indexing / answering, 1st run (MB) |",
           "|---|---|---|---|"]
    for name, runs in r["runs"].items():
        phases = " / ".join(f"{v:.0f}" for v in runs[0]["peak_after_phase_mb"].values())
        peaks = ", ".join(f"{run['peak_rss_mb']:.0f}" for run in runs)
        out.append(f"| {labels.get(name, name)} | {r['median_peak_rss_mb'][name]:.0f} | "
                   f"{peaks} | {phases} |")
    if "single_over_two_model" in r:
        out.append(f"\nSingle / two-model median peak: {r['single_over_two_model']:.2f}; single below two-model in "
                   f"{r['single_below_two_model_in_runs']} of {len(r['runs']['single'])} paired runs.")
    out += ["", f"Command: `{current_command(r)}`; machine: {_machine(r)}."]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default=str(RESULTS))
    folder = Path(parser.parse_args().results)
    lines: list[str] = []
    for name, render in (("fusion_dev", fusion_dev), ("retrieval", retrieval), ("prompt_dev_distractors0", prompt_dev),
                         ("prompt_dev_distractors0_paragraphs", prompt_dev),
                         ("prompt_dev_distractors2_paragraphs", prompt_dev), ("prompt_dev_retrieved_k3", prompt_dev),
                         ("prompt_dev_retrieved_k3_howto", prompt_dev),
                         ("offtopic_dev", offtopic), ("answer_quality", quality),
                         ("answer_quality_extractive", quality), ("memory", memory)):
        result = _load(folder, name)
        if result:
            lines += render(result) + [""]
    result = _load(folder, "latency")
    if result:
        lines += latency(result) + [""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
