"""ChunkReader (``reader="chunks"``): the model reads whole retrieved chunks and writes the answer.

- ``reading="per_chunk"``: each chunk is read alone (with ``beams`` > 1, a beam search for the most probable
  short answer, preferring text the chunk contains and skipping answers that only repeat the question or the
  prompt's few-shot answers); the most probable answer wins, less ``READING_RANK_PENALTY`` nats per retrieval
  rank below the first; a chunk whose beams all failed the checks loses to any that passed, and when none
  passed the answer is the abstention.
- ``reading="joint"``: one prompt holds every chunk; with ``beams=1`` the answer streams token by token.
- ``answer_mode="extractive"`` constrains the answer to a span copied from the chunks.
- With KV reuse the first chunk's KV state (computed at indexing) opens the prompt (exact).

It answers SQuAD-style span questions best; the default SentenceReader gives the answers people accept (see
docs/benchmarks.md, "RAG pipeline").

Example:
    >>> reader = ChunkReader(generator, RagConfig(reader="chunks"), kv=None)
    >>> for item in reader.read(question, chunks, params): ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from gem_rag.rag.answer_generation import AnswerGenerator
from gem_rag.rag.config import RagConfig
from gem_rag.core.decoding import PieceGeneration
from gem_rag.rag.sentence_reader import ReadResult
from gem_rag.rag.types import Reading, RetrievedChunk, TokenEvent

# per-chunk reading: a lower-ranked chunk's answer must be this many nats more probable per rank to win
READING_RANK_PENALTY = 2.0


class ChunkReader:
    def __init__(self, generator: AnswerGenerator, config: RagConfig, kv=None):
        self.generator = generator
        self.config = config
        self.kv = kv  # a ChunkKV (gem_rag.rag.kv) when KV reuse is on

    def read(self, question: str, chunks: Sequence[RetrievedChunk], params) -> Iterator[TokenEvent | ReadResult]:
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        readings: list[Reading] = []
        abstention = Reading([], self.generator.prompt.abstain_phrase, "", True, 0.0, 0)
        first = None
        if not chunks:
            best = abstention
        elif self.config.reading == "per_chunk" and len(chunks) > 1:
            for chunk in chunks:  # each chunk read alone; the answers are compared once all are in
                run = self._generation(question, [chunk], params)
                readings.append(self._reading(run, "".join(run), [chunk], question, usage))
            best = best_reading(readings) or abstention
            yield TokenEvent(best.raw_answer)
        else:
            run = self._generation(question, list(chunks), params)
            try:
                for piece in run:
                    if run.beams == 1:  # greedy or sampled: streamed as decoded (no checks to fail)
                        yield TokenEvent(piece)
            finally:
                run.close()
            readings.append(self._reading(run, run.result.text if run.result else "", list(chunks), question, usage))
            best, first = best_reading(readings) or abstention, run.first_token_s
            if run.beams > 1:  # the beam search's answer arrives whole, once it is checked
                yield TokenEvent(best.raw_answer)
        yield ReadResult(best.answer, best.abstained, "abstained" if best.abstained else "generated",
                         raw_answer=best.raw_answer, usage=usage, first_token_s=first,
                         answer_chunk_ids=list(best.chunk_ids), readings=readings)

    def _generation(self, question: str, chunks: list[RetrievedChunk], params) -> PieceGeneration:
        """The decoding of an answer from ``chunks`` (beam search when greedy and ``beams > 1``)."""
        config, prompt = self.config, self.generator.prompt
        beams = config.beams if params.temperature == 0.0 else 1
        texts = [c.chunk.text for c in chunks]
        accept = [prompt.grounded_in(texts, question)] if beams > 1 else []
        if beams > 1 and config.prefer_spans:
            accept.insert(0, prompt.grounded_in(texts, question, spans_only=True))
        state = self.kv.state(chunks[0].chunk) if self.kv is not None else None
        return self.generator.run(question, texts, params, beams=beams, accept=accept,
                                  extractive=config.answer_mode == "extractive", first_state=state)

    def _reading(self, run: PieceGeneration, raw: str, chunks: list[RetrievedChunk], question: str,
                 usage: dict[str, int]) -> Reading:
        """The finished ``run`` as a Reading (its token counts added to ``usage``)."""
        result = run.result
        assert result is not None  # set once the run is drained
        usage["prompt_tokens"] += result.prompt_tokens
        usage["completion_tokens"] += result.completion_tokens
        answer, abstained = self.generator.prompt.postprocess(raw, question)
        return Reading([c.chunk.id for c in chunks], answer, raw, abstained, run.logprob, result.completion_tokens,
                       run.passed_checks)


def best_reading(readings: list[Reading], rank_penalty: float = READING_RANK_PENALTY,
                 checked_only: bool = True) -> Reading | None:
    """The non-abstaining reading (in retrieval order) with the highest log-probability less ``rank_penalty``
    per rank below the first, among those whose answer passed the answer checks; the first reading when all
    abstain. When answers came but none passed the checks: None (abstain) with ``checked_only``, else the best
    of them."""
    answered = [(r.logprob - rank_penalty * rank, r) for rank, r in enumerate(readings)
                if not r.abstained and r.answer]
    checked = [pair for pair in answered if pair[1].passed_checks]
    if checked or (answered and not checked_only):
        return max(checked or answered, key=lambda pair: pair[0])[1]
    return None if answered else readings[0]
