"""Retrieval-vs-answer consistency: does the LLM answer from what the retriever found?

Label-free, per answer:

- grounding: token precision of the answer against its best chunk; ``contained``: the answer occurs verbatim;
- abstention: the model said the documents do not hold the answer;
- attribution: the chunk the answer came from (best grounding, then longest copied run) and its retrieval rank;
- embedding agreement: cosines between question, answer and the attributed chunk in the model's own space;
- judge agreement (optional, one extra forward pass per chunk): the LLM's P("yes") for "does this passage answer
  the question?" from the next-token logits, compared with the retriever's ranking (Spearman, top-1).

Example:
    >>> report = answer_consistency(model, "Who won Super Bowl 50?", "Denver Broncos",
    ...                             ["The Denver Broncos defeated the Carolina Panthers.", "Levi's Stadium"])
    >>> report.label, report.attributed_rank
    ('consistent', 1)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

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

JUDGE_PROMPT = ("Passage:\n{passage}\n\nQuestion: {question}\n\n"
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
    judge_agreement: float | None  # Spearman(judge P(yes), retriever score) over the chunks; None unless judged
    label: str  # one of LABELS
    query_chunk_cosine: float | None = None  # cos(question, attributed chunk)
    query_answer_cosine: float | None = None  # cos(question, answer)
    judge_top1: bool | None = None  # the judge's most relevant chunk is the retriever's top hit
    judge_scores: list[float] | None = None  # P(yes) per chunk, in retrieval order

    def to_dict(self) -> dict:
        return asdict(self)


def _yes_no_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    def first_ids(words: Sequence[str]) -> list[int]:
        return sorted({tokenizer(w, add_special_tokens=False).input_ids[0] for w in words})

    return first_ids(["yes", "Yes", " yes", " Yes"]), first_ids(["no", "No", " no", " No"])


def judge_relevance(model, question: str | Sequence[str], passages: Sequence[str], *,
                    batch_size: int = 8) -> list[float]:
    """The LLM's P("yes") that each passage answers the question, from one forward pass per passage.

    ``question`` is one string for all passages or one per passage. Prompts go through the chat template,
    are left-padded and batched (longest first); P(yes) = softmax over the yes/no next-token logits.

    Example:
        >>> judge_relevance(model, "Who won?", ["The Broncos won.", "It rained."])
        [0.8..., 0.2...]
    """
    if not passages:
        return []
    questions = [question] * len(passages) if isinstance(question, str) else list(question)
    if len(questions) != len(passages):
        raise ValueError(f"got {len(questions)} questions for {len(passages)} passages")
    tokenizer = model.tokenizer
    yes_ids, no_ids = _yes_no_token_ids(tokenizer)
    rows = []
    for q, passage in zip(questions, passages):
        ids = tokenizer(passage, add_special_tokens=False).input_ids
        if len(ids) > JUDGE_PASSAGE_TOKENS:
            passage = tokenizer.decode(ids[:JUDGE_PASSAGE_TOKENS])
        prompt = model.apply_chat_template([{"role": "user", "content": JUDGE_PROMPT.format(passage=passage, question=q)}])
        rows.append(tokenizer(prompt, add_special_tokens=False).input_ids)
    p_yes = [0.0] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    for start in range(0, len(order), batch_size):
        batch = order[start: start + batch_size]
        length = len(rows[batch[0]])
        input_ids = torch.full((len(batch), length), model.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), length), dtype=torch.long)
        for j, i in enumerate(batch):  # left padding: the next-token logits sit in the last column
            input_ids[j, length - len(rows[i]):] = torch.tensor(rows[i])
            attention[j, length - len(rows[i]):] = 1
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        with model.lock, torch.inference_mode():
            logits = model.hf_model(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
                                    position_ids=positions.to(model.device), logits_to_keep=1).logits[:, -1].float()
        yes = torch.logsumexp(logits[:, yes_ids], dim=-1)
        no = torch.logsumexp(logits[:, no_ids], dim=-1)
        for j, value in enumerate(torch.sigmoid(yes - no).tolist()):
            p_yes[batch[j]] = value
    return p_yes


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


def answer_consistency(model, question: str, answer: str, chunks: Sequence[str], scores: Sequence[float] | None = None,
                       *, judge: bool = False, abstained: bool | None = None, embed: bool = True,
                       judge_scores: Sequence[float] | None = None) -> ConsistencyReport:
    """Check one answer against the chunks (rank order) it was generated from.

    Args:
        model: the GemModel (embedding space and judge); ``None`` uses the default model.
        chunks: the context texts, best first; ``scores`` their retrieval scores (default: rank order).
        judge: also ask the LLM which chunks answer the question (one batched forward pass, ~k x slower).
        abstained: the pipeline's own abstention flag; ``None`` detects it from the answer text.
        embed: compute the embedding cosines (three embeddings; ``False`` keeps it lexical only).
        judge_scores: precomputed P(yes) per chunk (from :func:`judge_relevance`), implies ``judge``.

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
        cited = chunks[index if index is not None else 0]
        q = model.embed(question, kind="query")
        answer_vec, chunk_vec = model.embed([answer, cited])
        report.embedding_agreement = _cosine(answer_vec, chunk_vec)
        report.query_chunk_cosine = _cosine(q, chunk_vec)
        report.query_answer_cosine = _cosine(q, answer_vec)
    if judge or judge_scores is not None:
        p_yes = list(judge_scores) if judge_scores is not None else judge_relevance(model, question, chunks)
        retriever = list(scores) if scores is not None else [-float(r) for r in range(len(chunks))]
        report.judge_scores = [round(float(p), 4) for p in p_yes]
        report.judge_agreement = spearman(p_yes, retriever)
        report.judge_top1 = int(np.argmax(p_yes)) == int(np.argmax(retriever))
    return report
