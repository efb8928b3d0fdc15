"""GEM artefacts: where their updates act (adapter scope), and the KV-cache argument of the installed transformers."""

import json
import shutil

import numpy as np
import pytest

from gem_rag import GemModel
from gem_rag.core.artefact import CARD_FILE, SHIPPED_ARTEFACT, ArtefactError
from gem_rag.core.generation import cache_kwargs


def _artefact_with_scope(tmp_path, scope):
    folder = tmp_path / f"artefact-{scope}"
    shutil.copytree(SHIPPED_ARTEFACT, folder)
    card = json.loads((folder / CARD_FILE).read_text())
    card["adapter_scope"] = scope
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def test_cache_argument_follows_the_forward_signature():
    class Renamed:
        def forward(self, input_ids=None, cache=None, **kwargs): ...

    class Older:
        def forward(self, input_ids=None, past_key_values=None, **kwargs): ...

    assert cache_kwargs(Renamed(), "C") == {"cache": "C"}
    assert cache_kwargs(Older(), "C") == {"past_key_values": "C"}


def test_shipped_artefact_embeds_with_its_adapter_and_generates_as_the_base_model(model, tmp_path):
    assert model.card["adapter_scope"] == "embedding" and model.embedding_adapter is not None
    base = GemModel.from_pretrained(gem_weights=None)
    prompts = [model.apply_chat_template([{"role": "user", "content": q}])
               for q in ("What is the capital of France?", "Name a prime number larger than ten.")]
    assert [r.text for r in model.generate(prompts, max_new_tokens=16)] == \
        [r.text for r in base.generate(prompts, max_new_tokens=16)]

    texts = ["The cat sat on the mat.", "A kitten rested on a rug.", "Kernel modules are loaded with modprobe."]
    switched = model.embed(texts)
    merged = GemModel.from_pretrained(gem_weights=_artefact_with_scope(tmp_path, "all"))
    assert merged.embedding_adapter is None
    assert np.allclose(switched, merged.embed(texts), atol=1e-4)  # same updates, applied two ways
    assert not np.allclose(switched, base.embed(texts), atol=1e-2)  # and they do change the embedding
    assert switched[0] @ switched[1] > switched[0] @ switched[2] + 0.2  # the cat is nearer the kitten


def test_unknown_adapter_scope_is_refused_by_name(tmp_path):
    with pytest.raises(ArtefactError, match="adapter_scope"):
        GemModel.from_pretrained(gem_weights=_artefact_with_scope(tmp_path, "everywhere"))
