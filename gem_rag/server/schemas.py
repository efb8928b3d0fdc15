"""Request bodies of the HTTP API (pydantic: a bad body is answered 422 with the field and the problem)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_EMBEDDING_INPUTS = 2048


class _Body(BaseModel):
    # Unknown OpenAI fields (user, logit_bias...) are accepted and ignored, as other compatible servers do.
    model_config = ConfigDict(extra="ignore")


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
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"input holds {len(texts)} texts; send at most {MAX_EMBEDDING_INPUTS} per request")
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

    def token_limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class RagAnswerRequest(_Body):
    question: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=3, ge=1, le=20, description="passages given to the model")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1024)
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
