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


@dataclass
class RagAnswer:
    """The answer to one question, the context it was generated from, timings (s) and token usage."""

    question: str
    answer: str
    chunks: list[RetrievedChunk]
    abstained: bool
    timings: dict[str, float]  # retrieval_s, generation_s, ttft_s, total_s
    usage: dict[str, int]  # prompt_tokens, completion_tokens
    raw_answer: str = ""  # the model's text before post-processing
    readings: list[Reading] = field(default_factory=list)  # one per chunk with reading="per_chunk", else one
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
