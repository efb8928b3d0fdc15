"""Evaluate retrieval, answers and retrieval-vs-answer consistency of RAG pipelines; writes an HTML report.

Examples:
    gem-rag eval --data squad-v1.1-dev.json --n 200 --compare minilm --out eval-squad
    gem-rag eval --data questions.jsonl --docs corpus.jsonl --k 3
    gem-rag eval --data questions.jsonl --index my-index/        # label-free metrics over a saved index
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

RETRIEVAL_MODES = ("dense", "bm25", "hybrid")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="SQuAD-format .json, or .jsonl of {question, id?, answers?, "
                                                       "relevant?} per line")
    parser.add_argument("--docs", help="corpus: a .jsonl of {id, text, title?} passages, or files/folder to index")
    parser.add_argument("--index", help="a saved RagPipeline folder to ask (questions only; no --docs/--compare)")
    parser.add_argument("--n", type=int, help="evaluate n questions drawn with --seed (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-passages", type=int, help="cap the corpus: gold passages plus random distractors")
    parser.add_argument("--k", type=int, default=3, help="chunks given to the LLM, and k of Recall@k (default 3)")
    parser.add_argument("--compare", help="also run a two-model pipeline with this embedder: 'minilm' or a "
                                          "sentence-transformers folder")
    parser.add_argument("--retrieval", choices=RETRIEVAL_MODES, default="dense",
                        help="retrieval mode of every pipeline (default dense, so pipelines differ only by embedder)")
    parser.add_argument("--model", help="GemModel path (default: the default model with its shipped GEM weights)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="answer length limit (default 32)")
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM relevance judgement (faster)")
    parser.add_argument("--judge-method", choices=("question_likelihood", "yes_no"), default="question_likelihood",
                        help="how the LLM judges a chunk: P(question | chunk) per token (default) or P('yes')")
    parser.add_argument("--out", default="eval-out", help="output folder: records.jsonl, summary.json, report.html")
    parser.add_argument("--overwrite", action="store_true", help="delete an earlier run in --out instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild summary.json and report.html from the records already in --out")


def _compare_embedder(spec: str):
    from gem_rag.baselines import EncoderEmbedder

    if spec.lower() == "minilm":
        return EncoderEmbedder.minilm()
    if not Path(spec).is_dir():
        raise FileNotFoundError(f"--compare must be 'minilm' or a sentence-transformers folder, got {spec!r}")
    return EncoderEmbedder(spec)


def build_pipelines(args, model) -> dict:
    """name -> factory of each pipeline to evaluate (built only if it still has questions to answer)."""
    from gem_rag.rag import RagPipeline

    if args.index:
        return {"gem": lambda: RagPipeline.load(args.index, model=model)}
    pipelines = {"gem": lambda: RagPipeline(model, retrieval=args.retrieval)}
    if args.compare:
        name = "minilm" if args.compare.lower() == "minilm" else Path(args.compare).name
        pipelines[name] = lambda: RagPipeline(model, embedder=_compare_embedder(args.compare), retrieval=args.retrieval)
    return pipelines


def run(args: argparse.Namespace) -> int:
    from gem_rag.eval.report import markdown_table
    from gem_rag.eval.runner import rebuild_report

    try:
        if args.report_only:
            summary = rebuild_report(args.out)
            done = f"{summary['settings']['questions_done']} questions"
        else:
            summary, done = _evaluate(args)
    except (ValueError, FileNotFoundError) as e:  # bad arguments or data (EvalDataError), a missing model or folder
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(summary))
    print(f"\n{done}; report: {Path(args.out) / 'report.html'}")
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """ValueError naming what is missing or contradictory in the arguments of an evaluation run."""
    if not args.data:
        raise ValueError("--data is required (questions to evaluate)")
    if args.index and (args.docs or args.compare):
        raise ValueError("--index asks a saved index; it cannot be combined with --docs or --compare")
    if args.k < 1 or (args.n is not None and args.n < 1):
        raise ValueError("--k and --n must be positive")


def _evaluate(args: argparse.Namespace) -> tuple[dict, str]:
    """Run the evaluation the arguments describe: (its summary, "N questions in S s")."""
    from gem_rag import GemModel, get_default_model
    from gem_rag.eval.data import load_eval_data
    from gem_rag.eval.runner import EvalSettings, run_evaluation

    _check_arguments(args)
    data = load_eval_data(args.data, docs=args.docs, n=args.n, seed=args.seed, max_passages=args.max_passages)
    if args.index:  # the saved index is the corpus: gold passage ids must match its chunks' doc_id or source
        data.passages = []
    if not (data.passages or data.index_paths or args.index):
        raise ValueError("no corpus: give --docs, a SQuAD file or --index")
    out = Path(args.out)
    if args.overwrite and out.exists():
        shutil.rmtree(out)
    model = GemModel.from_pretrained(args.model) if args.model else get_default_model()
    config = {"data": str(Path(args.data).resolve()), "docs": args.docs, "index": args.index, "n": args.n,
              "seed": args.seed, "max_passages": args.max_passages, "retrieval": args.retrieval,
              "compare": args.compare, "model": model.name}
    settings = EvalSettings(k=args.k, judge=not args.no_judge, max_new_tokens=args.max_new_tokens,
                            judge_method=args.judge_method)
    start = time.perf_counter()
    summary = run_evaluation(data, build_pipelines(args, model), out, model=model, settings=settings, config=config,
                             progress=not args.no_progress)
    return summary, f"{len(data.questions)} questions in {time.perf_counter() - start:.0f} s"
