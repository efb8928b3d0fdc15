"""The ``gem-rag`` command: each subcommand lives beside the code it drives."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module exposing add_arguments(parser) and run(args) -> int
SUBCOMMANDS = {
    "hello": "gem_rag.core.hello_cli",
    "demo": "gem_rag.server.commands.demo",
    "ask": "gem_rag.server.commands.ask",
    "serve": "gem_rag.server.commands.serve",
    "index": "gem_rag.server.commands.index",
    "train": "gem_rag.training.cli",
    "eval": "gem_rag.eval.cli",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gem-rag", description="One LLM that embeds and generates: RAG tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=module.__doc__.strip().splitlines()[0]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from gem_rag.rag.storage import RagIndexError

    try:
        return modules[args.command].run(args) or 0
    except RagIndexError as err:  # a damaged, locked or misnamed index folder: a message, not a traceback
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
