"""Run an evaluation: questions through one or more RAG pipelines, per-question records, a summary, resume.

Each (pipeline, question) record is appended to ``records.jsonl`` as soon as it is done, so an interrupted run
resumes without recomputing finished questions; ``config.json`` guards against resuming with other settings.

Example:
    >>> data = load_eval_data("squad-v1.1-dev.json", n=10)
    >>> summary = run_evaluation(data, {"gem": RagPipeline(model, retrieval="dense")}, out_dir="eval-out", model=model)
    >>> summary["pipelines"]["gem"]["f1"]
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable

import numpy as np

from gem_rag.eval.consistency import LABELS, answer_consistency, judge_relevance
from gem_rag.eval.data import EvalData, EvalQuestion
from gem_rag.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k, squad_exact_match, squad_f1

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
RANKED_DEPTH = 10  # MRR@10 and nDCG@10 look this deep
SNIPPET_CHARS = 300  # chunk text kept per record (for the report), not the whole chunk


@dataclass
class EvalSettings:
    """What a run depends on; a resumed run must have the same settings."""

    k: int = 3  # chunks given to the LLM, and the k of Recall@k
    judge: bool = True  # LLM relevance judgement of each context chunk
    max_new_tokens: int = 32
    judge_method: str = "question_likelihood"  # see gem_rag.eval.consistency.judge_relevance

    def to_dict(self) -> dict:
        return {"k": self.k, "judge": self.judge, "max_new_tokens": self.max_new_tokens,
                "judge_method": self.judge_method if self.judge else None}


def chunk_doc_id(chunk) -> str:
    """The corpus passage a chunk belongs to: its ``doc_id`` metadata, else its source file, else its own id."""
    meta = chunk.metadata or {}
    return str(meta.get("doc_id") or meta.get("source") or chunk.id)


def index_corpus(pipeline, data: EvalData, *, progress: bool = False) -> None:
    """Put the evaluation corpus into ``pipeline`` (passages with their id as ``doc_id``, or files to index)."""
    if data.passages:
        texts = [p.text for p in data.passages]
        metadatas = [{"doc_id": p.id, "title": p.title, "source": p.id} for p in data.passages]
        pipeline.add_texts(texts, metadatas, ids=[p.id for p in data.passages])
    for path in data.index_paths:
        pipeline.index(path, progress=progress)


def read_records(path: Path) -> list[dict]:
    """Records of an earlier run; a half-written last line (interrupted run) is dropped with a warning."""
    if not path.is_file():
        return []
    records, lines = [], path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if lineno == len(lines):
                logger.warning("%s: dropping the half-written last line %d of an interrupted run", path, lineno)
                path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
                break
            raise ValueError(f"{path}: line {lineno} is not valid JSON; the records file is damaged "
                             f"(move it away to start over)") from None
    return records


def _check_config(out_dir: Path, config: dict) -> None:
    path = out_dir / CONFIG_FILE
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(old) | set(config) if old.get(key) != config.get(key))
        if changed:
            raise ValueError(f"{out_dir} holds a run with other settings ({', '.join(changed)} differ); "
                             f"use another --out, or --overwrite to start over")
    else:
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _retrieval_metrics(ranked_docs: list[str], question: EvalQuestion, k: int) -> dict:
    if not question.relevant:
        return {}
    relevant = set(question.relevant)
    gold_rank = next((r for r, d in enumerate(ranked_docs, start=1) if d in relevant), None)
    return {"gold_rank": gold_rank, "recall_at_k": recall_at_k(ranked_docs, relevant, k),
            "mrr_at_10": mrr_at_k(ranked_docs, relevant, RANKED_DEPTH),
            "ndcg_at_10": ndcg_at_k(ranked_docs, relevant, RANKED_DEPTH)}


def _dedupe(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def answer_question(pipeline, question: EvalQuestion, settings: EvalSettings) -> tuple[list, object, dict]:
    """Retrieve ``max(k, 10)`` chunks, answer from the top ``k``; returns (retrieved, RagAnswer, partial record)."""
    start = time.perf_counter()
    retrieved = pipeline.retrieve(question.question, k=max(settings.k, RANKED_DEPTH))
    retrieval_s = time.perf_counter() - start
    context = retrieved[: settings.k]
    result = pipeline.answer_from_chunks(question.question, context, max_new_tokens=settings.max_new_tokens)
    ranked_docs = _dedupe(chunk_doc_id(r.chunk) for r in retrieved)
    record = {
        "id": question.id, "question": question.question, "gold_answers": question.answers,
        "relevant": question.relevant, "answer": result.answer, "pipeline_abstained": bool(result.abstained),
        "retrieved": [{"doc_id": chunk_doc_id(r.chunk), "rank": r.rank, "score": round(float(r.score), 5),
                       "text": r.chunk.text[:SNIPPET_CHARS]} for r in context],
        "ranked_doc_ids": ranked_docs[:RANKED_DEPTH],
        "timings": {"retrieval_s": round(retrieval_s, 4),
                    "generation_s": round(float(result.timings.get("generation_s", 0.0)), 4)},
        **_retrieval_metrics(ranked_docs, question, settings.k),
    }
    if question.answers:
        record["em"] = squad_exact_match(result.answer, question.answers)
        record["f1"] = squad_f1(result.answer, question.answers)
    return context, result, record


def run_evaluation(data: EvalData, pipelines: dict[str, Callable[[], object] | object], out_dir: str | Path, *,
                   model=None, settings: EvalSettings | None = None, config: dict | None = None,
                   progress: bool = False) -> dict:
    """Evaluate every question through every pipeline; write records, summary and the HTML report.

    ``pipelines`` maps a name to a RagPipeline, or to a zero-argument factory (built and indexed only if it
    still has questions to answer). Returns the summary dict (also in ``summary.json``).
    """
    from gem_rag import resolve_model
    from gem_rag.eval.report import write_report

    settings = settings or EvalSettings()
    if not isinstance(settings.k, int) or settings.k < 1:
        raise ValueError(f"k must be a positive int, got {settings.k!r}")
    model = resolve_model(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, {**(config or {}), **settings.to_dict(), "pipelines": sorted(pipelines),
                        "questions": [q.id for q in data.questions]})
    records_path = out / RECORDS_FILE
    records = read_records(records_path)
    done = {(r["pipeline"], r["id"]) for r in records}
    todo = {name: [q for q in data.questions if (name, q.id) not in done] for name in pipelines}
    if done:
        logger.info("resuming: %d records already in %s", len(done), records_path)
    built = {}
    for name, pipeline in pipelines.items():
        if todo[name]:
            built[name] = pipeline() if callable(pipeline) and not hasattr(pipeline, "retrieve") else pipeline
            if data.passages or data.index_paths:
                start = time.perf_counter()
                index_corpus(built[name], data, progress=progress)
                logger.info("indexed the corpus for %s in %.1f s", name, time.perf_counter() - start)
    remaining = [q for q in data.questions if any((name, q.id) not in done for name in pipelines)]
    bar = _progress(remaining, progress, total_done=len(data.questions) - len(remaining), total=len(data.questions))
    with records_path.open("a", encoding="utf-8") as sink:
        for question in bar:
            new = {name: answer_question(built[name], question, settings)
                   for name in pipelines if (name, question.id) not in done}
            judged = _judge_contexts(model, question.question, new, settings.judge_method) if settings.judge else {}
            for name, (context, result, record) in new.items():
                start = time.perf_counter()
                report = answer_consistency(
                    model, question.question, result.answer, [r.chunk.text for r in context],
                    [float(r.score) for r in context], abstained=bool(result.abstained) or None,
                    judge_scores=[judged[r.chunk.text] for r in context] if settings.judge and context else None,
                    chunk_embeddings=_stored_vectors(built[name], model, context))
                record["timings"]["consistency_s"] = round(time.perf_counter() - start, 4)
                record["consistency"] = report.to_dict()
                attributed = report.attributed_rank
                record["attributed_doc_id"] = chunk_doc_id(context[attributed - 1].chunk) if attributed else None
                record["pipeline"] = name
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
                records.append(record)
    summary = summarize(records, list(pipelines), k=settings.k)
    summary["settings"] = {**(config or {}), **settings.to_dict(), "model": model.name}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_report(out / "report.html", summary, records)
    return summary


def rebuild_report(out_dir: str | Path) -> dict:
    """Summary and HTML report from the records already in ``out_dir`` (e.g. of a run stopped half-way)."""
    from gem_rag.eval.report import write_report

    out = Path(out_dir)
    config_path = out / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{out} holds no evaluation run ({CONFIG_FILE} missing)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    records = read_records(out / RECORDS_FILE)
    summary = summarize(records, config["pipelines"], k=config["k"])
    summary["settings"] = {key: value for key, value in config.items() if key not in ("questions", "pipelines")}
    summary["settings"]["questions_done"] = f"{len({r['id'] for r in records})} of {len(config['questions'])}"
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_report(out / "report.html", summary, records)
    return summary


def _judge_contexts(model, question: str, new: dict, method: str) -> dict[str, float]:
    """The judge's score of every distinct context chunk of this question across pipelines, one batched call."""
    texts = _dedupe(r.chunk.text for context, _, _ in new.values() for r in context)
    return dict(zip(texts, judge_relevance(model, question, texts, method=method)))


def _progress(items: list, enabled: bool, *, total_done: int, total: int):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, initial=total_done, desc="eval", unit="q")


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def summarize(records: list[dict], pipelines: list[str], *, k: int) -> dict:
    """Aggregate per-question records into per-pipeline metrics (None where no question had the labels)."""
    out: dict = {"k": k, "pipelines": {}}
    for name in pipelines:
        rows = [r for r in records if r["pipeline"] == name]
        cons = [r["consistency"] for r in rows]
        answered = [c for c in cons if not c["abstained"]]
        attributed = [c["attributed_rank"] for c in answered if c["attributed_rank"] is not None]
        hist = {str(rank): sum(1 for a in attributed if a == rank) for rank in range(1, k + 1)}
        hist["none"] = len(answered) - len(attributed)
        with_gold = [r for r in rows if r.get("relevant") and not r["consistency"]["abstained"]]
        out["pipelines"][name] = {
            "questions": len(rows),
            "recall_at_k": _mean(r.get("recall_at_k") for r in rows),
            "mrr_at_10": _mean(r.get("mrr_at_10") for r in rows),
            "ndcg_at_10": _mean(r.get("ndcg_at_10") for r in rows),
            "em": _mean(r.get("em") for r in rows),
            "f1": _mean(r.get("f1") for r in rows),
            "grounding": _mean(c["grounding"] for c in answered),
            "contained_rate": _mean(float(c["contained"]) for c in answered),
            "abstention_rate": _mean(float(c["abstained"]) for c in cons),
            "attributed_top1_rate": _mean(float(c["attributed_rank"] == 1) for c in answered),
            "mean_attributed_rank": _mean(attributed),
            "attributed_rank_hist": hist,
            "attributed_to_gold_rate": _mean(float(r.get("attributed_doc_id") in r["relevant"]) for r in with_gold),
            "judge_spearman": _mean(c["judge_agreement"] for c in cons),
            "judge_top1_agreement": _mean(None if c["judge_top1"] is None else float(c["judge_top1"]) for c in cons),
            "embedding_agreement": _mean(c["embedding_agreement"] for c in answered),
            "query_chunk_cosine": _mean(c["query_chunk_cosine"] for c in answered),
            "labels": {label: sum(1 for c in cons if c["label"] == label) for label in LABELS},
            "retrieval_s": _mean(r["timings"]["retrieval_s"] for r in rows),
            "generation_s": _mean(r["timings"]["generation_s"] for r in rows),
        }
    return out


def _stored_vectors(pipeline, model, context):
    """The store's vectors of ``context`` when they are ``model``'s own embeddings (saves embedding them again)."""
    stored = getattr(pipeline, "stored_vectors", None)
    return stored(context) if stored is not None and getattr(pipeline, "model", None) is model else None
