"""Batch builders for both phases: token ids, GEM layouts, labels and contrastive positive pairs.

Every batch is drawn from a ``random.Random`` seeded by (seed, phase, step, micro-step), so a resumed run
sees exactly the batches it would have seen.

Example:
    >>> sampler = RowSampler(rows, tokenizer, special_ids=[49152], max_tokens=256)
    >>> batch = sampler.ntp_batch(random.Random(0), size=8, plain_prob=0.8)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from collections.abc import Sequence

import torch

from gem_rag.core.gem import bos_prefix
from gem_rag.rag.bm25 import BM25Index, tokenize
from gem_rag.training.data import Row, split_sentences

IGNORE = -100
RELATED_CANDIDATES = 20  # BM25 hits read to find a related document (see RowSampler._related_doc)
RELATED_MAX_OVERLAP = 0.5  # a hit sharing more of its words with the drawn passage is a likely duplicate: skipped


@dataclass
class NtpBatch:
    input_ids: torch.Tensor  # (B, T)
    attention: torch.Tensor  # (B, T) 1 real, 0 padding
    labels: torch.Tensor  # (B, T) next-token targets, IGNORE where no loss
    prefix_lengths: torch.Tensor  # (B,) GEM split point, -1 for plain rows

    @property
    def has_gem_rows(self) -> bool:
        return bool((self.prefix_lengths >= 0).any())


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows into (ids, attention) tensors."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, : len(row)] = 1
    return ids, attention


class RowSampler:
    """Draws training batches from rows; tokenises on the fly (fast tokenizer, cached per row)."""

    def __init__(self, rows: Sequence[Row], tokenizer, *, special_ids: Sequence[int], max_tokens: int,
                 pad_id: int, token_dropout: float = 0.15, ict_keep_prob: float = 0.1,
                 crop_share: tuple[float, float] = (0.3, 0.6), source_factors: dict[str, float] | None = None):
        if not rows:
            raise ValueError("no training rows: prepare them from a corpus first")
        self.rows = list(rows)
        self.tokenizer = tokenizer
        self.bos_ids = bos_prefix(tokenizer)  # starts every row ([] for SmolLM2)
        self.special_ids = list(special_ids)
        self.max_tokens = max_tokens
        self.pad_id = pad_id
        self.token_dropout = token_dropout
        self.ict_keep_prob = ict_keep_prob
        self.crop_share = crop_share
        self.by_source: dict[str, list[int]] = {}
        self.by_doc: dict[str, list[int]] = {}  # row indices of each document, in document order
        self.doc_position: list[int] = []  # where each row sits in its document's list
        for i, row in enumerate(self.rows):
            self.by_source.setdefault(row.source, []).append(i)
            siblings = self.by_doc.setdefault(row.doc, [])
            self.doc_position.append(len(siblings))
            siblings.append(i)
        self.sources = sorted(self.by_source)
        self._bm25: dict[str, BM25Index] = {}  # per source ("" = every row), built when related documents are asked
        # sources weighted by sqrt(size), so small corpora (e.g. Wikipedia) are not drowned out, times a factor
        factors = source_factors or {}
        unknown = set(factors) - set(self.sources)
        if unknown:
            raise ValueError(f"source_weights name {sorted(unknown)}, which no training row has; "
                             f"the sources are {self.sources}")
        self.source_weights = [len(self.by_source[s]) ** 0.5 * factors.get(s, 1.0) for s in self.sources]

    def encode(self, text: str, limit: int | None = None) -> list[int]:
        ids = self.bos_ids + self.tokenizer(text, add_special_tokens=False).input_ids
        return ids[: (limit or self.max_tokens) - len(self.special_ids)]

    # ------------------------------------------------------------------ phase 1
    def ntp_batch(self, rng: random.Random, size: int, plain_prob: float) -> NtpBatch:
        """Plain NTP rows, and with probability ``1 - plain_prob`` rows split as ``prefix <gem> suffix``."""
        sequences, prefix_lengths = [], []
        for index in rng.sample(range(len(self.rows)), min(size, len(self.rows))):
            ids = self.encode(self.rows[index].text)
            first = len(self.bos_ids) + 1  # the prefix holds at least one text token
            if len(ids) > first and rng.random() >= plain_prob:
                split = rng.randint(first, len(ids) - 1)
                sequences.append(ids[:split] + self.special_ids + ids[split:])
                prefix_lengths.append(split)
            else:
                sequences.append(ids)
                prefix_lengths.append(-1)
        input_ids, attention = pad_rows(sequences, self.pad_id)
        labels = torch.full_like(input_ids, IGNORE)
        labels[:, :-1] = input_ids[:, 1:]
        labels[:, :-1][attention[:, 1:] == 0] = IGNORE
        for special in self.special_ids:  # no loss on predicting a special token
            labels[labels == special] = IGNORE
        return NtpBatch(input_ids, attention, labels, torch.tensor(prefix_lengths, dtype=torch.long))

    # ------------------------------------------------------------------ phase 2
    def pair_batch(self, rng: random.Random, size: int, kinds: Sequence[str], domain: bool,
                   doc_group: int = 0, related_docs: int = 0) -> tuple[list, list, list]:
        """``size`` (query ids, positive ids, kind) pairs; ``domain``: all from one source; ``doc_group`` > 1: up to
        that many passages of each drawn document, so passages of one document are each other's negatives;
        ``related_docs``: each drawn document brings that many lexically related ones (:meth:`_related_doc`)."""
        source = rng.choices(self.sources, weights=self.source_weights)[0] if domain else ""
        pool: Sequence[int] = self.by_source[source] if domain else range(len(self.rows))
        if doc_group > 1:
            indices = self._document_groups(rng, pool, min(size, len(pool)), doc_group, related_docs, source)
        else:
            indices = rng.sample(pool, min(size, len(pool)))
        queries, positives, used = [], [], []
        for index in indices:
            query, positive, kind = self.make_pair(rng, index, rng.choice(list(kinds)))
            queries.append(query)
            positives.append(positive)
            used.append(kind)
        return queries, positives, used

    def _document_groups(self, rng: random.Random, pool: Sequence[int], size: int, group: int, related: int = 0,
                         source: str = "") -> list[int]:
        """``size`` row indices drawn a document at a time: a random row of ``pool``, then up to ``group`` passages
        of its document (rows of one document share a source, so they are all in a one-source pool), then the
        same for ``related`` documents lexically close to that row (``source``: the pool's, "" for every row)."""
        chosen: list[int] = []
        drawn_docs: set[str] = set()
        while len(chosen) < size:
            seed = rng.choice(pool)
            if self.rows[seed].doc in drawn_docs:
                continue
            docs = [(self.rows[seed].doc, None)]
            for _ in range(related):
                hit = self._related_doc(seed, source, drawn_docs | {d for d, _ in docs})
                if hit is not None:
                    docs.append((self.rows[hit].doc, hit))
            for doc, hit in docs:
                if len(chosen) >= size:
                    break
                drawn_docs.add(doc)
                siblings = [i for i in self.by_doc[doc] if i != hit]
                take = min(group, len(siblings) + (hit is not None), size - len(chosen))
                chosen.extend(([hit] if hit is not None else []) + rng.sample(siblings, take - (hit is not None)))
        return chosen

    def _related_doc(self, seed: int, source: str, exclude: set[str]) -> int | None:
        """The row of another document that BM25 ranks highest for row ``seed``'s text, among rows of ``source``
        (all rows for ""), skipping documents in ``exclude`` and likely duplicates (word overlap over
        ``RELATED_MAX_OVERLAP``): a hard negative for every passage of the seed's document. None if there is none."""
        pool: Sequence[int] = self.by_source[source] if source else range(len(self.rows))
        if source not in self._bm25:
            self._bm25[source] = BM25Index([self.rows[i].text for i in pool])
        words = set(tokenize(self.rows[seed].text))
        for hit, _ in self._bm25[source].search(self.rows[seed].text, RELATED_CANDIDATES):
            row = pool[hit]
            other = set(tokenize(self.rows[row].text))
            if self.rows[row].doc in exclude or len(words & other) > RELATED_MAX_OVERLAP * max(1, min(len(words), len(other))):
                continue
            return row
        return None

    def make_pair(self, rng: random.Random, index: int, kind: str) -> tuple[list[int], list[int], str]:
        """One positive pair of token rows (special tokens appended) for row ``index``.

        Kinds: ``heading`` (title/heading vs passage), ``ict`` (a sentence vs the rest), ``neighbour`` (the passage
        vs the next or previous one of its document), ``crop`` (two independent word spans of the passage),
        ``dropout`` (two copies with random tokens dropped), ``question`` (one of the row's generated questions vs
        the passage). A row that cannot make its kind (a one-passage document, no heading, one sentence, no
        questions) falls back to crop, ICT or dropout.
        """
        row = self.rows[index]
        if kind == "question":
            if row.questions:
                return (self.encode(rng.choice(row.questions), 64) + self.special_ids,
                        self.encode(row.text) + self.special_ids, kind)
            kind = "ict"
        if kind == "neighbour":
            siblings = self.by_doc[row.doc]
            if len(siblings) >= 2:
                at = self.doc_position[index]
                step = 1 if at == 0 or (at + 1 < len(siblings) and rng.random() < 0.5) else -1
                other = self.rows[siblings[at + step]]
                return self.encode(row.text) + self.special_ids, self.encode(other.text) + self.special_ids, kind
            kind = "crop"
        if kind == "crop":
            words = row.text.split()
            if len(words) >= 8:
                return self._crop(rng, words) + self.special_ids, self._crop(rng, words) + self.special_ids, kind
            kind = "dropout"
        if kind == "heading":
            heading = row.heading if row.heading and row.heading != row.title else row.title
            if len(heading.split()) >= 2 or (heading and row.heading and row.heading != row.title):
                query = f"{row.title}: {heading}" if heading != row.title and row.title else heading
                return self.encode(query, 64) + self.special_ids, self.encode(row.text) + self.special_ids, kind
            kind = "ict"
        if kind == "ict":
            sentences = split_sentences(row.text)
            if len(sentences) >= 2:
                pick = rng.randrange(len(sentences))
                rest = sentences if rng.random() < self.ict_keep_prob else sentences[:pick] + sentences[pick + 1:]
                return (self.encode(sentences[pick], 64) + self.special_ids,
                        self.encode(" ".join(rest)) + self.special_ids, kind)
            kind = "dropout"
        ids = self.encode(row.text)
        return self._drop(rng, ids) + self.special_ids, self._drop(rng, ids) + self.special_ids, "dropout"

    def _crop(self, rng: random.Random, words: list[str]) -> list[int]:
        """A random contiguous span of ``crop_share`` of the words (Contriever's independent cropping)."""
        length = max(4, round(rng.uniform(*self.crop_share) * len(words)))
        start = rng.randint(0, len(words) - length)
        return self.encode(" ".join(words[start:start + length]))

    def _drop(self, rng: random.Random, ids: list[int]) -> list[int]:
        bos, text = ids[: len(self.bos_ids)], ids[len(self.bos_ids):]
        kept = [t for t in text if rng.random() >= self.token_dropout]
        return bos + (kept or text[:1])
