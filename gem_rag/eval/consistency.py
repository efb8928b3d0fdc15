"""Retrieval-vs-answer consistency: does the LLM answer from what the retriever found?

Label-free, per answer:

- grounding: token precision of the answer against its best chunk; ``contained``: the answer occurs verbatim;
- abstention: the model said the documents do not hold the answer;
- attribution: the chunk the answer came from (best grounding, then longest copied run) and its retrieval rank;
- embedding agreement: cosines between question, answer and the attributed chunk in the model's own space;
- judge agreement (optional, one extra forward pass per chunk): the LLM's own relevance judgement of each chunk
  (how likely it finds the question given the chunk, or P("yes") to "does this passage answer the question?"),
  compared with the retriever's ranking (Spearman, top-1).

Example:
    >>> report = answer_consistency(model, "Who won Super Bowl 50?", "Denver Broncos",
    ...                             ["The Denver Broncos defeated the Carolina Panthers.", "Levi's Stadium"])
    >>> report.label, report.attributed_rank
    ('consistent', 1)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from collections.abc import Sequence

import numpy as np

from gem_rag.eval.metrics import answer_contained, longest_common_run, spearman, token_precision

LABELS = ("consistent", "partly", "unsupported", "abstained")
CONSISTENT_GROUNDING = 0.75  # at least this share of the answer's content words in one chunk -> "consistent"
PARTLY_GROUNDING = 0.4  # at least this -> "partly"; below -> "unsupported"

_ABSTENTION = re.compile(
    r"(do(?:es)?\s*n[o']t|did\s*n[o']t)\s+(contain|mention|provide|say|specify|include|state|have|know)"
    r"|\b(can\s*not|can't|unable to|could\s*n[o']t)\s+(answer|find|determine|be (determined|answered|found))"
    r"|\bnot\s+(mentioned|provided|stated|specified|given|contained|included|found)\b"
    r"|\bno\s+(information|mention|answer)\b|\bunanswerable\b|\b(not enough|insufficient) information\b"
    r"|\bi\s+do\s*n[o']t\s+know\b",
    re.IGNORECASE,
)

JUDGE_METHODS = ("question_likelihood", "yes_no")
QUESTION_LIKELIHOOD_PROMPT = "Passage:\n{passage}\n\nWrite a question that this passage answers."
YES_NO_PROMPT = ("Passage:\n{passage}\n\nQuestion: {question}\n\n"
                 "Does the passage contain the answer to the question? Answer yes or no.")
JUDGE_PASSAGE_TOKENS = 384  # passages are cut to this many tokens in the judge prompt


def is_abstention(answer: str) -> bool:
    """True for an empty answer or one that says the documents do not hold the answer.

    Example:
        >>> is_abstention("The documents do not contain the answer.")
        True
    """
    return not answer.strip() or bool(_ABSTENTION.search(answer))


@dataclass
class ConsistencyReport:
    """How far one answer is supported by the chunks it was generated from (see the module docstring)."""

    grounding: float  # 0..1, token precision of the answer against the attributed chunk
    contained: bool  # the normalised answer occurs verbatim in a chunk
    abstained: bool
    attributed_rank: int | None  # 1-based rank of the chunk the answer came from; None if no chunk supports it
    embedding_agreement: float | None  # cos(answer, attributed chunk) in the model's embedding space
    judge_agreement: float | None  # Spearman(judge score, retriever score) over the chunks; None unless judged
    label: str  # one of LABELS
    query_chunk_cosine: float | None = None  # cos(question, attributed chunk)
    query_answer_cosine: float | None = None  # cos(question, answer)
    judge_top1: bool | None = None  # the judge's most relevant chunk is the retriever's top hit
    judge_scores: list[float] | None = None  # the LLM's relevance score per chunk (0..1), in retrieval order

    def to_dict(self) -> dict:
        return asdict(self)


def _judge_prompt(model, question: str, passage: str, method: str) -> str:
    """The judge's prompt (through the chat template) for one passage, cut to JUDGE_PASSAGE_TOKENS."""
    ids = model.tokenizer(passage, add_special_tokens=False).input_ids
    if len(ids) > JUDGE_PASSAGE_TOKENS:
        passage = model.tokenizer.decode(ids[:JUDGE_PASSAGE_TOKENS])
    if method == "yes_no":
        content = YES_NO_PROMPT.format(passage=passage, question=question)
    else:
        content = QUESTION_LIKELIHOOD_PROMPT.format(passage=passage)
    return model.apply_chat_template([{"role": "user", "content": content}])


def judge_relevance(model, question: str | Sequence[str], passages: Sequence[str], *,
                    method: str = "question_likelihood") -> list[float]:
    """The LLM's own relevance judgement of each passage for the question, in [0, 1], one forward pass each.

    ``method="question_likelihood"`` (default): the per-token geometric-mean probability of the question
    given the passage, P(question | "Passage: ... Write a question that this passage answers.") through the
    chat template, teacher-forced. ``method="yes_no"``: P("yes") against P("no") as the next token after
    "Does the passage contain the answer to the question? Answer yes or no." SmolLM2-135M ranks a
    question's own SQuAD paragraph above a same-article distractor 12/12 times with the first and at chance
    (17/36 over three phrasings) with the second, hence the default (see docs/evaluation.md).
    ``question`` is one string for all passages or one per passage; the passages are scored in batches (GemModel.score).

    Example:
        >>> judge_relevance(model, "Who won?", ["The Broncos won.", "It rained."])
        [0.2..., 0.05...]
    """
    if method not in JUDGE_METHODS:
        raise ValueError(f"method must be one of {JUDGE_METHODS}, got {method!r}")
    if not passages:
        return []
    questions = [question] * len(passages) if isinstance(question, str) else list(question)
    if len(questions) != len(passages):
        raise ValueError(f"got {len(questions)} questions for {len(passages)} passages")
    prompts = [_judge_prompt(model, q, p, method) for q, p in zip(questions, passages)]
    if method == "question_likelihood":  # per-token geometric-mean probability of the question
        return [float(np.exp(lp.mean())) for lp in model.score(prompts, questions)]
    answers = ("yes", "Yes", "no", "No")  # P("yes") against P("no") as the reply's first word
    logprobs = model.score([p for p in prompts for _ in answers], [a for _ in prompts for a in answers])
    scores = []
    for i in range(len(prompts)):
        first = [float(lp[0]) for lp in logprobs[i * len(answers): (i + 1) * len(answers)]]
        yes, no = np.logaddexp(first[0], first[1]), np.logaddexp(first[2], first[3])
        scores.append(float(1 / (1 + np.exp(no - yes))))
    return scores


def _attribute(answer: str, chunks: Sequence[str]) -> tuple[int | None, float, bool]:
    """(index of the supporting chunk or None, its token precision, answer contained in some chunk)."""
    best, best_key = None, (0.0, 0)
    contained = False
    for i, text in enumerate(chunks):
        is_contained = answer_contained(answer, text)
        contained = contained or is_contained
        key = (1.0 if is_contained else token_precision(answer, text), longest_common_run(answer, text))
        if key[0] > 0 and key > best_key:  # ties keep the better-ranked chunk
            best, best_key = i, key
    return best, best_key[0], contained


def _label(abstained: bool, grounding: float, contained: bool) -> str:
    if abstained:
        return "abstained"
    if contained or grounding >= CONSISTENT_GROUNDING:
        return "consistent"
    return "partly" if grounding >= PARTLY_GROUNDING else "unsupported"


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _add_cosines(report: ConsistencyReport, model, question: str, answer: str, chunks: list[str], cited: int,
                 chunk_embeddings: np.ndarray | None) -> None:
    """The report's cosines in the model's embedding space: answer-chunk, question-chunk, question-answer (the
    chunk the answer is attributed to, its vector from ``chunk_embeddings`` when given)."""
    q = model.embed(question, kind="query")
    if chunk_embeddings is not None:
        if len(chunk_embeddings) != len(chunks) or np.shape(chunk_embeddings)[-1] != model.embedding_dim:
            raise ValueError(f"chunk_embeddings must be ({len(chunks)}, {model.embedding_dim}), "
                             f"got {np.shape(chunk_embeddings)}")
        answer_vec, chunk_vec = model.embed(answer), np.asarray(chunk_embeddings[cited], dtype=np.float32)
    else:
        answer_vec, chunk_vec = model.embed([answer, chunks[cited]])
    report.embedding_agreement = _cosine(answer_vec, chunk_vec)
    report.query_chunk_cosine = _cosine(q, chunk_vec)
    report.query_answer_cosine = _cosine(q, answer_vec)


def answer_consistency(model, question: str, answer: str, chunks: Sequence[str], scores: Sequence[float] | None = None,
                       *, judge: bool = False, abstained: bool | None = None, embed: bool = True,
                       judge_scores: Sequence[float] | None = None, judge_method: str = "question_likelihood",
                       chunk_embeddings: np.ndarray | None = None) -> ConsistencyReport:
    """Check one answer against the chunks (rank order) it was generated from.

    Args:
        model: the GemModel (embedding space and judge); ``None`` uses the default model.
        chunks: the context texts, best first; ``scores`` their retrieval scores (default: rank order).
        judge: also ask the LLM which chunks answer the question (one batched forward pass, ~k x slower).
        abstained: the pipeline's own abstention flag; ``None`` detects it from the answer text.
        embed: compute the embedding cosines (three embeddings; ``False`` keeps it lexical only).
        judge_scores: precomputed judge scores per chunk (from :func:`judge_relevance`), implies ``judge``.
        judge_method: see :func:`judge_relevance`.
        chunk_embeddings: (n_chunks, dim) GEM document vectors of the chunks (e.g. from the pipeline's store),
            to skip embedding the cited chunk again.

    The label is lexical (a few ms); the embedding cosines cost ~0.5 s of CPU (the chunk's embedding) unless
    ``chunk_embeddings`` is given, and the judge one forward pass per chunk. A UI that shows only the label
    can pass ``embed=False``.

    Example:
        >>> answer_consistency(model, "Who won?", "Broncos", ["The Broncos won."]).to_dict()["label"]
        'consistent'
    """
    from gem_rag import resolve_model

    if not isinstance(answer, str) or not isinstance(question, str):
        raise TypeError("question and answer must be strings")
    chunks = list(chunks)
    if any(not isinstance(c, str) for c in chunks):
        raise TypeError("chunks must be a list of strings")
    if scores is not None and len(scores) != len(chunks):
        raise ValueError(f"scores has {len(scores)} values for {len(chunks)} chunks")
    if judge_scores is not None and len(judge_scores) != len(chunks):
        raise ValueError(f"judge_scores has {len(judge_scores)} values for {len(chunks)} chunks")
    abstained = is_abstention(answer) if abstained is None else abstained or not answer.strip()
    index, grounding, contained = (None, 0.0, False) if abstained else _attribute(answer, chunks)
    report = ConsistencyReport(grounding, contained, abstained, None if index is None else index + 1, None, None,
                               _label(abstained, grounding, contained))
    if not chunks:
        report.label = "abstained" if abstained else "unsupported"
        return report
    needs_model = (embed and not abstained) or judge or judge_scores is not None
    model = resolve_model(model) if needs_model else model
    if embed and not abstained:
        _add_cosines(report, model, question, answer, chunks, index if index is not None else 0, chunk_embeddings)
    if judge or judge_scores is not None:
        p_yes = list(judge_scores) if judge_scores is not None else judge_relevance(model, question, chunks, method=judge_method)
        retriever = list(scores) if scores is not None else [-float(r) for r in range(len(chunks))]
        report.judge_scores = [round(float(p), 4) for p in p_yes]
        report.judge_agreement = spearman(p_yes, retriever)
        report.judge_top1 = int(np.argmax(p_yes)) == int(np.argmax(retriever))
    return report
