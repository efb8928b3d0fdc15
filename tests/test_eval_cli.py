"""`gem-rag eval` end to end: a tiny SQuAD-format file (n=3), GEM vs MiniLM, real model and pipelines."""

from __future__ import annotations

import json

from gem_rag.cli import main

PARAGRAPHS = [
    ("Broncos", "The Denver Broncos defeated the Carolina Panthers 24 to 10 to win Super Bowl 50 in February 2016.",
     "Who won Super Bowl 50?", "Denver Broncos"),
    ("Broncos", "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.",
     "Where was Super Bowl 50 played?", "Levi's Stadium"),
    ("Paris", "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
     "When was the Eiffel Tower completed?", "1889"),
    ("Python", "Python was created by Guido van Rossum and first released in 1991.",
     "Who created Python?", "Guido van Rossum"),
]


def _squad_file(tmp_path):
    data = {"data": [{"title": title, "paragraphs": [{"context": context, "qas": [
        {"id": f"q{i}", "question": question, "answers": [{"text": answer, "answer_start": context.find(answer)}]}]}]}
        for i, (title, context, question, answer) in enumerate(PARAGRAPHS)]}
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_eval_cli_end_to_end_with_comparison(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--data", str(_squad_file(tmp_path)), "--n", "3", "--k", "2", "--compare", "minilm",
            "--max-new-tokens", "12", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| metric | gem | minilm |" in printed and "Recall@2" in printed
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and {r["pipeline"] for r in records} == {"gem", "minilm"}
    for r in records:
        assert len(r["retrieved"]) == 2 and r["consistency"]["label"] in ("consistent", "partly", "unsupported",
                                                                           "abstained")
        assert len(r["consistency"]["judge_scores"]) == 2 and 0.0 <= r["f1"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["pipelines"]) == {"gem", "minilm"}
    assert summary["pipelines"]["minilm"]["recall_at_k"] is not None
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 4 and "<script" not in html
    # a second run with the same settings resumes: nothing left to do, same records
    assert main(argv) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 6


def test_eval_cli_bad_input_names_the_line(tmp_path, capsys):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "fine"}\n{"question": "broken"\n', encoding="utf-8")
    assert main(["eval", "--data", str(bad), "--docs", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "q.jsonl: line 2: not valid JSON" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_eval_cli_label_free_over_files_and_saved_index(tmp_path):
    from gem_rag import get_default_model
    from gem_rag.rag import RagPipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, (_, context, _, _) in enumerate(PARAGRAPHS):
        (docs / f"doc{i}.txt").write_text(context, encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who created Python?"}\n{"id": "eiffel", "question": "When was the Eiffel '
                         'Tower completed?"}\n', encoding="utf-8")
    common = ["--k", "2", "--no-judge", "--max-new-tokens", "8", "--no-progress"]
    assert main(["eval", "--data", str(questions), "--docs", str(docs), "--out", str(tmp_path / "a"), *common]) == 0
    stats = json.loads((tmp_path / "a" / "summary.json").read_text())["pipelines"]["gem"]
    assert stats["questions"] == 2 and stats["recall_at_k"] is None and stats["f1"] is None
    assert sum(stats["labels"].values()) == 2
    pipeline = RagPipeline(get_default_model(), retrieval="dense")
    pipeline.index(docs)
    pipeline.save(tmp_path / "index")
    assert main(["eval", "--data", str(questions), "--index", str(tmp_path / "index"), "--out", str(tmp_path / "b"),
                 *common]) == 0
    records = [json.loads(line) for line in (tmp_path / "b" / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["line1", "eiffel"] and all(r["retrieved"] for r in records)
