"""Development figures of a GEM artefact on held-out training rows (documents never trained on), per slice.

For each slice of the held-out rows (``--news-source`` rows vs the rest): ICT R@1 (one sentence of a passage
retrieves the rest of it among the slice's passages) and same-document AUC (a passage is closer to another passage
of its document than to one of another document of its source). `GemModel.embed`, fp32 on CPU. Used to choose what
ships (docs/model-card.md, "Domain continuation"); no evaluation file is read.

Usage:
    python -m benchmarks.dev.heldout_dev --gem gem_rag/weights/smollm2-135m-gem --rows runs/s6/rows_wiki_news.jsonl.gz \
        --json runs/s6/dev_shipped.json
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import write_json
from gem_rag import GemModel
from gem_rag.eval.metrics import same_group_auc
from gem_rag.training.data import ict_pairs, read_rows


def slice_figures(model: GemModel, rows: list, seed: int = 0) -> dict:
    pairs = ict_pairs(rows, seed)  # the trainer's validation pairs
    scores = model.embed([q for q, _ in pairs]) @ model.embed([p for _, p in pairs]).T  # (queries, passages), cosine
    ranks = (scores > np.diag(scores)[:, None]).sum(axis=1)  # 0 = its own passage first
    vectors = model.embed([r.text for r in rows])
    auc = same_group_auc(vectors, [r.doc for r in rows], [r.source for r in rows])
    return {"ict_recall_at_1": round(float(np.mean(ranks == 0)), 4), "ict_pairs": len(pairs),
            "same_doc_auc": round(auc, 4) if auc is not None else None, "rows": len(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gem", required=True, help="GEM artefact folder")
    parser.add_argument("--rows", required=True, help="rows file; its held-out ('val') rows are used")
    parser.add_argument("--news-source", default="lee-background", help="source whose rows form the 'news' slice")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    held_out = [r for r in read_rows(args.rows) if r.split == "val"]
    model = GemModel.from_pretrained(gem_weights=args.gem)
    figures: dict = {"artefact": args.gem, "rows": args.rows}
    for name, rows in (("corpus", [r for r in held_out if r.source != args.news_source]),
                       ("news", [r for r in held_out if r.source == args.news_source])):
        if rows:
            figures[name] = slice_figures(model, rows)
            print(name, figures[name], flush=True)
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
