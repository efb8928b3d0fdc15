"""Request bodies of the HTTP API (pydantic: a bad body is answered 422 with the field and the problem; text
that is not valid Unicode, e.g. a lone surrogate such as "\\udcff", 400).

The limits that depend on the server's settings (inputs and tokens per request, max_tokens) are checked by
the routes (gem_rag.server.limits), so their messages can name the setting.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

INVALID_TEXT = "invalid_text"  # the error type the app answers 400 (not 422)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode_problem(value: object, path: str = "") -> str | None:
    """Where ``value`` (a parsed JSON body) holds a string that is not valid Unicode, or None."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is None:
            return None
        return (f"{path or 'the body'} holds a lone surrogate ({ascii(found.group())[1:-1]}) at character "
                f"{found.start()}: text must be valid Unicode (a UTF-16 surrogate escape must be one of a pair)")
    if isinstance(value, dict):
        for key, item in value.items():
            name = ascii(key)[1:-1] if isinstance(key, str) else str(key)
            problem = (_unicode_problem(key, f"the key {name!r} of {path or 'the body'}")
                       or _unicode_problem(item, f"{path}.{name}" if path else name))
            if problem:
                return problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problem = _unicode_problem(item, f"{path}[{i}]")
            if problem:
                return problem
    return None


class _Body(BaseModel):
    # Unknown OpenAI fields (user, logit_bias...) are accepted and ignored, as other compatible servers do.
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, value: object) -> object:
        problem = _unicode_problem(value)
        if problem:
            raise PydanticCustomError(INVALID_TEXT, problem)
        return value


class EmbeddingsRequest(_Body):
    input: str | list[str] = Field(description="a text or a list of texts")
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    input_type: Literal["document", "query"] = Field(
        default="document", description="gem-rag extension: 'query' prepends the model's query instruction")

    @field_validator("input", mode="before")
    @classmethod
    def _texts_only(cls, value: object) -> object:
        if isinstance(value, list) and value and all(isinstance(v, int) or isinstance(v, list) for v in value):
            raise ValueError("token-id input is not supported: send the text itself (a string or a list of strings)")
        return value

    @field_validator("input")
    @classmethod
    def _non_empty(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("input is an empty list: send at least one text")
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"input[{i}] is empty or whitespace: every text must hold some characters")
        return value


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)

    def as_dict(self) -> dict:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0 = greedy (the default here, unlike OpenAI's 1)")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="only one choice per request is supported")

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4:
            raise ValueError("stop holds more than 4 sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must not be empty strings")
        return value

    def token_limit(self, default: int | None) -> int | None:
        return self.max_completion_tokens or self.max_tokens or default


class RagAnswerRequest(_Body):
    question: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1, le=20,
                          description="passages given to the model (default: the pipeline's setting, RagConfig.k = 5)")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, description="at most the server's limit (1024 by default)")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is blank: type a question")
        return value.strip()


class UploadedFile(_Body):
    name: str = Field(min_length=1, max_length=255)
    text: str


class UploadRequest(_Body):
    files: list[UploadedFile] = Field(min_length=1, max_length=200)


class FolderRequest(_Body):
    path: str = Field(min_length=1)
