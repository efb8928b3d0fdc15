"""Embed two texts and answer a prompt with the default model (a smoke check of the install)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", default="Say hi", help="what to ask the model")
    parser.add_argument("--max-new-tokens", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    from gem_rag import get_default_model

    model = get_default_model()
    vectors = model.embed(["a first text", "a second text"])
    print(f"model: {model.name}  embeddings: {vectors.shape}")
    for piece in model.stream_chat([{"role": "user", "content": args.prompt}], max_new_tokens=args.max_new_tokens):
        print(piece, end="", flush=True)
    print()
    return 0
