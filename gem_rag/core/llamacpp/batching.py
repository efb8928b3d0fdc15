"""Continuous batching of decode steps: the next tokens of every open generation go to llama.cpp in one batch.

Decoding a 135M model on a CPU is bound by reading the weights, once per batch, so eight streams stepping
together cost little more than one. Each generation (its own KV-cache sequence) calls :meth:`StepBatcher.decode`
for its step; the first caller becomes the leader, waits until every open generation has handed in its step
(or ``window_s`` has passed: a slow consumer does not hold the others up), decodes all of them in one
``llama_decode`` and hands each its logits. Without concurrency it decodes at once: one open generation never
waits.

Example:
    >>> batcher = StepBatcher(context, lock)
    >>> batcher.opened(); logits = batcher.decode([Entry(position=p, seq=s, token=t, output=True)]); batcher.closed()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from gem_rag.core.llamacpp.context import Entry, LlamaContext


class _Ticket:
    def __init__(self, entries: Sequence[Entry]):
        self.entries = list(entries)
        self.logits: np.ndarray | None = None
        self.error: BaseException | None = None
        self.finished = False


class StepBatcher:
    """Groups the decode steps of concurrent generations (see the module docstring)."""

    def __init__(self, context: LlamaContext, lock: threading.RLock, window_s: float = 0.003):
        self.context, self.lock, self.window_s = context, lock, window_s
        self._state = threading.Condition()
        self._pending: list[_Ticket] = []
        self._open = 0
        self._leading = False  # held from collecting a batch to handing out its logits: steps arriving meanwhile wait
        self.batches = 0  # decode calls made, and the steps they carried (batching is working when steps > batches)
        self.steps = 0

    def opened(self) -> None:
        with self._state:
            self._open += 1

    def closed(self) -> None:
        with self._state:
            self._open -= 1
            self._state.notify_all()  # a leader waiting for this generation's step stops waiting

    def decode(self, entries: Sequence[Entry]) -> np.ndarray:
        """One step of one generation (one entry per row it decodes) -> its logits (rows, V)."""
        ticket = _Ticket(entries)
        with self._state:
            self._pending.append(ticket)
            self._state.notify_all()
            while not ticket.finished and self._leading:  # another batch is being collected or decoded
                self._state.wait()
            lead = not ticket.finished
            if lead:
                self._leading = True
        if lead:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.logits is not None
        return ticket.logits

    def _lead(self) -> None:
        """Collect every pending step (waiting up to ``window_s`` for the open generations), decode them in one
        call, hand out the logits, give up the lead."""
        deadline = time.monotonic() + self.window_s
        with self._state:
            while len(self._pending) < self._open and time.monotonic() < deadline:
                self._state.wait(max(0.0, deadline - time.monotonic()))
            tickets, self._pending = self._pending, []
        try:
            with self.lock:
                logits = self.context.decode([entry for ticket in tickets for entry in ticket.entries])
            start = 0
            for ticket in tickets:
                ticket.logits = logits[start: start + len(ticket.entries)]
                start += len(ticket.entries)
        except BaseException as err:  # every generation in the batch learns of the failure
            for ticket in tickets:
                ticket.error = err
        with self._state:
            self.batches, self.steps = self.batches + 1, self.steps + len(tickets)
            for ticket in tickets:
                ticket.finished = True
            self._leading = False
            self._state.notify_all()  # the finished steps return; one waiting step leads the next batch
