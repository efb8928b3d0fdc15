"""gem_rag.eval: metrics on hand-made cases, input errors, consistency, judge, adapters, summary, report, resume."""

from __future__ import annotations

import json

import pytest

from gem_rag import get_default_model
from gem_rag.eval.consistency import answer_consistency, is_abstention, judge_relevance
from gem_rag.eval.data import (
    EvalDataError,
    EvalQuestion,
    Passage,
    EvalData,
    limit_passages,
    load_eval_data,
    load_questions_jsonl,
    load_squad,
    sample_questions,
)
from gem_rag.eval.metrics import (
    answer_contained,
    content_tokens,
    longest_common_run,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    spearman,
    squad_exact_match,
    squad_f1,
    token_precision,
)
from gem_rag.eval.report import markdown_table, render_report
from gem_rag.eval.runner import EvalSettings, read_records, run_evaluation, summarize
from gem_rag.rag.prompt import ABSTAIN_PHRASE
from gem_rag.rag.types import Chunk, RagAnswer, RetrievedChunk


@pytest.fixture(scope="module")
def model():
    return get_default_model()


# ---------------------------------------------------------------------------------------------- metrics
def test_retrieval_and_squad_metrics_known_values():
    assert recall_at_k(["a", "b", "c"], {"c", "d"}, 3) == 0.5
    assert recall_at_k(["a"], set(), 3) == 0.0
    assert mrr_at_k(["a", "b", "c"], {"c"}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert ndcg_at_k(["x", "g"], {"g"}, 10) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert squad_exact_match("The Broncos!", ["Denver", "broncos"]) == 1.0
    assert squad_f1("", "Denver") == 0.0
    assert squad_f1("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)


def test_token_precision_and_containment_edge_cases():
    assert token_precision("Denver Broncos won", "The Denver Broncos beat the Panthers") == pytest.approx(2 / 3)
    assert token_precision("", "anything") == 0.0
    assert token_precision("the", "the cat") == 1.0  # only stop words: counted as they are
    assert token_precision("Broncos Broncos", "Broncos") == 0.5  # multiplicity is clipped
    # unicode: NFKC (ligature), case folding (ß -> ss), non-Latin scripts
    assert content_tokens("ﬁnal STRASSE Zürich") == ["final", "strasse", "zürich"]
    assert token_precision("Straße in Zürich", "die strasse von ZÜRICH") == 1.0
    assert token_precision("東京", "首都は 東京 です") == 1.0
    assert answer_contained("the Broncos", "Denver Broncos won.")
    assert not answer_contained("Bronco", "Denver Broncos won.")  # whole words only
    assert not answer_contained("", "Denver")
    assert longest_common_run("won the Super Bowl", "Denver won the Super Bowl in 2016") == 4
    assert longest_common_run("", "x") == 0


def test_spearman_cases():
    assert spearman([0.9, 0.5, 0.1], [3, 2, 1]) == pytest.approx(1.0)
    assert spearman([0.1, 0.5, 0.9], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0.5, 0.5, 0.5], [3, 2, 1]) is None
    assert spearman([0.5], [1]) is None
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1])


def test_abstention_detection():
    assert is_abstention(ABSTAIN_PHRASE)
    assert is_abstention("I don't know.")
    assert is_abstention("This is not mentioned in the context.")
    assert is_abstention("   ")
    assert not is_abstention("Denver Broncos")
    assert not is_abstention("Notre Dame")


# ---------------------------------------------------------------------------------------------- consistency
CHUNKS = ["Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.",
          "The Denver Broncos defeated the Carolina Panthers 24 to 10 to win Super Bowl 50.",
          "The Eiffel Tower was completed in 1889."]


def test_consistency_labels_and_attribution_without_model():
    report = answer_consistency(None, "Who won Super Bowl 50?", "Denver Broncos", CHUNKS, embed=False)
    assert (report.label, report.contained, report.attributed_rank, report.grounding) == ("consistent", True, 2, 1.0)
    assert report.judge_agreement is None and report.embedding_agreement is None
    partly = answer_consistency(None, "q", "Denver Broncos of Colorado state", CHUNKS, embed=False)
    assert partly.label == "partly" and partly.grounding == pytest.approx(0.5) and partly.attributed_rank == 2
    unsupported = answer_consistency(None, "q", "Tom Brady", CHUNKS, embed=False)
    assert (unsupported.label, unsupported.attributed_rank, unsupported.grounding) == ("unsupported", None, 0.0)
    abstained = answer_consistency(None, "q", ABSTAIN_PHRASE, CHUNKS, embed=False)
    assert (abstained.label, abstained.abstained, abstained.attributed_rank) == ("abstained", True, None)
    empty = answer_consistency(None, "q", "", CHUNKS, embed=False)
    assert empty.abstained and empty.label == "abstained"
    flagged = answer_consistency(None, "q", "Denver Broncos", CHUNKS, embed=False, abstained=True)
    assert flagged.label == "abstained"  # the pipeline's own flag wins
    no_chunks = answer_consistency(None, "q", "Denver Broncos", [], embed=False)
    assert (no_chunks.label, no_chunks.attributed_rank, no_chunks.grounding) == ("unsupported", None, 0.0)
    # equal precision everywhere: the chunk with the longest copied run wins, then the better rank
    tie = answer_consistency(None, "q", "Broncos won Super Bowl", ["Super Bowl Broncos won", "Broncos won Super Bowl"],
                             embed=False)
    assert tie.attributed_rank == 2
    assert set(report.to_dict()) >= {"grounding", "contained", "abstained", "attributed_rank", "embedding_agreement",
                                     "judge_agreement", "label"}


def test_consistency_judge_agreement_from_given_scores():
    report = answer_consistency(None, "q", "Denver Broncos", CHUNKS, scores=[0.9, 0.8, 0.1], embed=False,
                                judge_scores=[0.2, 0.9, 0.1])
    assert report.judge_top1 is False  # the judge prefers rank 2
    assert report.judge_agreement == pytest.approx(0.5)
    agree = answer_consistency(None, "q", "Denver Broncos", CHUNKS, embed=False, judge_scores=[0.9, 0.5, 0.1])
    assert agree.judge_top1 is True and agree.judge_agreement == pytest.approx(1.0)  # default: rank order
    with pytest.raises(ValueError, match="scores"):
        answer_consistency(None, "q", "a", CHUNKS, scores=[1.0], embed=False)
    with pytest.raises(TypeError):
        answer_consistency(None, "q", None, CHUNKS, embed=False)


def test_consistency_with_model_embeddings_and_judge(model):
    report = answer_consistency(model, "Who won Super Bowl 50?", "Denver Broncos", CHUNKS, judge=True)
    assert -1.0 <= report.embedding_agreement <= 1.0 and -1.0 <= report.query_chunk_cosine <= 1.0
    assert len(report.judge_scores) == 3 and all(0.0 <= p <= 1.0 for p in report.judge_scores)
    assert report.judge_top1 in (True, False)
    json.dumps(report.to_dict())  # serialisable
    vectors = model.embed(CHUNKS)
    reused = answer_consistency(model, "Who won Super Bowl 50?", "Denver Broncos", CHUNKS, chunk_embeddings=vectors)
    assert reused.embedding_agreement == pytest.approx(report.embedding_agreement, abs=1e-4)
    with pytest.raises(ValueError, match="chunk_embeddings"):
        answer_consistency(model, "q", "Denver Broncos", CHUNKS, chunk_embeddings=vectors[:1])


def test_judge_batching_matches_one_by_one(model):
    passages = CHUNKS + ["A much longer passage about an unrelated topic, " * 8]
    batched = judge_relevance(model, "Who won Super Bowl 50?", passages)  # one padded batch (GemModel.score)
    single = [judge_relevance(model, "Who won Super Bowl 50?", [p])[0] for p in passages]
    assert batched == pytest.approx(single, abs=2e-3)  # padding must not change the judgement
    assert judge_relevance(model, "q", []) == []
    with pytest.raises(ValueError, match="questions"):
        judge_relevance(model, ["a", "b"], ["p"])
    with pytest.raises(ValueError, match="method"):
        judge_relevance(model, "q", ["p"], method="vibes")


def test_judge_prefers_the_passage_that_answers(model):
    passages = ["The Eiffel Tower was completed in 1889.", "Python was created by Guido van Rossum in 1991."]
    likelihood = judge_relevance(model, "Who created the Python programming language?", passages)
    assert 0.0 < likelihood[0] < likelihood[1] <= 1.0
    yes_no = judge_relevance(model, "Who created Python?", passages, method="yes_no")
    assert all(0.0 <= p <= 1.0 for p in yes_no)  # runs; too weak on a 135M model to assert an order


# ---------------------------------------------------------------------------------------------- adapters
def test_framework_adapters():
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from gem_rag.eval.adapters import langchain_consistency, llama_index_consistency

    docs = [Document(page_content=c) for c in CHUNKS]
    assert langchain_consistency(None, "q", "Denver Broncos", docs, embed=False).attributed_rank == 2
    pairs = [(d, s) for d, s in zip(docs, [0.9, 0.5, 0.1])]
    report = langchain_consistency(None, "q", "Denver Broncos", pairs, embed=False, judge_scores=[0.1, 0.9, 0.0])
    assert report.judge_agreement == pytest.approx(0.5)
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        langchain_consistency(None, "q", "a", ["plain text"], embed=False)
    nodes = [NodeWithScore(node=TextNode(text=c), score=s) for c, s in zip(CHUNKS, [0.9, 0.5, 0.1])]
    assert llama_index_consistency(None, "q", "Eiffel Tower 1889", nodes, embed=False).attributed_rank == 3

    class Response:  # the shape of llama_index.core.base.response.schema.Response
        response, source_nodes = "Denver Broncos", nodes

    assert llama_index_consistency(None, "q", Response(), embed=False).attributed_rank == 2
    with pytest.raises(ValueError, match="nodes"):
        llama_index_consistency(None, "q", "a")


# ---------------------------------------------------------------------------------------------- data
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


SQUAD = {"version": "1.1", "data": [{"title": "Broncos", "paragraphs": [
    {"context": CHUNKS[1], "qas": [{"id": "q1", "question": "Who won Super Bowl 50?",
                                     "answers": [{"text": "Denver Broncos", "answer_start": 4}]}]},
    {"context": CHUNKS[0], "qas": [{"id": "q2", "question": "Where was Super Bowl 50 played?",
                                     "answers": [{"text": "Levi's Stadium", "answer_start": 25}]}]}]},
    {"title": "Paris", "paragraphs": [{"context": CHUNKS[2], "qas": [
        {"id": "q3", "question": "When was the Eiffel Tower completed?", "answers": [{"text": "1889", "answer_start": 35}]}]}]}]}


def test_load_squad_and_sampling(tmp_path):
    data = load_squad(_write(tmp_path / "s.json", json.dumps(SQUAD)))
    assert [p.id for p in data.passages] == ["Broncos#0", "Broncos#1", "Paris#0"]
    assert data.questions[1].relevant == ["Broncos#1"] and data.questions[0].answers == ["Denver Broncos"]
    assert data.has_gold_answers and data.has_gold_passages
    sample = sample_questions(data.questions, 2, seed=3)
    assert [q.id for q in sample] == [q.id for q in sample_questions(data.questions, 2, seed=3)]
    assert len(sample) == 2 and len(sample_questions(data.questions, 10)) == 3
    limited = limit_passages(data.passages, [data.questions[2]], 2, seed=0)
    assert len(limited) == 2 and "Paris#0" in [p.id for p in limited]


def test_malformed_inputs_name_line_or_record(tmp_path):
    bad_json = _write(tmp_path / "bad.json", '{"data": [\n  {"title": "x",\n  "paragraphs": [}\n]}')
    with pytest.raises(EvalDataError, match="line 3"):
        load_squad(bad_json)
    broken = json.loads(json.dumps(SQUAD))
    del broken["data"][0]["paragraphs"][1]["qas"][0]["question"]
    with pytest.raises(EvalDataError, match=r"data\[0\]\.paragraphs\[1\]\.qas\[0\]"):
        load_squad(_write(tmp_path / "b2.json", json.dumps(broken)))
    with pytest.raises(EvalDataError, match="'data' list"):
        load_squad(_write(tmp_path / "b3.json", "[1, 2]"))
    jsonl = _write(tmp_path / "q.jsonl", '{"question": "ok?"}\n\n{"question": "fine"}\n{"question": \n')
    with pytest.raises(EvalDataError, match=r"q\.jsonl: line 4"):
        load_questions_jsonl(jsonl)
    with pytest.raises(EvalDataError, match="line 2: needs a non-empty 'question'"):
        load_questions_jsonl(_write(tmp_path / "q2.jsonl", '{"question": "a"}\n{"query": "b"}\n'))
    with pytest.raises(EvalDataError, match="line 2: duplicate question id"):
        load_questions_jsonl(_write(tmp_path / "q3.jsonl", '{"id": 1, "question": "a"}\n{"id": 1, "question": "b"}\n'))
    with pytest.raises(EvalDataError, match="line 1: 'answers' must be"):
        load_questions_jsonl(_write(tmp_path / "q4.jsonl", '{"question": "a", "answers": [1]}\n'))
    with pytest.raises(EvalDataError, match="line 1: each line must be a JSON object"):
        load_questions_jsonl(_write(tmp_path / "q5.jsonl", '["a"]\n'))
    questions = _write(tmp_path / "ok.jsonl", '{"question": "a"}\n')
    with pytest.raises(EvalDataError, match=r"docs\.jsonl: line 2: needs a non-empty 'text'"):
        load_eval_data(questions, docs=_write(tmp_path / "docs.jsonl", '{"id": "p", "text": "t"}\n{"id": "q"}\n'))


def test_jsonl_questions_with_answer_passages(tmp_path):
    rows = [{"id": "f1", "question": "How do I exit?", "answer_passage": "Call sys.exit()."},
            {"question": "Who?", "answer": "Guido", "relevant": "f1"}]
    data = load_questions_jsonl(_write(tmp_path / "faq.jsonl", "\n".join(json.dumps(r) for r in rows)))
    assert [p.id for p in data.passages] == ["f1"] and data.questions[0].relevant == ["f1"]
    assert data.questions[1].id == "line2" and data.questions[1].answers == ["Guido"]


# ---------------------------------------------------------------------------------------------- runner
class StubPipeline:
    """A retriever/reader stand-in with fixed answers: counts the questions it is asked (pure mechanics)."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.asked, self.texts = answers, [], []

    def add_texts(self, texts, metadatas, ids=None):
        self.chunks = [Chunk(i, t, m) for i, t, m in zip(ids, texts, metadatas)]

    def retrieve(self, question, k=4):
        return [RetrievedChunk(c, 1.0 / rank, rank) for rank, c in enumerate(self.chunks[:k], start=1)]

    def answer_from_chunks(self, question, chunks, max_new_tokens=32):
        self.asked.append(question)
        answer = self.answers[question]
        return RagAnswer(question=question, answer=answer, chunks=list(chunks), abstained=answer == ABSTAIN_PHRASE,
                         timings={"generation_s": 0.01}, usage={})


def _data():
    passages = [Passage("p1", CHUNKS[1]), Passage("p2", CHUNKS[0]), Passage("p3", CHUNKS[2])]
    questions = [EvalQuestion("q1", "Who won?", ["Denver Broncos"], ["p1"]),
                 EvalQuestion("q2", "Where?", ["Levi's Stadium"], ["p2"]),
                 EvalQuestion("q3", "Capital of Peru?", ["Lima"], ["p9"])]
    return EvalData(questions, passages, "test")


ANSWERS = {"Who won?": "Denver Broncos", "Where?": "Levi's Stadium in Santa Clara", "Capital of Peru?": ABSTAIN_PHRASE}


def test_run_evaluation_summary_and_resume(tmp_path, model):
    settings = EvalSettings(k=2, judge=False)
    first = StubPipeline(ANSWERS)
    summary = run_evaluation(_data(), {"stub": first}, tmp_path, model=model, settings=settings)
    stats = summary["pipelines"]["stub"]
    assert stats["questions"] == 3 and stats["em"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["recall_at_k"] == pytest.approx(2 / 3, abs=1e-3)  # p1 at rank 1, p2 at rank 2, p9 nowhere
    assert stats["abstention_rate"] == pytest.approx(1 / 3, abs=1e-3) and stats["attributed_top1_rate"] == 0.5
    assert stats["attributed_rank_hist"] == {"1": 1, "2": 1, "none": 0}
    assert stats["labels"] == {"consistent": 2, "partly": 0, "unsupported": 0, "abstained": 1}
    assert stats["judge_spearman"] is None
    # interrupt: keep two records and half of the third line, then resume with a fresh pipeline
    path = tmp_path / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])
    second = StubPipeline(ANSWERS)
    resumed = run_evaluation(_data(), {"stub": second}, tmp_path, model=model, settings=settings)
    assert second.asked == ["Capital of Peru?"]  # only the unfinished question was recomputed
    assert len(read_records(path)) == 3 and resumed["pipelines"]["stub"] == stats
    # all done: nothing is recomputed, the summary is rebuilt
    third = StubPipeline(ANSWERS)
    run_evaluation(_data(), {"stub": third}, tmp_path, model=model, settings=settings)
    assert third.asked == []
    with pytest.raises(ValueError, match="k"):
        run_evaluation(_data(), {"stub": StubPipeline(ANSWERS)}, tmp_path, model=model, settings=EvalSettings(k=3))
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "<script" not in html and 'src="http' not in html and "Capital of Peru?" in html


def test_summary_markdown_and_report_handle_empty_pipeline():
    summary = summarize([], ["gem"], k=3)
    assert summary["pipelines"]["gem"]["questions"] == 0 and summary["pipelines"]["gem"]["f1"] is None
    assert "| Questions | 0 |" in markdown_table(summary)
    assert "<svg" in render_report(summary, [])


def test_report_only_rebuilds_from_partial_records(tmp_path, model):
    from gem_rag.eval.runner import rebuild_report

    run_evaluation(_data(), {"stub": StubPipeline(ANSWERS)}, tmp_path, model=model, settings=EvalSettings(k=2, judge=False))
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")  # as if stopped after two questions
    summary = rebuild_report(tmp_path)
    assert summary["pipelines"]["stub"]["questions"] == 2 and summary["settings"]["questions_done"] == "2 of 3"
    assert "Recall@2" in (tmp_path / "report.html").read_text()
    with pytest.raises(ValueError, match="no evaluation run"):
        rebuild_report(tmp_path / "nothing")
