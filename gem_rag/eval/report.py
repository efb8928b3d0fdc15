"""A self-contained HTML report of an evaluation run: tables and inline SVG plots, no scripts, no CDN.

Example:
    >>> write_report("eval-out/report.html", summary, records)
"""

from __future__ import annotations

import html
import math
import random
from pathlib import Path

COLORS = ["#2b6cb0", "#dd6b20", "#2f855a", "#9b2c2c", "#6b46c1"]
LABEL_COLORS = {"consistent": "#38a169", "partly": "#d69e2e", "unsupported": "#e53e3e", "abstained": "#a0aec0"}

# (summary key, label, description) for the 0..1 metric bars and the summary table
SHARE_METRICS = [
    ("recall_at_k", "Recall@k", "gold passage among the k chunks given to the LLM"),
    ("mrr_at_10", "MRR@10", "1 / rank of the gold passage"),
    ("ndcg_at_10", "nDCG@10", ""),
    ("em", "Exact match", "SQuAD EM against the gold answers"),
    ("f1", "Token F1", "SQuAD token F1 against the gold answers"),
    ("grounding", "Grounding", "answer words found in its best chunk (answered questions)"),
    ("contained_rate", "Contained", "answer occurs verbatim in a chunk"),
    ("abstention_rate", "Abstained", "the LLM said the documents lack the answer"),
    ("attributed_top1_rate", "Uses top hit", "answer attributed to the rank-1 chunk"),
    ("attributed_to_gold_rate", "Uses gold", "answer attributed to the gold passage"),
    ("judge_top1_agreement", "Judge top-1 = retriever top-1", "LLM's most relevant chunk is the retriever's first"),
]
SIGNED_METRICS = [
    ("judge_spearman", "Judge Spearman", "rank correlation of the LLM's relevance scores with the retriever's"),
    ("embedding_agreement", "cos(answer, chunk)", "in the GEM model's embedding space"),
    ("query_chunk_cosine", "cos(question, chunk)", "in the GEM model's embedding space"),
]


def _esc(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _legend(names: list[str], x: int, y: int) -> str:
    parts = []
    for i, name in enumerate(names):
        parts.append(f'<rect x="{x + i * 170}" y="{y}" width="12" height="12" fill="{COLORS[i % len(COLORS)]}"/>'
                     f'<text x="{x + i * 170 + 18}" y="{y + 11}">{_esc(name)}</text>')
    return "".join(parts)


def bar_chart(summary: dict, metrics: list[tuple[str, str, str]], *, low: float = 0.0, high: float = 1.0) -> str:
    """Horizontal grouped bars: one group per metric, one bar per pipeline, value written at the bar's end."""
    names = list(summary["pipelines"])
    rows = [m for m in metrics if any(summary["pipelines"][n].get(m[0]) is not None for n in names)]
    bar_h, label_w, plot_w = 14, 230, 420
    group_h = bar_h * len(names) + 10
    height = 40 + group_h * len(rows)
    scale = lambda v: label_w + (min(max(v, low), high) - low) / (high - low) * plot_w  # noqa: E731
    zero = scale(0.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 70}" height="{height}" '
             f'font-family="sans-serif" font-size="12">', _legend(names, label_w, 4)]
    for tick in [low + (high - low) * i / 4 for i in range(5)]:
        x = scale(tick)
        parts.append(f'<line x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{height - 4}" stroke="#e2e8f0"/>'
                     f'<text x="{x:.1f}" y="{height}" text-anchor="middle" fill="#718096" font-size="10">{tick:g}</text>')
    for gi, (key, label, _) in enumerate(rows):
        y0 = 28 + gi * group_h
        label = label.replace("@k", f"@{summary.get('k', 'k')}")
        parts.append(f'<text x="{label_w - 8}" y="{y0 + group_h / 2}" text-anchor="end">{_esc(label)}</text>')
        for pi, name in enumerate(names):
            value = summary["pipelines"][name].get(key)
            y = y0 + pi * bar_h
            if value is None:
                parts.append(f'<text x="{zero + 4:.1f}" y="{y + 11}" fill="#a0aec0" font-size="10">n/a</text>')
                continue
            x0, x1 = sorted((zero, scale(value)))
            parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar_h - 2}" '
                         f'fill="{COLORS[pi % len(COLORS)]}"><title>{_esc(name)}: {value:.3f}</title></rect>'
                         f'<text x="{max(x1, zero) + 4:.1f}" y="{y + 11}" font-size="10">{value:.3f}</text>')
    parts.append(f'<line x1="{zero:.1f}" y1="24" x2="{zero:.1f}" y2="{height - 12}" stroke="#4a5568"/></svg>')
    return "".join(parts)


def rank_histogram(summary: dict) -> str:
    """Grouped columns: share of answered questions whose answer came from the chunk at each rank (or none)."""
    names = list(summary["pipelines"])
    buckets = list(next(iter(summary["pipelines"].values()))["attributed_rank_hist"]) if names else []
    col_w, left, plot_h = 22, 50, 180
    group_w = col_w * len(names) + 24
    width, height = left + group_w * len(buckets) + 20, plot_h + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(width, 400)}" height="{height}" '
             f'font-family="sans-serif" font-size="12">', _legend(names, left, 4)]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = 30 + plot_h * (1 - tick)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#e2e8f0"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" fill="#718096" font-size="10">{tick:g}</text>')
    for bi, bucket in enumerate(buckets):
        gx = left + 12 + bi * group_w
        for pi, name in enumerate(names):
            hist = summary["pipelines"][name]["attributed_rank_hist"]
            share = hist.get(bucket, 0) / max(sum(hist.values()), 1)
            h = plot_h * share
            parts.append(f'<rect x="{gx + pi * col_w}" y="{30 + plot_h - h:.1f}" width="{col_w - 3}" height="{h:.1f}" '
                         f'fill="{COLORS[pi % len(COLORS)]}"><title>{_esc(name)} rank {bucket}: {hist.get(bucket, 0)}'
                         f'</title></rect>')
        label = "none" if bucket == "none" else f"rank {bucket}"
        parts.append(f'<text x="{gx + col_w * len(names) / 2}" y="{plot_h + 48}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" fill="#4a5568" font-size="11">share of answered questions; '
                 f'"none": no chunk supports it</text></svg>')
    return "".join(parts)


def label_bars(summary: dict) -> str:
    """One stacked bar per pipeline with the share of each consistency label."""
    names = list(summary["pipelines"])
    left, plot_w, bar_h = 120, 460, 22
    height = 40 + len(names) * (bar_h + 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + plot_w + 20}" height="{height}" '
             f'font-family="sans-serif" font-size="12">']
    for i, label in enumerate(LABEL_COLORS):
        parts.append(f'<rect x="{left + i * 115}" y="4" width="12" height="12" fill="{LABEL_COLORS[label]}"/>'
                     f'<text x="{left + i * 115 + 18}" y="15">{label}</text>')
    for pi, name in enumerate(names):
        labels = summary["pipelines"][name]["labels"]
        total = max(sum(labels.values()), 1)
        y, x = 30 + pi * (bar_h + 10), float(left)
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_esc(name)}</text>')
        for label, count in labels.items():
            w = plot_w * count / total
            if count:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{LABEL_COLORS[label]}">'
                             f'<title>{label}: {count}</title></rect>')
                if w > 28:
                    parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 15}" text-anchor="middle" fill="white">'
                                 f'{count / total:.0%}</text>')
            x += w
    parts.append("</svg>")
    return "".join(parts)


def agreement_scatter(records: list[dict], names: list[str], k: int) -> str:
    """The LLM judge's score of every context chunk against its retrieval rank (jittered), with the mean per rank.

    The y axis runs from 0 to the largest score, rounded up (question-likelihood scores are small)."""
    left, top, plot_w, plot_h = 50, 30, 460, 220
    values = [p for r in records for p in (r["consistency"].get("judge_scores") or [])]
    high = max(0.2, math.ceil(max(values, default=1.0) * 5) / 5)  # a multiple of 0.2: ticks every 0.05
    width, height = left + plot_w + 20, top + plot_h + 50
    rng = random.Random(0)
    slot = plot_w / max(k, 1)
    xs = lambda rank, pi: left + slot * (rank - 0.5) + (pi - (len(names) - 1) / 2) * slot / (len(names) + 1)  # noqa
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">', _legend(names, left, 4)]
    for tick in [high * i / 4 for i in range(5)]:
        y = top + plot_h * (1 - tick / high)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#e2e8f0"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" fill="#718096" font-size="10">{tick:.2f}</text>')
    for rank in range(1, k + 1):
        parts.append(f'<text x="{left + slot * (rank - 0.5):.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
                     f'rank {rank}</text>')
    any_points = False
    for pi, name in enumerate(names):
        color = COLORS[pi % len(COLORS)]
        by_rank: dict[int, list[float]] = {}
        for r in records:
            scores = r["consistency"].get("judge_scores") if r["pipeline"] == name else None
            for rank, p in enumerate(scores or [], start=1):
                by_rank.setdefault(rank, []).append(p)
                x = xs(rank, pi) + rng.uniform(-1, 1) * slot / (3 * (len(names) + 1))
                parts.append(f'<circle cx="{x:.1f}" cy="{top + plot_h * (1 - p / high):.1f}" r="2.2" fill="{color}" '
                             f'fill-opacity="0.35"/>')
                any_points = True
        for rank, values in by_rank.items():
            mean = sum(values) / len(values)
            x, y = xs(rank, pi), top + plot_h * (1 - mean / high)
            parts.append(f'<line x1="{x - 9:.1f}" y1="{y:.1f}" x2="{x + 9:.1f}" y2="{y:.1f}" stroke="{color}" '
                         f'stroke-width="3"><title>{_esc(name)} rank {rank}: mean judge score {mean:.3f}</title></line>')
    if not any_points:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="#a0aec0">'
                     f'no judge scores (run without --no-judge)</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" fill="#4a5568" font-size="11">dots: chunks; bars: mean per rank. '
                 f'Agreement: the score falls with rank.</text></svg>')
    return "".join(parts)


def _summary_table(summary: dict) -> str:
    names = list(summary["pipelines"])
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    rows = []
    for key, label, desc in [("questions", "Questions", "")] + SHARE_METRICS + SIGNED_METRICS + [
            ("mean_attributed_rank", "Mean attributed rank", "rank of the chunk the answer came from"),
            ("retrieval_s", "Retrieval s / question", ""), ("generation_s", "Generation s / question", "")]:
        values = [summary["pipelines"][n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in values)
        label = label.replace("@k", f"@{summary.get('k', 'k')}")
        rows.append(f'<tr><th title="{_esc(desc)}">{_esc(label)}</th>{cells}<td class="desc">{_esc(desc)}</td></tr>')
    return f'<table class="summary"><tr><th>metric</th>{head}<th></th></tr>{"".join(rows)}</table>'


def _examples_table(records: list[dict], names: list[str], limit: int = 60) -> str:
    by_id: dict[str, dict[str, dict]] = {}
    for r in records:
        by_id.setdefault(r["id"], {})[r["pipeline"]] = r
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    rows = []
    for _qid, per in list(by_id.items())[:limit]:
        first = next(iter(per.values()))
        gold = "; ".join(first.get("gold_answers") or []) or "–"
        cells = []
        for n in names:
            r = per.get(n)
            if r is None:
                cells.append("<td>–</td>")
                continue
            c = r["consistency"]
            rank = c["attributed_rank"] or "–"
            gold_rank = r.get("gold_rank") or ("–" if r.get("relevant") else "")
            cells.append(f'<td><span class="tag" style="background:{LABEL_COLORS[c["label"]]}">{c["label"]}</span> '
                         f'{_esc(r["answer"][:160])}<div class="meta">from rank {rank}; gold at rank {gold_rank}; '
                         f'F1 {_fmt(r.get("f1"))}</div></td>')
        rows.append(f'<tr><td>{_esc(first["question"])}<div class="meta">gold: {_esc(gold[:120])}</div></td>'
                    f'{"".join(cells)}</tr>')
    more = f"<p>First {limit} of {len(by_id)} questions; all are in records.jsonl.</p>" if len(by_id) > limit else ""
    return f'<table class="examples"><tr><th>question</th>{head}</tr>{"".join(rows)}</table>{more}'


CSS = """
body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#1a202c}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;
vertical-align:top}table.summary td{text-align:right;font-variant-numeric:tabular-nums}td.desc{color:#718096;
text-align:left!important;font-size:12px}.meta{color:#718096;font-size:11px;margin-top:2px}.tag{color:white;
border-radius:3px;padding:0 4px;font-size:11px}.grid{display:flex;flex-wrap:wrap;gap:24px}.note{color:#4a5568;
font-size:13px;max-width:900px}
"""


def render_report(summary: dict, records: list[dict]) -> str:
    """The report as one HTML string."""
    names = list(summary["pipelines"])
    settings = summary.get("settings", {})
    setting_text = ", ".join(f"{_esc(k)}={_esc(v)}" for k, v in settings.items() if k != "questions")
    k = summary.get("k", 3)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>gem-rag eval report</title>
<style>{" ".join(CSS.split())}</style></head><body>
<h1>Retrieval-vs-answer consistency</h1>
<p class="note">{setting_text}</p>
<p class="note">Does the LLM answer from what the retriever found? <b>Grounding</b>: share of the answer's words in
its best chunk. <b>Attributed rank</b>: the retrieval rank of the chunk the answer came from. <b>Judge</b>: the LLM's
own relevance score of each chunk for the question, compared with the retriever's order.</p>
<h2>Summary</h2>{_summary_table(summary)}
<h2>Metrics per pipeline</h2><div class="grid"><div>{bar_chart(summary, SHARE_METRICS)}</div>
<div>{bar_chart(summary, SIGNED_METRICS, low=-1.0)}</div></div>
<h2>Consistency labels</h2>{label_bars(summary)}
<div class="grid"><div><h2>Which chunk did the answer come from?</h2>{rank_histogram(summary)}</div>
<div><h2>Retriever vs reader: the LLM's relevance score by rank</h2>{agreement_scatter(records, names, k)}</div></div>
<h2>Questions</h2>{_examples_table(records, names)}
</body></html>"""


def write_report(path: str | Path, summary: dict, records: list[dict]) -> Path:
    """Write the HTML report; returns its path."""
    path = Path(path)
    path.write_text(render_report(summary, records), encoding="utf-8")
    return path


def markdown_table(summary: dict) -> str:
    """The summary as a Markdown table (metrics as rows, pipelines as columns), for the terminal and docs."""
    names = list(summary["pipelines"])
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label, _ in [("questions", "Questions", "")] + SHARE_METRICS + SIGNED_METRICS + [
            ("mean_attributed_rank", "Mean attributed rank", ""), ("retrieval_s", "Retrieval s / question", ""),
            ("generation_s", "Generation s / question", "")]:
        values = [summary["pipelines"][n].get(key) for n in names]
        if any(v is not None for v in values):
            label = label.replace("@k", f"@{summary.get('k', 'k')}")
            lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")
    for name in names:
        labels = summary["pipelines"][name]["labels"]
        lines.append(f"| labels {name} | " + " | ".join(
            ", ".join(f"{k} {v}" for k, v in labels.items()) if n == name else "" for n in names) + " |")
    return "\n".join(lines)
