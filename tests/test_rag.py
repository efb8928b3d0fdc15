"""RagPipeline with the real default model on a tiny corpus: indexing, retrieval, answers, persistence, KV reuse."""

import numpy as np
import pytest
import torch

from gem_rag.rag import (ABSTAIN_PHRASE, AnswerPrompt, CorruptIndexError, IndexMismatchError, RagPipeline,
                         reciprocal_rank_fusion)
from gem_rag.core.generation import check_sampling
from gem_rag.core.decode_state import _prefill
from gem_rag.core.decoding import CopySpanConstraint, Piece, PieceGeneration
from gem_rag.rag.fusion import convex_fusion, fuse
from gem_rag.core.kv_states import compute_kv
from gem_rag.rag.types import DoneEvent, SourcesEvent, SupportEvent, TokenEvent

DOCS = {
    "paris.txt": "Paris is the capital of France. The Eiffel Tower in Paris was completed in 1889.",
    "nile.md": "# Rivers\n\nThe Nile is about 6,650 kilometres long and flows north into the Mediterranean Sea.",
    "python.rst": "Python\n======\n\nPython was created by Guido van Rossum and first released in 1991.",
    "moon.txt": "The Moon orbits the Earth at an average distance of 384,400 kilometres.",
    "copy.txt": "Paris is the capital of France. The Eiffel Tower in Paris was completed in 1889.",  # duplicate text
}
GEN = {"max_new_tokens": 12}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def rag(model, folder):
    pipeline = RagPipeline(model, retrieval="hybrid")
    pipeline.first_report = pipeline.index(folder)
    return pipeline


def test_index_report_dedup_and_unchanged_reindex_is_noop(rag, folder):
    report = rag.first_report
    assert report.files_indexed == 5 and report.files_skipped == []
    assert report.chunks_added == 4 and report.chunks_duplicate == 1 and len(rag.store) == 4
    again = rag.index(folder)
    assert (again.files_indexed, again.chunks_added, again.chunks_removed, again.chunks_unchanged) == (0, 0, 0, 4)
    assert rag.store.manifest["model"] == rag.model.name and rag.store.manifest["embedding_dim"] == 576


def test_retrieval_modes_find_the_right_chunk(rag):
    for mode in ("dense", "bm25", "hybrid"):
        rag.configure(retrieval=mode)
        hits = rag.retrieve("Who created the Python programming language?", k=2)
        if mode != "dense" or rag.model.card:  # the untrained base model's dense ranking is not reliable
            assert hits[0].chunk.metadata["source"].endswith("python.rst"), mode
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1)) and hits == sorted(hits, key=lambda h: -h.score)
    rag.configure(retrieval="hybrid")


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"], ["b", "d"]], k=60)
    assert fused[0][0] == "b" and fused[0][1] == pytest.approx(1 / 62 + 1 / 61 + 1 / 61)
    assert {i for i, _ in fused} == {"a", "b", "c", "d"}


def test_convex_fusion_weights_and_normalises_scores(model):
    dense = [("a", 0.80), ("b", 0.70), ("c", 0.60)]
    lexical = [("c", 30.0), ("b", 20.0), ("d", 10.0)]
    bm25_led = convex_fusion(dense, lexical, 0.3, "minmax")  # a: .3, b: .15+.35, c: .7, d: 0
    assert [i for i, _ in bm25_led] == ["c", "b", "a", "d"] and bm25_led[0][1] == pytest.approx(0.7)
    for method in ("minmax", "zscore"):
        assert [i for i, _ in convex_fusion(dense, lexical, 1.0, method)][:3] == ["a", "b", "c"]
        assert [i for i, _ in convex_fusion(dense, [], 0.3, method)] == ["a", "b", "c"]  # BM25 found nothing
    # z-scores: a retriever whose top hit stands far above the rest outweighs one with a flat list
    flat, peaked = [("a", 0.51), ("b", 0.50), ("c", 0.49)], [("b", 30.0), ("a", 1.0), ("c", 0.9)]
    assert convex_fusion(flat, peaked, 0.5, "zscore")[0][0] == "b"
    with pytest.raises(ValueError, match="dense_weight"):
        convex_fusion(dense, lexical, 1.5)
    with pytest.raises(ValueError, match="fusion must be one of"):
        fuse([dense, lexical], method="max")
    with pytest.raises(ValueError, match="fusion must be one of"):
        RagPipeline(model, fusion="sum")


def test_copy_span_constraint_allows_only_context_spans(model):
    tok = model.tokenizer
    source = tok.encode("The Nile flows north into the Mediterranean Sea.", add_special_tokens=False)
    reply = tok.encode(ABSTAIN_PHRASE, add_special_tokens=False)
    constraint = CopySpanConstraint(tok, [source], [reply], model.eos_token_ids)
    first = set(constraint.allowed())
    assert set(source) <= first and reply[0] in first and not first & model.eos_token_ids  # no empty answer
    bogus = tok.encode(" Amazon", add_special_tokens=False)[0]
    assert bogus not in first and constraint.mask(torch.zeros(1, len(tok)))[0, bogus] == float("-inf")
    north = source.index(tok.encode(" north", add_special_tokens=False)[0])
    constraint.advance(source[north])
    assert set(constraint.allowed()) == {source[north + 1]} | model.eos_token_ids  # copying goes on or ends
    # a span may start with its first word unspaced, even where that word is several tokens without the space
    spaced = tok.encode(" Mediterranean", add_special_tokens=False)
    bare = tok.encode("Mediterranean", add_special_tokens=False)
    constraint = CopySpanConstraint(tok, [source], [], model.eos_token_ids)
    assert bare[0] in constraint.allowed()
    for token in bare:
        constraint.advance(token)
    assert set(constraint.allowed()) == {source[source.index(spaced[-1]) + 1]} | model.eos_token_ids


def test_constrained_beam_search_finds_the_most_probable_span(model):
    """With more beams than open hypotheses the search is exhaustive, so it must return the span (plus EOS)
    with the highest total log-probability, checked here against scoring every allowed completion."""
    tok = model.tokenizer
    prompt = tok.encode("Question: Which city is the capital of France?\nContext: Paris is in France.\nAnswer:",
                        add_special_tokens=False)
    source = tok.encode(" Paris is in France.", add_special_tokens=False)
    eos = min(model.eos_token_ids)

    def completions(constraint, prefix=()):  # every token sequence the constraint allows, ending at EOS
        for token in constraint.allowed():
            if token in model.eos_token_ids:
                yield list(prefix)
            elif len(prefix) < len(source) + 2:
                child = constraint.fork()
                child.advance(token)
                yield from completions(child, (*prefix, token))

    candidates = list(completions(CopySpanConstraint(tok, [source], [], {eos})))
    assert len(candidates) > len(source)

    def total_logprob(span):
        ids = torch.tensor([prompt + span + [eos]])
        with torch.inference_mode():
            logprobs = torch.log_softmax(model.hf_model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        return sum(logprobs[len(prompt) - 1 + i, t].item() for i, t in enumerate(span + [eos]))

    best = max(candidates, key=total_logprob)
    params = check_sampling(len(source) + 2, 0.0, 1.0, None, None)
    run = PieceGeneration(model, [Piece(prompt)], params, None, CopySpanConstraint(tok, [source], [], {eos}), beams=64)
    assert "".join(run) == tok.decode(best) and run.result.completion_tokens == len(best)
    assert run.logprob == pytest.approx(total_logprob(best), abs=1e-3)  # the score per-chunk reading compares
    assert run.passed_checks  # no checks: nothing to fail
    refused = PieceGeneration(model, [Piece(prompt)], params, None, CopySpanConstraint(tok, [source], [], {eos}),
                              beams=4, accept=[lambda text: False])
    assert "".join(refused) and not refused.passed_checks  # the most probable text still comes, flagged
    greedy = PieceGeneration(model, [Piece(prompt)], params, None, CopySpanConstraint(tok, [source], [], {eos}))
    greedy_text = "".join(greedy)
    assert greedy_text in " Paris is in France." or greedy_text.lstrip() in "Paris is in France."


def test_extractive_answers_are_copied_from_the_context(model):
    rag = RagPipeline(model, reader="chunks", answer_mode="extractive")
    context = ["The Moon orbits the Earth at an average distance of 384,400 kilometres.", DOCS["nile.md"]]
    for question in ("How far away is the Moon?", "Which sea does the Nile flow into?", "Who painted the Mona Lisa?"):
        answer = rag.answer_from_chunks(question, context, **GEN)
        assert answer.abstained or answer.raw_answer.strip() in " ".join(context), (question, answer.raw_answer)


def test_answer_with_sources_and_streaming(rag):
    answer = rag.answer("In which year was the Eiffel Tower completed?", k=2, **GEN)
    assert "1889" in answer.answer and not answer.abstained
    assert answer.chunks[0].chunk.metadata["source"].endswith(("paris.txt", "copy.txt"))
    assert set(answer.timings) >= {"retrieval_s", "generation_s", "ttft_s", "total_s"}
    assert answer.usage["prompt_tokens"] > 0 and 0 < answer.usage["completion_tokens"] <= 12
    support = answer.supporting_sentences[0]
    assert "1889" in support.text and answer.chunks[0].chunk.text[support.start:support.end] == support.text
    events = list(rag.stream_answer("In which year was the Eiffel Tower completed?", k=2, **GEN))
    assert isinstance(events[0], SourcesEvent) and isinstance(events[1], SupportEvent)
    assert isinstance(events[-1], DoneEvent) and events[1].sentences == events[-1].answer.supporting_sentences
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert tokens == events[-1].answer.answer == answer.answer
    chunks = RagPipeline(rag.model, rag.store, reader="chunks", beams=1, reading="joint")
    events = list(chunks.stream_answer("In which year was the Eiffel Tower completed?", k=2, **GEN))
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 1 and "".join(tokens) == events[-1].answer.raw_answer  # greedy tokens, streamed


def test_answers_copied_from_the_few_shot_examples_are_rejected_unless_the_context_has_them():
    prompt = AnswerPrompt()  # its examples answer "1891" and "Alexander Graham Bell"
    accept = prompt.grounded_in(["The Eiffel Tower was completed in 1889."], "When was the tower completed?")
    assert accept("1889") and accept(" 1889.\n") and not accept("1891") and not accept("Alexander Graham Bell.")
    assert accept(ABSTAIN_PHRASE) and accept("Gustave Eiffel")  # not in the examples: nothing to say
    spans = prompt.grounded_in(["The Eiffel Tower was completed in 1889."], "When was the tower completed?", True)
    assert spans(" 1889.") and spans("the Eiffel tower") and spans(ABSTAIN_PHRASE)
    assert not spans("Gustave Eiffel") and not spans("1891") and not spans("188")  # whole words of the context only
    assert not accept("completed?") and not accept("the tower") and not spans("the tower")  # the question's words
    assert not accept("You can use the following code:") and not accept("::") and not accept("```python")
    assert prompt.grounded_in(["Bell moved in 1891."], "When did Bell move?")("1891")


def test_an_alias_of_the_questions_own_subject_is_not_an_answer():
    prompt = AnswerPrompt()
    chunks = ["It is the basis for Coordinated Universal Time (UTC), which is used for civil timekeeping."]
    assert not prompt.grounded_in(chunks, "What is the basis of Coordinated Universal Time?", True)("UTC")
    assert prompt.grounded_in(chunks, "What is Coordinated Universal Time used for?", True)("civil timekeeping")
    assert prompt.grounded_in(chunks, "What is the abbreviation of Coordinated Universal Time?", True)("UTC")
    assert prompt.grounded_in(chunks, "What is the basis of civil timekeeping?", True)("UTC")  # not the asked subject


def test_answer_from_chunks_and_abstention(rag):
    given = rag.answer_from_chunks("How long is the Nile?", [DOCS["nile.md"]], **GEN)
    assert "6,650" in given.answer and given.chunks[0].rank == 1
    prompt = AnswerPrompt()
    assert prompt.postprocess(f" {ABSTAIN_PHRASE}\nmore") == (ABSTAIN_PHRASE, True)
    assert prompt.postprocess('Answer: "Guido van Rossum".') == ("Guido van Rossum", False)
    empty = RagPipeline(rag.model)
    nothing = empty.answer("Anything?")
    assert nothing.abstained and nothing.chunks == [] and nothing.answer == ABSTAIN_PHRASE
    with pytest.raises(TypeError, match="unknown generation"):
        rag.answer("x?", bogus=1)


def test_update_delete_and_removed_files(model, tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(DOCS["moon.txt" if name == "a.txt" else "nile.md"])
    rag = RagPipeline(model, retrieval="bm25")
    assert rag.index(tmp_path).chunks_added == 2
    (tmp_path / "a.txt").write_text("The Sun is a star at the centre of the Solar System.")
    (tmp_path / "b.txt").unlink()
    report = rag.index(tmp_path)
    assert (report.files_indexed, report.chunks_added, report.chunks_removed) == (1, 1, 2)
    assert len(rag.store) == 1 and "Sun" in rag.retrieve("star", k=1)[0].chunk.text
    ids = rag.add_texts(["Mars is red."], [{"source": "manual"}])
    assert len(rag.store) == 2 and rag.retrieve("red planet Mars", k=1)[0].chunk.id == ids[0]
    rag.delete(ids)
    assert len(rag.store) == 1 and rag.retrieve("Mars is red", k=2) == []


def test_save_load_mismatch_and_interrupted_runs(rag, folder, tmp_path, monkeypatch):
    target = tmp_path / "saved"
    rag.save(target)
    loaded = RagPipeline.load(target, model=rag.model)
    assert len(loaded.store) == 4 and loaded.index(folder).chunks_added == 0  # file hashes survive
    assert loaded.retrieve("Nile length", k=1)[0].chunk.id == rag.retrieve("Nile length", k=1)[0].chunk.id

    class OtherEmbedder:
        name, embedding_dim = "all-MiniLM-L6-v2", 384

        def embed(self, texts, kind="document"):
            return np.zeros((len(texts), 384), np.float32)

    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2"):
        RagPipeline.load(target, model=rag.model, embedder=OtherEmbedder())

    # an indexing run that dies half-way, then a save that dies half-way: the saved index stays usable
    (folder / "extra.txt").write_text("Saturn has prominent rings made of ice.")
    monkeypatch.setattr(loaded.indexer, "add_chunks", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        loaded.index(folder)
    monkeypatch.undo()
    loaded.index(folder)

    def failing_write(tmp):
        (tmp / "index.faiss").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(loaded.store, "save", failing_write)
    with pytest.raises(OSError, match="disk full"):
        loaded.save(target)
    survivor = RagPipeline.load(target, model=rag.model)
    assert len(survivor.store) == 4 and not any(p.name.startswith(".tmp") for p in target.iterdir())
    (folder / "extra.txt").unlink()
    (target / "CURRENT").write_text("v-missing")
    with pytest.raises(CorruptIndexError, match="missing"):
        RagPipeline.load(target, model=rag.model)


def test_pipeline_on_embedded_chroma_saves_and_reloads(model, tmp_path):
    from gem_rag.rag import ChromaStore

    rag = RagPipeline(model, ChromaStore(path=tmp_path / "db"), retrieval="hybrid")
    rag.add_texts([DOCS["moon.txt"], DOCS["python.rst"]], [{"source": "moon"}, {"source": "python"}])
    assert rag.retrieve("Who created Python?", k=1)[0].chunk.metadata["source"] == "python"
    rag.save(tmp_path / "saved")
    again = RagPipeline.load(tmp_path / "saved", model=model)
    assert isinstance(again.store, ChromaStore) and len(again.store) == 2
    assert again.store.manifest["model"] == model.name
    assert again.retrieve("distance to the Moon", k=1)[0].chunk.metadata["source"] == "moon"
    hits = again.retrieve("distance to the Moon", k=2)
    stored = again.stored_vectors(hits)
    assert stored.shape == (2, model.embedding_dim)
    assert np.allclose(stored, model.embed([h.chunk.text for h in hits], kind="document"), atol=1e-4)


def test_stored_vectors_are_the_models_document_embeddings(rag, model):
    hits = rag.retrieve("How long is the Nile?", k=2)
    stored = rag.stored_vectors(hits)
    assert stored.shape == (2, model.embedding_dim)
    assert np.allclose(stored, model.embed([h.chunk.text for h in hits], kind="document"), atol=1e-4)
    with pytest.raises(KeyError, match="no stored vector"):
        rag.store.vectors(["not-a-chunk"])
    assert rag.stored_vectors([]) is None


def test_prefill_with_leading_cached_states_equals_a_full_pass(model):
    """States computed piece after piece and put in the cache give the logits of one plain pass; a state on a
    piece after an uncached one is refused (it could not have been computed after the right tokens)."""
    texts = ["<|im_start|>system\nAnswer briefly.<|im_end|>\n", "Paris is the capital of France.", "\n\n",
             "The Nile flows north.", "\nQuestion: What is the capital of France?\nAnswer:"]
    ids = [model.tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    start = compute_kv(model, ids[0])
    pieces = [Piece(ids[0], start), Piece(ids[1], compute_kv(model, ids[1], prefix=start))] + [Piece(i) for i in ids[2:]]
    with model.lock, torch.inference_mode():
        _, logits, length = _prefill(model, pieces)
        plain = model.hf_model(input_ids=torch.tensor([sum(ids, [])])).logits[:, -1]
    assert length == sum(len(i) for i in ids) and torch.allclose(logits, plain, atol=1e-3, rtol=1e-3)
    late = [Piece(ids[0]), Piece(ids[1]), Piece(ids[2]), Piece(ids[3], compute_kv(model, ids[3])), Piece(ids[4])]
    with pytest.raises(ValueError, match="leading pieces"):
        _prefill(model, late)


def test_chunk_states_are_computed_after_the_prompt_start(model, folder):
    """A cached chunk state is what a full pass over prompt start + chunk computes for the chunk's tokens
    (batched with padding at indexing), so with one chunk the reused prompt gives the plain prompt's logits."""
    reuse = RagPipeline(model, retrieval="bm25", kv_reuse=True, reader="chunks")
    reuse.index(folder)
    prefix = reuse.generator.prefix_piece()
    assert len(prefix.ids) > 100 and prefix.state.shape[3] == len(prefix.ids)
    lengths = set()
    for chunk in reuse.store.all_chunks():
        ids = reuse.generator.ids(chunk.text)
        lengths.add(len(ids))
        full = compute_kv(model, prefix.ids + ids)
        assert torch.allclose(reuse.kv_cache.get(chunk.id), full[:, :, :, len(prefix.ids):], atol=1e-4)
    assert len(lengths) > 1  # rows of different lengths were padded in one batch
    chunk = reuse.store.all_chunks()[0]
    pieces = reuse.generator.pieces("When was it completed?", [chunk.text], reuse.kv.state(chunk))
    assert pieces[1].state is not None
    with model.lock, torch.inference_mode():
        _, logits, _ = _prefill(model, pieces)
        plain = model.hf_model(input_ids=torch.tensor([sum((p.ids for p in pieces), [])])).logits[:, -1]
    assert torch.allclose(logits, plain, atol=1e-3, rtol=1e-3)


def test_kv_reuse_pipeline_answers(model, folder):
    plain = RagPipeline(model, retrieval="bm25", reader="chunks")
    reuse = RagPipeline(model, retrieval="bm25", kv_reuse=True, reader="chunks")
    plain.index(folder)
    reuse.index(folder)
    assert len(reuse.kv_cache) == 4  # states cached at index time
    question = "In which year was the Eiffel Tower completed?"
    a, b = plain.answer(question, k=2, **GEN), reuse.answer(question, k=2, **GEN)
    assert [c.chunk.id for c in a.chunks] == [c.chunk.id for c in b.chunks]
    assert a.answer == b.answer == "1889"
    assert reuse.kv_cache.hits == 1 and reuse.kv_cache.misses == 0 and b.usage == a.usage  # the first chunk's
    stored = reuse.store.all_chunks()
    context = [next(c for c in stored if word in c.text) for word in ("Eiffel", "Nile")]
    assert plain.config.reading == reuse.config.reading == "per_chunk"  # every chunk opens its own prompt
    a, b = plain.answer_from_chunks(question, context, **GEN), reuse.answer_from_chunks(question, context, **GEN)
    assert [(r.answer, round(r.logprob, 3)) for r in a.readings] == [(r.answer, round(r.logprob, 3)) for r in b.readings]
    assert len(b.readings) == 2 and a.answer == b.answer == "1889" and reuse.kv_cache.hits == 3
    assert b.answer_chunk_ids == [context[0].id]


def test_warm_kv_cache_fills_the_states_a_loaded_index_lacks(model, folder, tmp_path):
    plain = RagPipeline(model, retrieval="bm25")
    plain.index(folder)
    plain.save(tmp_path / "index")
    reuse = RagPipeline.load(tmp_path / "index", model=model, kv_reuse=True)
    assert len(reuse.kv_cache) == 0
    assert reuse.warm_kv_cache() == len(reuse.store) == 4
    assert reuse.warm_kv_cache() == 0  # nothing missing any more
    with pytest.raises(ValueError, match="kv_reuse=True"):
        plain.warm_kv_cache()


def test_best_reading_weighs_probability_against_retrieval_rank():
    from gem_rag.rag.chunk_reader import READING_RANK_PENALTY, best_reading
    from gem_rag.rag.types import Reading

    def reading(answer, logprob, abstained=False, passed_checks=True):
        return Reading(["id"], answer, answer, abstained, logprob, 3, passed_checks)

    assert READING_RANK_PENALTY == 2.0
    assert best_reading([reading("first", -3.0), reading("second", -2.0)]).answer == "first"  # 1 nat: not enough
    assert best_reading([reading("first", -5.0), reading("second", -2.0)]).answer == "second"
    assert best_reading([reading(ABSTAIN_PHRASE, -0.1, True), reading("second", -9.0)]).answer == "second"
    assert best_reading([reading(ABSTAIN_PHRASE, -0.1, True), reading(ABSTAIN_PHRASE, -0.2, True)]).abstained
    # an answer no check accepted ("::", an echo of the question) loses to any checked one, and alone means abstain
    assert best_reading([reading("::", -0.5, passed_checks=False), reading("second", -9.0)]).answer == "second"
    assert best_reading([reading("::", -0.5, passed_checks=False), reading(ABSTAIN_PHRASE, -1, True)]) is None
    assert best_reading([reading("::", -0.5, passed_checks=False)], checked_only=False).answer == "::"


def test_off_topic_questions_get_the_abstention_without_reading(rag):
    answer = rag.answer("Which team won the 1998 football world cup final?", k=2, **GEN)
    assert answer.abstained and answer.answer == ABSTAIN_PHRASE and answer.chunks  # sources are still shown
    assert answer.usage["completion_tokens"] == 0 and not answer.readings
    on_topic = rag.answer("How long is the Nile?", k=2, **GEN)
    assert not on_topic.abstained and "6,650" in on_topic.answer
    with pytest.raises(ValueError, match="min_dense_score"):
        RagPipeline(rag.model, min_dense_score=2.0)
