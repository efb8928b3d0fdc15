"""GEM training: data preparation, a few real steps of both phases (LoRA and full), resume, artefact round trip.

Uses the real default model on a tiny slice of text (a few steps each), so the whole module stays around two
minutes on a 2-core CPU.
"""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest
import torch

from gem_rag import GemModel
from gem_rag.core.artefact import CARD_FILE, WEIGHTS_FILE
from gem_rag.training import TrainConfig, prepare_rows
from gem_rag.training.batches import IGNORE, RowSampler
from gem_rag.training.data import Row, build_rows, read_rows, sections
from gem_rag.training.trainer import CHECKPOINT_FILE, Trainer, cosine_with_warmup, train

RST_DOC = """\
==============
Sorting HOW TO
==============

Python lists have a built-in list.sort() method that modifies the list in-place. There is also a
sorted() built-in function that builds a new sorted list from an iterable. In this document, we
explore the various techniques for sorting data using Python.

.. note::
   A directive body that must not become a passage.

Key Functions
-------------

Both list.sort() and sorted() have a key parameter to specify a function to be called on each list
element prior to making comparisons. The value of the key parameter should be a function that takes a
single argument and returns a key to use for sorting purposes. This technique is fast because the key
function is called exactly once for each input record.

::

    >>> sorted("This is a test string".split(), key=str.lower)

Operator Module Functions
-------------------------

The key-function patterns shown above are very common, so Python provides convenience functions to make
accessor functions easier and faster. The operator module has itemgetter(), attrgetter(), and a
methodcaller() function. Using those functions, the above examples become simpler and faster to run.
"""

WIKI_TEXT = (
    "The lighthouse stands on a rocky headland at the mouth of the bay. It was built in 1868 from local granite. "
    "Its light can be seen from twenty nautical miles away on a clear night. The keeper's cottage is now a museum. "
    "Visitors climb one hundred and twelve steps to reach the lantern room at the top of the tower.\n\n"
    "Seabirds nest on the cliffs below the lighthouse every spring. Puffins, guillemots and razorbills arrive in "
    "April and leave in August. The colony is protected, and the path along the cliff closes during the nesting "
    "season. Wardens count the birds every year and publish the numbers in a report."
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "sorting.rst").write_text(RST_DOC)
    rows = [{"id": f"wiki/{i}", "title": f"Place {i}", "text": WIKI_TEXT.replace("lighthouse", f"lighthouse {i}")}
            for i in range(12)]
    (root / "wiki.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def rows_file(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.jsonl.gz"
    stats = prepare_rows([corpus], path, min_words=20, max_words=60, val_percent=40.0)  # wiki/5 and wiki/10 held out
    assert stats["train"] > 0 and stats["val"] > 0, stats
    return path


def small_config(rows_file, out_dir, **overrides) -> TrainConfig:
    values = dict(rows=str(rows_file), out_dir=str(out_dir), ntp_steps=2, ntp_batch=4, contrastive_steps=3,
                  contrastive_batch=4, ntp_mix_batch=2, max_tokens=48, eval_rows=8, checkpoint_every=2,
                  progress=False, lora_r=4, lora_alpha=8)
    values.update(overrides)
    return TrainConfig(**values)


def test_sections_track_headings_and_drop_markup():
    found = dict(sections(RST_DOC))
    assert set(found) == {"Sorting HOW TO", "Key Functions", "Operator Module Functions"}
    text = " ".join(p for ps in found.values() for p in ps)
    assert "directive body" not in text and ">>>" not in text


def test_rows_are_deduplicated_and_split_by_document(corpus):
    rows = build_rows([corpus], min_words=20, max_words=60, val_percent=40.0)
    texts = [r.text for r in rows]
    assert len(texts) == len(set(texts))
    for doc in {r.doc for r in rows}:  # a document is wholly train or wholly validation
        assert len({r.split for r in rows if r.doc == doc}) == 1
    assert any(r.heading == "Key Functions" for r in rows)


def test_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_rows([tmp_path / "missing.jsonl"])
    (tmp_path / "bad.jsonl").write_text('{"body": "no text field"}\n')
    with pytest.raises(ValueError, match="text"):
        build_rows([tmp_path / "bad.jsonl"])
    with pytest.raises(ValueError, match="positives"):
        TrainConfig(rows="r", out_dir="o", positives=("nonsense",))


def test_schedule_warms_up_then_decays():
    values = [cosine_with_warmup(s, 100, 10) for s in range(100)]
    assert values[0] < values[9] == 1.0
    assert values[50] < 1.0 and abs(values[99] - 0.1) < 0.01


def test_ntp_batch_layout(rows_file):
    tokenizer = GemModel.from_pretrained(gem_weights=None).tokenizer
    special = len(tokenizer)  # id the GEM token gets
    sampler = RowSampler(read_rows(rows_file), tokenizer, special_ids=[special], max_tokens=48, pad_id=0)
    batch = sampler.ntp_batch(random.Random(0), 4, plain_prob=0.0)  # every row gets the GEM token
    for row in range(4):
        split = int(batch.prefix_lengths[row])
        assert split >= 1 and batch.input_ids[row, split] == special
        assert batch.labels[row, split - 1] == IGNORE  # no loss for predicting the special token
        assert batch.labels[row, split] == batch.input_ids[row, split + 1]  # the special token predicts the suffix
    queries, positives, kinds = sampler.pair_batch(random.Random(0), 4, ("ict",), domain=True)
    assert all(q[-1] == special and p[-1] == special for q, p in zip(queries, positives))
    assert set(kinds) <= {"ict", "dropout"}


def test_document_grouped_pair_batch(rows_file):
    tokenizer = GemModel.from_pretrained(gem_weights=None).tokenizer
    rows = read_rows(rows_file)
    sampler = RowSampler(rows, tokenizer, special_ids=[len(tokenizer)], max_tokens=64, pad_id=0)
    drawn = sampler._document_groups(random.Random(0), range(len(rows)), 8, group=3)
    docs = collections.Counter(rows[i].doc for i in drawn)
    assert len(drawn) == len(set(drawn)) == 8
    assert max(docs.values()) <= 3 and max(docs.values()) >= 2  # the fixture has multi-passage documents
    queries, _, _ = sampler.pair_batch(random.Random(0), 8, ("ict",), domain=False, doc_group=3)
    assert len(queries) == 8


def test_related_documents_join_a_drawn_document_in_its_batch():
    """--related-docs: a drawn document brings the document BM25 finds closest to the drawn passage, not an
    unrelated one, nor a near-copy of the passage (a likely false negative)."""
    def row(text, doc):
        return Row(text, doc, "", doc, "docs", "train")

    rows = [row("termites build mounds of soil and saliva", "termites"),
            row("a termite colony has a queen and workers", "termites"),
            row("aardvarks dig into termite mounds at night to eat termites", "aardvark"),
            row("the aardvark has a long sticky tongue", "aardvark"),
            row("volcanoes erupt lava and ash", "volcano"),
            row("magma rises through the crust", "volcano"),
            row("termites build mounds of soil and saliva, as noted", "copy")]
    sampler = RowSampler(rows, GemModel.from_pretrained(gem_weights=None).tokenizer, special_ids=[0], max_tokens=16,
                         pad_id=0)
    assert sampler._related_doc(0, "docs", exclude={"termites"}) == 2  # not row 6: it is the passage again
    drawn = sampler._document_groups(random.Random(0), [0], 4, group=2, related=1, source="docs")
    assert sorted(drawn) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="needs doc_group"):
        TrainConfig(rows="r", out_dir="o", related_docs=1)


def test_crop_and_neighbour_positives(rows_file):
    tokenizer = GemModel.from_pretrained(gem_weights=None).tokenizer
    special = len(tokenizer)
    rows = read_rows(rows_file)
    sampler = RowSampler(rows, tokenizer, special_ids=[special], max_tokens=256, pad_id=0, crop_share=(0.3, 0.3))
    multi = next(i for i, r in enumerate(rows) if len(sampler.by_doc[r.doc]) >= 2)
    query, positive, kind = sampler.make_pair(random.Random(0), multi, "neighbour")
    siblings = [sampler.encode(rows[i].text) + [special] for i in sampler.by_doc[rows[multi].doc] if i != multi]
    assert kind == "neighbour" and query == sampler.encode(rows[multi].text) + [special] and positive in siblings
    query, positive, kind = sampler.make_pair(random.Random(1), multi, "crop")
    text = tokenizer.decode(query[:-1])
    assert kind == "crop" and query != positive and text in rows[multi].text
    assert abs(len(text.split()) - 0.3 * len(rows[multi].text.split())) <= 1
    alone = RowSampler([rows[multi]], tokenizer, special_ids=[special], max_tokens=256, pad_id=0)
    assert alone.make_pair(random.Random(0), 0, "neighbour")[2] == "crop"  # a one-passage document crops instead


def test_question_positives_and_the_question_file(tmp_path):
    """Generated questions: kept only when they read as a question about the passage, written resumably, joined
    to their rows; a `question` pair is (one of the row's questions, the passage), falling back to ICT without."""
    from gem_rag.core.generation import GenerationResult
    from gem_rag.training.questions import (clean_question, pick_rows, read_questions, row_key, rows_with_questions,
                                            write_questions)

    def row(text, doc, split="train"):
        return Row(text, doc.title(), "", doc, "wiki", split)

    rows = [row("The aardvark feeds almost exclusively on ants and termites. It digs at night.", "aardvark"),
            row("Aardvarks live in burrows. They leave them at dusk.", "aardvark"),
            row("Albedo is the fraction of light a surface reflects. Snow reflects most.", "albedo"),
            row("Held-out passage about lava. It is hot.", "lava", split="val")]
    assert clean_question("What does the aardvark eat?\nMore", rows[0]) == "What does the aardvark eat?"
    assert clean_question("What is the text about?", rows[0]) is None  # about the prompt
    assert clean_question("Who designed the bridge?", rows[0]) is None  # nothing of the passage
    assert clean_question("The aardvark eats ants.", rows[0]) is None  # not a question
    asking = row("What aardvarks eat is termites. That is all they eat.", "aardvark")
    assert clean_question("What is the purpose of that?", asking) is None  # only question words in common
    assert pick_rows(rows, {"wiki": 2}, per_doc=2, seed=0) == [0, 1]  # a whole document first; held-out rows never

    class Writer:  # stands in for GemModel: one reply per prompt
        calls = 0

        def apply_chat_template(self, messages):
            return messages[-1]["content"]

        def generate(self, prompts, **kwargs):
            Writer.calls += 1
            return [GenerationResult("What does the aardvark eat?" if "aardvark" in p else "No idea.", 0, 0, "stop")
                    for p in prompts]

    out = tmp_path / "questions.jsonl"
    assert list(write_questions(Writer(), rows, [0, 2], out, batch=1)) == [1, 2]
    assert list(write_questions(Writer(), rows, [0, 2], out, batch=1)) == [] and Writer.calls == 2  # resumed: done
    found = read_questions(out)
    assert found == {row_key(rows[0]): ["What does the aardvark eat?"], row_key(rows[2]): []}
    kept = rows_with_questions(rows, found)
    assert [r.doc for r in kept] == ["aardvark", "lava"] and kept[0].questions == ["What does the aardvark eat?"]

    tokenizer = GemModel.from_pretrained(gem_weights=None).tokenizer
    sampler = RowSampler(kept + [rows[1]], tokenizer, special_ids=[0], max_tokens=64, pad_id=0)
    query, positive, kind = sampler.make_pair(random.Random(0), 0, "question")
    assert kind == "question" and tokenizer.decode(query[:-1]) == "What does the aardvark eat?"
    assert positive == sampler.encode(rows[0].text) + [0]
    assert sampler.make_pair(random.Random(0), 2, "question")[2] == "ict"  # no questions: ICT instead


def test_same_group_auc():
    from gem_rag.eval.metrics import same_group_auc

    vectors = [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]
    assert same_group_auc(vectors, ["a", "a", "b", "b"]) == 1.0
    assert same_group_auc(vectors, ["a", "b", "a", "b"]) < 0.5
    assert same_group_auc(vectors, ["a", "a", "b", "b"], strata=["x", "y", "x", "y"]) is None  # no same pair in a stratum


def test_lora_training_resume_and_artefact_round_trip(rows_file, tmp_path):
    out = tmp_path / "lora"
    cfg = small_config(rows_file, out)
    trainer = Trainer(cfg)
    trainer.run_phase(1)  # phase 1 done, checkpoint written at the phase boundary
    assert (out / CHECKPOINT_FILE).is_file()
    with pytest.raises(FileExistsError):
        Trainer(cfg).fit()
    card = train(cfg, resume=True)  # continues with phase 2 from the checkpoint
    assert card["steps"] == {"ntp": 2, "contrastive": 3}
    assert card["validation"]["final"]["perplexity"] > 1
    artefact = out / "artefact"
    assert (artefact / CARD_FILE).is_file() and (artefact / WEIGHTS_FILE).stat().st_size < 30e6

    trained = Trainer(cfg)
    trained.load_checkpoint()
    texts = ["Sorting lists with a key function.", "Puffins nest on the cliffs."]
    rows = [trained.sampler.encode(t) + trained.model.special_ids for t in texts]
    trained.model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.normalize(trained._embed(rows), dim=-1).numpy()
    loaded = GemModel.from_pretrained(gem_weights=artefact)
    assert loaded.name.endswith("-GEM") and loaded.card["steps"]["contrastive"] == 3
    got = loaded.embed(texts)
    assert np.allclose(got, expected, atol=2e-2), np.abs(got - expected).max()
    base = GemModel.from_pretrained(gem_weights=None).embed(texts)
    assert not np.allclose(got, base, atol=1e-3)  # the artefact really changed the model


def test_init_from_artefact_continues_it(rows_file, tmp_path):
    first = small_config(rows_file, tmp_path / "first", ntp_steps=0, contrastive_steps=1, eval_rows=0)
    first_card = train(first)
    artefact = tmp_path / "first" / "artefact"
    again = Trainer(small_config(rows_file, tmp_path / "again", init_from=str(artefact), ntp_steps=0,
                                 contrastive_steps=1, eval_rows=0))
    from safetensors.torch import load_file

    saved = load_file(str(artefact / WEIGHTS_FILE))
    assert torch.equal(again.model.special_rows.detach(), saved["special_embeddings"])
    q_proj = again.model.lm.base_model.model.model.layers[3].self_attn.q_proj
    assert torch.equal(q_proj.lora_B["default"].weight.detach().half(), saved["model.layers.3.self_attn.q_proj.lora_B"])
    assert bool(saved["model.layers.3.self_attn.q_proj.lora_B"].abs().sum() > 0)  # not the zero init of a new LoRA
    card = again.fit()
    assert card["recipe"]["init_from"] == str(artefact)
    assert card["parent"]["steps"] == first_card["steps"] and card["parent"]["seed"] == first_card["seed"]
    with pytest.raises(ValueError, match="--lora-r 4"):
        Trainer(small_config(rows_file, tmp_path / "other", init_from=str(artefact), lora_r=8))


def test_train_sources_restrict_training_rows_not_validation(rows_file, tmp_path):
    everything = read_rows(rows_file)
    trainer = Trainer(small_config(rows_file, tmp_path / "wiki", train_sources=("wiki",), eval_rows=512))
    assert trainer.train_rows and {r.source for r in trainer.train_rows} == {"wiki"}
    assert len(trainer.train_rows) < sum(r.split == "train" for r in everything)  # the rst rows are left out
    assert trainer.val_rows == [r for r in everything if r.split == "val"]
    with pytest.raises(ValueError, match="its sources are"):
        Trainer(small_config(rows_file, tmp_path / "none", train_sources=("news",)))


def test_full_finetuning_exports_low_rank_deltas(rows_file, tmp_path):
    cfg = small_config(rows_file, tmp_path / "full", method="full", lr=1e-5, ntp_steps=1, contrastive_steps=1,
                       full_export_rank=8, positives=("dropout", "heading"), ntp_weight=0.0, eval_rows=0)
    card = train(cfg)
    assert card["recipe"]["method"] == "full"
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "full" / "artefact" / WEIGHTS_FILE))
    assert tensors["model.layers.0.self_attn.q_proj.lora_A"].shape == (8, 576)
    assert tensors["model.layers.0.input_layernorm.delta"].shape == (576,)
    model = GemModel.from_pretrained(gem_weights=tmp_path / "full" / "artefact")  # adapter_scope "embedding"
    assert card["adapter_scope"] == "embedding" and np.isfinite(model.embed("a short text")).all()
    base = GemModel.from_pretrained(gem_weights=None)
    assert model.generate("The capital of France is", max_new_tokens=6).text == \
        base.generate("The capital of France is", max_new_tokens=6).text  # norm and linear updates stay switched off


def _contrastive_grads(trainer: Trainer) -> dict[str, torch.Tensor]:
    trainer.optimizer = None
    trainer.model.zero_grad(set_to_none=True)
    trainer._contrastive_step(random.Random("same batch"), weight=0.5)
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def test_grad_cache_matches_one_graph(rows_file, tmp_path):
    """GradCache (``embed_chunk``) gives the gradients of embedding the whole batch in one graph."""
    whole = Trainer(small_config(rows_file, tmp_path / "whole", contrastive_batch=6, eval_rows=0))
    torch.manual_seed(1)
    for param in whole.model.parameters():  # LoRA B starts at zero: give it values so every gradient is non-zero
        if param.requires_grad:
            param.data.add_(0.01 * torch.randn_like(param))
    expected = _contrastive_grads(whole)
    whole.cfg.embed_chunk = 4  # two chunks of unequal length per side
    cached = _contrastive_grads(whole)
    assert set(cached) == set(expected) and "log_scale" in cached
    for name, grad in expected.items():
        assert torch.allclose(cached[name], grad, rtol=1e-3, atol=1e-6), name
    assert any(bool(g.abs().sum() > 0) for n, g in expected.items() if "lora_A" in n)


def test_source_weights_shift_batches_and_reject_unknown_sources(rows_file, tmp_path):
    plain = Trainer(small_config(rows_file, tmp_path / "plain", eval_rows=0))
    boosted = Trainer(small_config(rows_file, tmp_path / "boost", eval_rows=0, source_weights=("wiki=5",)))
    wiki = plain.sampler.sources.index("wiki")
    share = [t.sampler.source_weights[wiki] / sum(t.sampler.source_weights) for t in (plain, boosted)]
    assert share[1] > share[0]
    with pytest.raises(ValueError, match="no training row has"):
        Trainer(small_config(rows_file, tmp_path / "bad", source_weights=("news=2",)))
    with pytest.raises(ValueError, match="source=factor"):
        small_config(rows_file, tmp_path / "bad", source_weights=("wiki",))
