"""Plain data types of the RAG pipeline (see docs: the RagPipeline contract)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Chunk:
    """One indexed passage. ``id`` is stable: a hash of source path, offsets and text."""

    id: str
    text: str
    metadata: dict = field(default_factory=dict)  # {"source", "title", "start", "end", ...}


@dataclass
class RetrievedChunk:
    """A chunk with the score used for ranking (higher is better) and its 1-based rank."""

    chunk: Chunk
    score: float
    rank: int


@dataclass
class Reading:
    """One reading of the context: the answer the model gave from ``chunk_ids`` and its log-probability (the
    sum over its tokens; higher means the model was surer). ``passed_checks`` is False when no beam's answer
    passed the answer checks (an echo of the question, an announcement such as "the following code:")."""

    chunk_ids: list[str]
    answer: str
    raw_answer: str
    abstained: bool
    logprob: float
    tokens: int
    passed_checks: bool = True


@dataclass(frozen=True)
class SupportingSentence:
    """A sentence (or list item, or code block) of a retrieved chunk that the answer rests on:
    ``chunk.text[start:end] == text``; ``score`` is how well it matched the question."""

    text: str
    chunk_id: str
    start: int
    end: int
    score: float = 0.0
    kind: str = "sentence"  # "sentence", "item" or "code"

    def to_dict(self) -> dict:
        return {"text": self.text, "chunk_id": self.chunk_id, "start": self.start, "end": self.end,
                "score": round(float(self.score), 4), "kind": self.kind}


@dataclass(kw_only=True)
class RagAnswer:
    """The answer to one question, the sentences it rests on, the chunks it was read from, timings (s) and
    token usage. ``how`` says how the answer was made: "span" (a short answer the model wrote from the
    supporting sentences), "sentence" (the supporting sentence itself), "code" (the command or code the
    supporting sentence introduces), "generated" (the chunks reader) or "abstained"."""

    question: str
    answer: str
    chunks: list[RetrievedChunk]
    abstained: bool
    timings: dict[str, float]  # retrieval_s, generation_s, ttft_s, total_s
    usage: dict[str, int]  # prompt_tokens, completion_tokens
    supporting_sentences: list[SupportingSentence] = field(default_factory=list)
    how: str = "generated"
    raw_answer: str = ""  # the model's text before post-processing
    readings: list[Reading] = field(default_factory=list)  # chunks reader: one per chunk (per_chunk) or one
    answer_chunk_ids: list[str] = field(default_factory=list)  # the chunks the chosen answer was read from


@dataclass
class IndexReport:
    """What one ``RagPipeline.index`` call did."""

    files_indexed: int = 0
    files_skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    chunks_duplicate: int = 0  # chunks whose text was already indexed (not added again)


# ---------------------------------------------------------------- stream events (RagPipeline.stream_answer)
@dataclass(frozen=True)
class SourcesEvent:
    """First event: the retrieved chunks, before any reading."""

    chunks: list[RetrievedChunk]
    type: str = "sources"


@dataclass(frozen=True)
class SupportEvent:
    """The sentences the answer will rest on, as soon as they are found (before the answer is written)."""

    sentences: list[SupportingSentence]
    type: str = "support"


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the answer text."""

    text: str
    type: str = "token"


@dataclass(frozen=True)
class DoneEvent:
    """Last event: the whole answer."""

    answer: RagAnswer
    type: str = "done"


StreamEvent = SourcesEvent | SupportEvent | TokenEvent | DoneEvent
