"""LangChain's own standard test suites (langchain-tests) against the real default model.

Features the model lacks are declared through the suites' switch properties, never by overriding a test.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests  # noqa: E402

from gem_rag.langchain import GemChatModel, GemEmbeddings  # noqa: E402

# The suites' async tests carry no asyncio mark; mark the module (and hush the note on its sync tests).
pytestmark = [pytest.mark.asyncio,
              pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning")]

# Short answers keep the ~40 generations of the chat suites fast on CPU (~25 tokens/s).
CHAT_PARAMS = {"max_tokens": 8}


class _GemChatSwitches:
    """What the 135M text-only model can and cannot do, as the suites' own switches."""

    @property
    def chat_model_class(self) -> type[GemChatModel]:
        return GemChatModel

    @property
    def has_tool_calling(self) -> bool:
        return False  # no tool-call format in SmolLM2's chat template

    @property
    def has_structured_output(self) -> bool:
        return False  # no JSON schema / function-calling mode

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False  # text-only model

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # one process-wide GemModel; a per-call model name cannot swap weights


class TestGemEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[GemEmbeddings]:
        return GemEmbeddings


class TestGemEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[GemEmbeddings]:
        return GemEmbeddings


class TestGemChatModelUnit(_GemChatSwitches, ChatModelUnitTests):
    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # The unit suite adds api_key="test" for hosted providers; a local model has no key and forbids extras.
        params = dict(super().standard_chat_model_params)
        params.pop("api_key")
        return params


class TestGemChatModelIntegration(_GemChatSwitches, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(CHAT_PARAMS)
