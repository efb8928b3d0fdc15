"""Answer a question from your documents (or the bundled demo corpus) in the terminal, with its sources."""

from __future__ import annotations

import argparse
import sys
import textwrap

from gem_rag.server.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="what to ask, in quotes")
    common.add_backend_argument(parser)
    common.add_docs_argument(parser)
    common.add_store_arguments(parser)
    parser.add_argument("--no-docs", action="store_true",
                        help="with --chroma: index nothing, answer from what the collection holds")
    parser.add_argument("-k", type=int, default=None, help="passages given to the model (default: the pipeline's, 5)")
    parser.add_argument("--max-tokens", type=int, default=None, help="longest answer in tokens")


def run(args: argparse.Namespace) -> int:
    from gem_rag.rag.storage import RagIndexError
    from gem_rag.server.service import RagService

    if not args.question.strip():
        print("error: the question is empty", file=sys.stderr)
        return 2
    if args.k is not None and args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    if args.no_docs and (args.docs or args.chroma is None):
        print("error: --no-docs answers from a Chroma collection as it is: give --chroma HOST:PORT and no --docs",
              file=sys.stderr)
        return 2
    store = common.open_store(args)  # a wrong --chroma address fails before the model loads
    model = common.load_model(args.backend)
    try:
        pipeline, _ = common.open_docs(args.docs, model, store, no_docs=args.no_docs)
    except (FileNotFoundError, RagIndexError) as err:  # no such path; the cache is being updated elsewhere
        print(f"error: {err}", file=sys.stderr)
        return 2
    generation = {"max_new_tokens": args.max_tokens} if args.max_tokens else {}
    done: dict = {}
    for event in RagService(model, pipeline).stream_answer(args.question.strip(), k=args.k, **generation):
        if event["type"] == "token":
            print(event["text"], end="", flush=True)
        elif event["type"] == "done":
            done = event
    print()
    print_sources(done)
    return 0


def print_sources(done: dict) -> None:
    sentences = [s for s in done.get("supporting_sentences", []) if s["text"].strip() != done.get("answer", "").strip()]
    if sentences:
        print("\nFrom the sources:")
        for sentence in sentences:
            print(textwrap.indent(sentence["text"].strip(), "  > ", lambda line: True))
    print("\nSources:")
    for source in done.get("sources", []):
        print(f"  [{source['rank']}] {source['title']}  ({source['source']}, score {source['score']:.3f})")
        print(textwrap.indent(textwrap.shorten(source["snippet"], 160), "      "))
    consistency = done.get("consistency")
    if consistency:
        print(f"\nConsistency: {consistency.get('label')} (grounding {consistency.get('grounding', 0):.2f})")
    timings = done.get("timings", {})
    if timings:
        print("Timings: " + ", ".join(f"{name.removesuffix('_s')} {value:.2f} s" for name, value in timings.items()))
