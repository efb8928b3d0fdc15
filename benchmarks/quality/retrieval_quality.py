"""Embedding quality and what the LLM keeps: base SmolLM2 poolings vs the GEM model vs all-MiniLM-L6-v2 vs BM25.

Tasks (all on evaluation-only data, never trained on):
  squad  retrieval: 1,000 SQuAD v1.1 dev questions (seed 0) against its 2,067 paragraphs
  faq    retrieval: 172 Python FAQ questions against their 172 answer passages
         (squad and faq also score ``gem+bm25`` and ``minilm+bm25`` when bm25 runs beside them: the two
         rankings fused as the pipeline's hybrid retrieval fuses them, gem_rag.rag.fusion with RagConfig's defaults)
  lee    Spearman correlation of cosine similarity with human ratings (Lee et al. 2005, 1,225 pairs)
  qa     SQuAD EM/F1 with the gold paragraph as context (100 questions, greedy), base vs GEM
  ppl    perplexity on the held-out slice of the training rows (documents never trained on), base vs GEM
  samedoc  a development figure, not evaluation data: on the held-out slice of the training rows, the AUC that a
         passage is closer to another passage of its document than to one of another document of its corpus

The data root (SQuAD, FAQ, Lee files) is --data-root or $GEM_RAG_DATA (benchmarks.common.data_root).

Usage:
    python -m benchmarks.quality.retrieval_quality --gem gem_rag/weights/smollm2-135m-gem --json docs/retrieval_quality.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DATA_ROOT_HELP, SQUAD, data_root
from gem_rag import GemModel
from gem_rag.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k, same_group_auc, squad_exact_match, squad_f1

logger = logging.getLogger(__name__)
ALL_MODELS = ("base-mean", "base-last", "base-special", "gem", "minilm", "bm25")
HYBRID_DENSE = ("gem", "minilm")  # fused with BM25 as the pipeline's hybrid retrieval when bm25 runs too
ALL_TASKS = ("squad", "faq", "lee", "qa", "ppl", "samedoc")
QA_PROMPT = ("Answer the question using the context. Reply with the short answer only.\n\n"
             "Context: {context}\n\nQuestion: {question}")


# ------------------------------------------------------------------ data
def squad_task(root: Path, n_questions: int, seed: int = 0, n_paragraphs: int = 0):
    """(paragraph texts, [(question, paragraph index, answers)]) from the library's SQuAD loader: all 2,067
    paragraphs and ``n_questions`` sampled questions; or, with ``n_paragraphs``, a sample of that many paragraphs
    and one question from each."""
    from gem_rag.eval.data import load_squad

    data = load_squad(root / SQUAD)
    where = {p.id: i for i, p in enumerate(data.passages)}
    rng = random.Random(seed)
    if n_paragraphs:
        asked: dict[int, list] = {}
        for q in data.questions:
            asked.setdefault(where[q.relevant[0]], []).append(q)
        chosen = sorted(rng.sample(range(len(data.passages)), n_paragraphs))
        picked = [rng.choice(asked[i]) for i in chosen]
        return [data.passages[i].text for i in chosen], [(q.question, n, q.answers) for n, q in enumerate(picked)]
    questions = [(q.question, where[q.relevant[0]], q.answers) for q in data.questions]
    return [p.text for p in data.passages], rng.sample(questions, n_questions)


def load_faq(data_dir: Path):
    rows = [json.loads(line) for line in (data_dir / "python-faq.jsonl").read_text().splitlines() if line.strip()]
    return [r["answer_passage"] for r in rows], [(r["question"], i) for i, r in enumerate(rows)]


def load_lee(data_dir: Path):
    return [json.loads(line) for line in (data_dir / "lee-document-similarity.jsonl").read_text().splitlines() if line.strip()]


def load_heldout(rows_path: Path, limit: int | None = None) -> list:
    """Held-out rows (documents never trained on)."""
    from gem_rag.training.data import read_rows

    return [r for r in read_rows(rows_path) if r.split == "val"][:limit]


# ------------------------------------------------------------------ embedders
class PooledBase:
    """The base LLM without a GEM token: mean pooling or last-token hidden state (one pass serves both)."""

    _cache: dict = {}

    def __init__(self, model: GemModel, mode: str):
        self.model, self.mode = model, mode

    def embed(self, texts, kind="document", batch_size=32):
        key = tuple(texts)
        if key not in PooledBase._cache:
            if len(PooledBase._cache) >= 4:
                PooledBase._cache.pop(next(iter(PooledBase._cache)))
            PooledBase._cache[key] = self._both(texts, batch_size)
        return PooledBase._cache[key][self.mode]

    @torch.inference_mode()
    def _both(self, texts, batch_size):
        tok = self.model.tokenizer
        out = {m: np.zeros((len(texts), self.model.embedding_dim), dtype=np.float32) for m in ("mean", "last")}
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            rows = [tok(texts[i], add_special_tokens=False).input_ids[:512] for i in idx]
            length = max(map(len, rows))
            ids = torch.full((len(rows), length), self.model.pad_token_id)
            att = torch.zeros((len(rows), length), dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, :len(r)] = torch.tensor(r)
                att[j, :len(r)] = 1
            ids, att = ids.to(self.model.device), att.to(self.model.device)
            hidden = self.model.hf_model.base_model(input_ids=ids, attention_mask=att).last_hidden_state.float()
            m = att.unsqueeze(-1).float()
            vectors = {"mean": (hidden * m).sum(1) / m.sum(1), "last": hidden[torch.arange(len(rows)), att.sum(1) - 1]}
            for mode, vec in vectors.items():
                out[mode][idx] = torch.nn.functional.normalize(vec, dim=-1).cpu().numpy()
        return out


class Bm25Ranker:
    def __init__(self):
        from gem_rag.rag.bm25 import BM25Index

        self.index_cls = BM25Index


def rank_all(model_name: str, embedder, corpus: list[str], queries: list[str], k: int = 10) -> list[list[tuple[int, float]]]:
    """Per query, the top ``k`` (corpus index, score) pairs, best first."""
    if model_name == "bm25":
        index = embedder.index_cls(corpus)
        return [index.search(q, k) for q in queries]
    docs = embedder.embed(corpus, kind="document")
    qs = embedder.embed(queries, kind="query")
    scores = qs @ docs.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [[(int(i), float(row[i])) for i in order] for row, order in zip(scores, top)]


def hybrid_rankings(rankings: dict[str, list], config) -> dict[str, list[list[int]]]:
    """``<dense>+bm25`` for the pipeline's dense embedders (gem, minilm) ranked beside BM25, fused as its hybrid
    retrieval does (``config``: a RagConfig; its fusion, dense weight and candidate depth)."""
    from gem_rag.rag.fusion import fuse

    if "bm25" not in rankings:
        return {}
    fused = {}
    for name in (n for n in rankings if n in HYBRID_DENSE):
        fused[f"{name}+bm25"] = [
            [int(i) for i, _ in fuse([[(str(i), s) for i, s in r[:config.candidates]] for r in pair],
                                     method=config.fusion, dense_weight=config.dense_weight, rrf_k=config.rrf_k)]
            for pair in zip(rankings[name], rankings["bm25"])]
    return fused


def ranked_tasks(embedders: dict, corpus: list[str], queries: list[str], relevant: list[int], task: str,
                 figures: dict) -> None:
    """``figures[model][task]`` for every embedder and every hybrid of a dense one with BM25."""
    from gem_rag.rag.config import RagConfig

    config = RagConfig()
    rankings = {}
    for name, embedder in embedders.items():
        t0 = time.time()
        rankings[name] = rank_all(name, embedder, corpus, queries, max(10, config.candidates))
        logger.info("%s %s ranked (%.0f s)", task, name, time.time() - t0)
    ranked = {name: [[i for i, _ in r] for r in per] for name, per in rankings.items()}
    ranked.update(hybrid_rankings(rankings, config))
    for name, per in ranked.items():
        figures.setdefault(name, {})[task] = retrieval_metrics(per, relevant)
        logger.info("%s %s: %s", task, name, figures[name][task])


def retrieval_metrics(ranked: list[list[int]], relevant: list[int]) -> dict:
    per = [(recall_at_k([str(i) for i in r], {str(g)}, 1), recall_at_k([str(i) for i in r], {str(g)}, 10),
            mrr_at_k([str(i) for i in r], {str(g)}, 10), ndcg_at_k([str(i) for i in r], {str(g)}, 10))
           for r, g in zip(ranked, relevant)]
    mean = np.mean(per, axis=0)
    return {"recall@1": round(float(mean[0]), 4), "recall@10": round(float(mean[1]), 4),
            "mrr@10": round(float(mean[2]), 4), "ndcg@10": round(float(mean[3]), 4)}


def lee_spearman(embedder, pairs: list[dict]) -> float:
    from scipy.stats import spearmanr

    docs = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    vectors = embedder.embed(docs, kind="document")
    where = {d: i for i, d in enumerate(docs)}
    cosines = [float(vectors[where[p["a"]]] @ vectors[where[p["b"]]]) for p in pairs]
    return round(float(spearmanr(cosines, [p["score"] for p in pairs]).statistic), 4)


# ------------------------------------------------------------------ what the LLM keeps
def oracle_qa(model: GemModel, items, batch_size: int) -> dict:
    prompts = [model.apply_chat_template([{"role": "user", "content": QA_PROMPT.format(context=ctx, question=q)}])
               for q, ctx, _ in items]
    answers = []
    for start in range(0, len(prompts), batch_size):
        results = model.generate(prompts[start:start + batch_size], max_new_tokens=32, stop=["\n"])
        answers.extend(r.text.strip() for r in results)
    em = np.mean([squad_exact_match(a, gold) for a, (_, _, gold) in zip(answers, items)])
    f1 = np.mean([squad_f1(a, gold) for a, (_, _, gold) in zip(answers, items)])
    return {"exact_match": round(100 * float(em), 2), "f1": round(100 * float(f1), 2), "n": len(items),
            "examples": [{"q": q, "gold": gold[0], "answer": a} for a, (q, _, gold) in list(zip(answers, items))[:5]]}


@torch.inference_mode()
def perplexity(model: GemModel, texts: list[str]) -> float:
    nll, count = 0.0, 0
    for text in texts:
        ids = torch.tensor([model.tokenizer(text, add_special_tokens=False).input_ids[:256]], device=model.device)
        logits = model.hf_model(input_ids=ids).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
        nll += float(loss)
        count += ids.shape[1] - 1
    return round(math.exp(nll / count), 3)


def markdown_table(results: dict) -> str:
    """The figures of a results JSON as a markdown table (one row per model)."""
    f = results["figures"]
    head = ("| model | SQuAD R@1 | SQuAD R@10 | SQuAD MRR@10 | SQuAD nDCG@10 | FAQ R@1 | FAQ nDCG@10 | Lee Spearman |\n"
            "|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name in [*results["models"], *(n for n in f if "+" in n)]:
        sq, faq = f.get(name, {}).get("squad", {}), f.get(name, {}).get("faq", {})
        cells = [sq.get("recall@1"), sq.get("recall@10"), sq.get("mrr@10"), sq.get("ndcg@10"), faq.get("recall@1"),
                 faq.get("ndcg@10"), f.get(name, {}).get("lee_spearman")]
        rows.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    keeps = []
    for name in ("base", "gem"):
        qa, ppl = f.get(name, {}).get("oracle_qa"), f.get(name, {}).get("heldout_perplexity")
        if qa or ppl:
            keeps.append(f"| {name} | {qa['exact_match'] if qa else '-'} | {qa['f1'] if qa else '-'} | {ppl or '-'} |")
    text = head + "\n".join(rows) + "\n"
    if keeps:
        text += ("\n| LLM | oracle-context SQuAD EM | F1 | held-out perplexity |\n|---|---|---|---|\n" + "\n".join(keeps) + "\n")
    return text


# ------------------------------------------------------------------ driver
def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gem", default="gem_rag/weights/smollm2-135m-gem", help="GEM artefact folder")
    parser.add_argument("--base-model", default=None, help="base model (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--rows", default=None, help="training rows file (its held-out slice is used for perplexity)")
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--tasks", default=",".join(ALL_TASKS))
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--paragraphs", type=int, default=0,
                        help="reduced SQuAD task: this many sampled paragraphs as the corpus, one question each (0: all)")
    parser.add_argument("--qa-questions", type=int, default=100)
    parser.add_argument("--ppl-rows", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="model dtype (default: bf16 on a GPU or a CPU with bf16 units, else fp32)")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--update-card", action="store_true", help="store the GEM figures in the artefact card")
    return parser


def load_models(args: argparse.Namespace, models: list[str], tasks: list[str]):
    """(base model or None, GEM model or None, {name: embedder}) for the models asked."""
    base = gem = None
    if any(m.startswith("base") for m in models) or "qa" in tasks or "ppl" in tasks:
        base = GemModel.from_pretrained(args.base_model, device=args.device, dtype=args.dtype, gem_weights=None)
    if "gem" in models:
        gem = GemModel.from_pretrained(args.base_model, device=args.device, dtype=args.dtype, gem_weights=args.gem)
    embedders: dict = {}
    for name in models:
        if name in ("base-mean", "base-last"):
            embedders[name] = PooledBase(base, name.split("-")[1])
        elif name == "base-special":
            embedders[name] = base
        elif name == "gem":
            embedders[name] = gem
        elif name == "minilm":
            from gem_rag.baselines import EncoderEmbedder

            embedders[name] = EncoderEmbedder.minilm()
        elif name == "bm25":
            embedders[name] = Bm25Ranker()
        else:
            raise SystemExit(f"unknown model {name!r}; choose from {ALL_MODELS}")
    return base, gem, embedders


def embedding_tasks(args: argparse.Namespace, tasks: list[str], embedders: dict, figures: dict, results: dict) -> None:
    """squad, faq, lee and samedoc for every embedder, into ``figures``."""
    root = data_root(args.data_root)
    if "squad" in tasks:
        paragraphs, questions = squad_task(root, args.questions, n_paragraphs=args.paragraphs)
        results["squad_corpus"] = {"paragraphs": len(paragraphs), "questions": len(questions)}
        ranked_tasks(embedders, paragraphs, [q for q, _, _ in questions], [g for _, g, _ in questions], "squad", figures)
    if "faq" in tasks:
        passages, faq = load_faq(root)
        ranked_tasks(embedders, passages, [q for q, _ in faq], [g for _, g in faq], "faq", figures)
    if "lee" in tasks:
        pairs = load_lee(root)
        for name, embedder in (item for item in embedders.items() if item[0] != "bm25"):
            figures.setdefault(name, {})["lee_spearman"] = lee_spearman(embedder, pairs)
            logger.info("lee %s: %s", name, figures[name]["lee_spearman"])
    if "samedoc" in tasks and args.rows:
        heldout = load_heldout(Path(args.rows))
        for name, embedder in (item for item in embedders.items() if item[0] != "bm25"):
            vectors = embedder.embed([r.text for r in heldout], kind="document")
            auc = same_group_auc(vectors, [r.doc for r in heldout], [r.source for r in heldout])
            figures.setdefault(name, {})["samedoc_auc"] = round(auc, 4)
            logger.info("samedoc %s: %s", name, figures[name]["samedoc_auc"])


def llm_tasks(args: argparse.Namespace, tasks: list[str], base, gem, figures: dict) -> None:
    """qa (oracle-context SQuAD) and ppl (held-out perplexity) for the base and GEM models, into ``figures``."""
    llms = [(name, model) for name, model in (("base", base), ("gem", gem)) if model is not None]
    batch = 50 if base is not None and base.device.type == "cuda" else 10
    if "qa" in tasks:
        paragraphs, questions = squad_task(data_root(args.data_root), args.questions, n_paragraphs=args.paragraphs)
        items = [(q, paragraphs[g], gold) for q, g, gold in questions[: args.qa_questions]]
        for name, model in llms:
            figures.setdefault(name, {})["oracle_qa"] = oracle_qa(model, items, batch)
            logger.info("qa %s: %s F1", name, figures[name]["oracle_qa"]["f1"])
    if "ppl" in tasks and args.rows:
        texts = [r.text for r in load_heldout(Path(args.rows), args.ppl_rows)]
        for name, model in llms:
            figures.setdefault(name, {})["heldout_perplexity"] = perplexity(model, texts)
            logger.info("ppl %s: %s", name, figures[name]["heldout_perplexity"])


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models = [m for m in args.models.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    torch.manual_seed(0)
    started = time.time()
    base, gem, embedders = load_models(args, models, tasks)
    results: dict = {"models": models, "tasks": tasks, "gem_artefact": args.gem if gem else None,
                     "machine": f"{platform.machine()} {torch.get_num_threads()} threads, device {args.device}, dtype {args.dtype or 'auto'}"
                                + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() and args.device != "cpu" else ""),
                     "command": "python -m benchmarks.quality.retrieval_quality " + " ".join(sys.argv[1:]), "figures": {}}
    figures = results["figures"]
    embedding_tasks(args, tasks, embedders, figures, results)
    llm_tasks(args, tasks, base, gem, figures)
    results["seconds"] = round(time.time() - started, 1)
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    if args.update_card and gem is not None:
        card_path = Path(args.gem) / "gem_card.json"
        card = json.loads(card_path.read_text())
        card["evaluation"] = {"figures": figures, "command": results["command"], "machine": results["machine"]}
        card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
