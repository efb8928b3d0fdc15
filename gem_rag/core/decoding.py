"""Generation from a prompt made of token pieces, the leading ones possibly carrying cached KV states (the
prompt's fixed start, the first chunk: document KV reuse, see gem_rag.rag.kv); the backend's decoding state
(gem_rag.core.decode_state for torch) turns them into ordinary causal decoding of the concatenated ids.

A :class:`CopySpanConstraint` can restrict the completion to a contiguous span of the context's tokens
(extractive answers: every answer is text the documents contain) or to one of a few fixed replies. With
``beams > 1`` the completion is the most probable one found by beam search (sum of token log-probabilities,
ended by EOS or a stop sequence, no length normalisation; the hypotheses share one prompt cache through a
tree attention mask); it is yielded whole when the search ends.

Example:
    >>> run = PieceGeneration(model, [Piece(start_ids, start_state), Piece(chunk_ids, chunk_state), Piece(tail_ids)],
    ...                       check_sampling(32, 0.0, 1.0, ["\\n"], None))
    >>> text = "".join(run); run.result.completion_tokens, run.first_token_s
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from gem_rag.core.generation import (GenerationResult, Piece, SamplingParams, TokenStream, decode_steps,
                                    find_stop, stream_decoded)

__all__ = ["CopySpanConstraint", "Piece", "PieceGeneration"]


class CopySpanConstraint:
    """Allows only completions that copy a contiguous run of tokens from one of ``sources`` (starting
    anywhere) or a prefix of one of ``replies`` (starting at its first token), then an end token.

    A copied span may also start with its first word written without the leading space ("Paris" for
    " Paris", however that tokenizes): answers start a turn, where the model writes no space. ``end_ids``
    (EOS) are allowed once a whole token of the source has been copied.

    Example:
        >>> constraint = CopySpanConstraint(tokenizer, [chunk_ids], [abstain_ids], model.eos_token_ids)
        >>> token = int(constraint.mask(logits).argmax()); constraint.advance(token)
    """

    def __init__(self, tokenizer, sources: list[list[int]], replies: list[list[int]], end_ids: set[int]):
        self.sequences = [list(s) for s in sources] + [list(r) for r in replies]
        self.n_sources = len(sources)
        self.end_ids = set(end_ids)
        unspaced = _unspaced_tokens(tokenizer, {t for seq in sources for t in seq})
        # (sequence, position, pending): `pending` tokens come next, then sequence[position:]
        self.pointers: set[tuple[int, int, tuple[int, ...]]] = set()
        for n, seq in enumerate(sources):
            for i, token in enumerate(seq):
                self.pointers.add((n, i, ()))
                if token in unspaced:
                    self.pointers.add((n, i + 1, unspaced[token]))
        self.pointers |= {(len(sources) + n, 0, ()) for n, r in enumerate(replies) if r}
        self.steps = 0

    def allowed(self) -> list[int]:
        """Token ids allowed next."""
        ids = {pending[0] if pending else self.sequences[n][i] for n, i, pending in self.pointers
               if pending or i < len(self.sequences[n])}
        if self.steps and any(not pending for _, _, pending in self.pointers):
            ids |= self.end_ids
        return sorted(ids)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (1, V) with every disallowed token at -inf (also what calling the constraint does: it is a
        logits processor for :func:`~gem_rag.core.generation.decode_steps`)."""
        allowed = torch.tensor(self.allowed(), dtype=torch.long, device=logits.device)
        masked = torch.full_like(logits, float("-inf"))
        masked[:, allowed] = logits[:, allowed]
        return masked

    __call__ = mask

    def reply_tokens(self) -> set[int]:
        """The tokens that continue one of the fixed replies (empty once no reply fits the tokens so far)."""
        return {self.sequences[n][i] for n, i, _ in self.pointers
                if n >= self.n_sources and i < len(self.sequences[n])}

    @property
    def can_reply(self) -> bool:
        """True while the tokens so far are the start of a fixed reply."""
        return any(n >= self.n_sources for n, _, _ in self.pointers)

    def fork(self) -> CopySpanConstraint:
        """An independent copy (one per beam)."""
        twin = copy.copy(self)
        twin.pointers = set(self.pointers)
        return twin

    def advance(self, token: int) -> None:
        """Record the token just chosen."""
        moved = set()
        for n, i, pending in self.pointers:
            if pending:
                if pending[0] == token:
                    moved.add((n, i, pending[1:]))
            elif i < len(self.sequences[n]) and self.sequences[n][i] == token:
                moved.add((n, i + 1, ()))
        self.pointers = moved
        self.steps += 1


def _unspaced_tokens(tokenizer, ids: set[int]) -> dict[int, tuple[int, ...]]:
    """token id -> the tokens of the same text without its leading space (for tokens that have one)."""
    out = {}
    for token_id in ids:
        text = tokenizer.decode([token_id])
        if text.startswith(" ") and len(text) > 1:
            bare = tuple(tokenizer.encode(text[1:], add_special_tokens=False))
            if bare:
                out[token_id] = bare
    return out


class PieceGeneration(TokenStream):
    """The streamed completion of ``pieces`` (a TokenStream: text pieces, ``close``); ``result``, ``first_token_s``
    (seconds from the first ``next()`` to the first generated token) and ``logprob`` (the completion's summed
    token log-probabilities, stop token included) are set as it runs.

    ``beams > 1``: beam search (greedy scoring only; the sampling settings other than ``max_new_tokens`` and
    ``stop`` do not apply), the text comes out in one piece at the end: the most probable completion that the
    first of the ``accept`` checks any completion passes accepts (the most probable one when none passes;
    ``passed_checks`` then reads False)."""

    def __init__(self, model, pieces: list[Piece], params: SamplingParams, stop_pattern: re.Pattern | None = None,
                 constraint: CopySpanConstraint | None = None, beams: int = 1,
                 accept: Sequence[Callable[[str], bool]] = ()):
        if not pieces or not pieces[-1].ids:
            raise ValueError("the prompt's last piece must hold tokens")
        if isinstance(beams, bool) or not isinstance(beams, int) or beams < 1:
            raise ValueError(f"beams must be a positive int, got {beams!r}")
        if beams > 1 and not model.supports_tree_decoding:
            raise ValueError(f"beam search needs the torch backend (this model runs on {model.backend}); use beams=1")
        self.beams = beams
        self.accept = list(accept)
        self.model = model
        self.params = params
        self.stop_pattern = stop_pattern  # also stop where this matches (text kept up to the match's end)
        self.constraint = constraint
        self.prompt_tokens = sum(len(p.ids) for p in pieces)
        self.first_token_s: float | None = None
        self.logprob = 0.0
        self.passed_checks = True  # False when every beam's completion failed every ``accept`` check
        self._pieces_in = pieces
        super().__init__(self._run())

    def _tokens(self) -> Iterator[int]:
        pieces, self._pieces_in = self._pieces_in, []  # the states go into the cache
        for next_ids, logits in decode_steps(self.model, [pieces], self.params, self.constraint):
            token = int(next_ids[0])
            self.logprob += torch.log_softmax(logits[0].float(), dim=-1)[token].item()
            yield token

    def _beam_search(self) -> list[tuple[float, list[int]]]:
        """(summed log-probability, tokens) of completions (EOS not included), most probable first, by beam
        search over ``self.beams`` hypotheses.

        The hypotheses share one copy of the prompt's KV cache: each step appends one token per hypothesis
        to the same sequence, and a tree mask lets every token see the prompt and its own hypothesis's
        earlier tokens only (as in tree-based speculative decoding). Memory stays that of one sequence
        instead of one prompt copy per beam.
        """
        model, params, width = self.model, self.params, self.beams
        stop_ids = model.eos_token_ids
        decoding = model.start_decoding([self._pieces_in])
        logits, prompt_length = decoding.logits, decoding.prompt_length
        self._pieces_in = []
        cache_length = prompt_length  # entries in the cache: the prompt, then every hypothesis token appended
        # open hypotheses: (sum of log-probabilities, tokens, their cache entries, constraint state)
        beams: list[tuple[float, list[int], list[int], CopySpanConstraint | None]] = [(0.0, [], [], self.constraint)]
        finished: list[tuple[float, list[int]]] = []
        for _ in range(min(params.max_new_tokens, model.context_window - prompt_length)):
            candidates = []  # (score, beam index, token)
            for b, (score, _tokens, _, constraint) in enumerate(beams):
                # the model's own log-probabilities, masked but not renormalised: a forced copy of a token the
                # model would not write still costs what it costs
                logprobs = torch.log_softmax(logits[b:b + 1].float(), dim=-1)
                logprobs = (logprobs if constraint is None else constraint.mask(logprobs))[0]  # (V,)
                tops = set(logprobs.topk(width).indices.tolist())
                if constraint is not None:
                    tops |= constraint.reply_tokens()  # a reply is always followed to its end, see below
                candidates += [(score + logprobs[t].item(), b, t) for t in tops if logprobs[t] > float("-inf")]
            candidates.sort(key=lambda c: -c[0])
            kept: list[tuple[float, int, int, CopySpanConstraint | None]] = []  # (score, beam index, token, constraint)
            for score, b, token in candidates:
                if token in stop_ids or find_stop(model.tokenizer.decode([token]), params.stop) >= 0:
                    finished.append((score, beams[b][1] + ([] if token in stop_ids else [token])))
                    continue
                parent = beams[b][3]
                constraint = parent.fork() if parent is not None else None
                if constraint is not None:
                    constraint.advance(token)
                # a fixed reply (the abstention phrase) stays in the search until it ends, so it is always
                # compared with the best span at its full probability
                if len(kept) < width or (constraint is not None and constraint.can_reply):
                    kept.append((score, b, token, constraint))
            # log-probabilities only fall: once a finished hypothesis beats every open one, it is the best
            if not kept or (finished and max(f[0] for f in finished) >= max(k[0] for k in kept)):
                break
            n = len(kept)
            mask = _tree_mask([beams[b][2] for _, b, _, _ in kept], prompt_length, cache_length, model.dtype)
            logits = decoding.advance_tree([k[2] for k in kept], [prompt_length + len(beams[k[1]][1]) for k in kept],
                                           mask)  # (n, V)
            beams = [(score, beams[b][1] + [token], beams[b][2] + [cache_length + j], constraint)
                     for j, (score, b, token, constraint) in enumerate(kept)]
            cache_length += n
        else:
            finished += [(score, tokens) for score, tokens, _, _ in beams]  # out of budget: open hypotheses count
        return sorted(finished, key=lambda f: -f[0]) or [(0.0, [])]

    def _run(self) -> Iterator[str]:
        if self.beams > 1:
            yield from self._run_beams()
            return
        start = time.perf_counter()

        def timed_tokens() -> Iterator[int]:
            for token in self._tokens():
                if self.first_token_s is None:
                    self.first_token_s = time.perf_counter() - start
                yield token

        text, n_generated, reason = yield from stream_decoded(timed_tokens(), self.model.tokenizer,
                                                              self.model.eos_token_ids, self.params.stop,
                                                              self.stop_pattern)
        self.result = GenerationResult(text, self.prompt_tokens, n_generated, reason)

    def _run_beams(self) -> Iterator[str]:
        start = time.perf_counter()
        ranked = self._beam_search()
        texts = [self.model.tokenizer.decode(tokens, skip_special_tokens=True) for _, tokens in ranked]
        passed = next((i for check in self.accept for i, text in enumerate(texts) if check(text)), None)
        self.passed_checks = passed is not None or not self.accept
        self.logprob, tokens = ranked[passed or 0]
        self.first_token_s = time.perf_counter() - start
        if len(tokens) < self.params.max_new_tokens:
            tokens = tokens + [min(self.model.eos_token_ids)]  # the search ended it (EOS or a stop sequence)
        text, n_generated, reason = yield from stream_decoded(tokens, self.model.tokenizer, self.model.eos_token_ids,
                                                              self.params.stop, self.stop_pattern)
        self.result = GenerationResult(text, self.prompt_tokens, n_generated, reason)


def _tree_mask(own_entries: list[list[int]], prompt_length: int, cache_length: int, dtype: torch.dtype) -> torch.Tensor:
    """(n, cache_length + n) float additive mask for one beam step of n hypotheses: hypothesis j's new token
    sees the prompt, its own earlier tokens (cache entries ``own_entries[j]``) and itself."""
    n = len(own_entries)
    allowed = torch.zeros((n, cache_length + n), dtype=torch.bool)
    allowed[:, :prompt_length] = True
    for j, entries in enumerate(own_entries):
        allowed[j, entries] = True
        allowed[j, cache_length + j] = True
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
