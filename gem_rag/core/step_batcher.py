"""Continuous batching of decode steps: the next tokens of every open generation go through the model in one batch.

Decoding a 135M model on a CPU is bound by reading the weights (and, in eager PyTorch, by the per-layer overhead),
once per forward pass, so several streams stepping together cost little more than one. Each generation calls
:meth:`StepBatcher.step` with its step's payload; the first caller becomes the leader, waits until every open
generation has handed in its step (or ``window_s`` has passed: a slow consumer does not hold the others up), runs
all of them in one call of the backend's ``run`` and hands each its result. Without concurrency it runs at once:
one open generation never waits.

The backends: llama.cpp decodes every step's entries in one ``llama_decode`` (``LlamaCppGemModel``); torch stacks
the one-row KV caches of the steps, left-padded to the longest, into one forward pass (``TorchDecoding``).

Example:
    >>> batcher = StepBatcher(lambda payloads: [decode(p) for p in payloads])
    >>> batcher.opened(); result = batcher.step(payload); batcher.closed()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class _Ticket:
    def __init__(self, payload: Any):
        self.payload = payload
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False


class StepBatcher:
    """Groups the decode steps of concurrent generations (see the module docstring). ``run(payloads)`` returns one
    result per payload, in order; ``batches`` and ``steps`` count its calls and the steps they carried (batching
    is working when steps > batches)."""

    def __init__(self, run: Callable[[Sequence[Any]], Sequence[Any]], window_s: float = 0.003):
        self.run, self.window_s = run, window_s
        self._state = threading.Condition()
        self._pending: list[_Ticket] = []
        self._open = 0
        self._leading = False  # held from collecting a batch to handing out its results: steps arriving meanwhile wait
        self.batches = 0
        self.steps = 0

    def opened(self) -> None:
        with self._state:
            self._open += 1

    def closed(self) -> None:
        with self._state:
            self._open -= 1
            self._state.notify_all()  # a leader waiting for this generation's step stops waiting

    def step(self, payload: Any) -> Any:
        """One step of one generation -> its result (what ``run`` returned for it)."""
        ticket = _Ticket(payload)
        with self._state:
            self._pending.append(ticket)
            self._state.notify_all()
            while not ticket.finished and self._leading:  # another batch is being collected or run
                self._state.wait()
            lead = not ticket.finished
            if lead:
                self._leading = True
        if lead:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _lead(self) -> None:
        """Collect every pending step (waiting up to ``window_s`` for the open generations), run them in one call,
        hand out the results, give up the lead."""
        deadline = time.monotonic() + self.window_s
        with self._state:
            while len(self._pending) < self._open and time.monotonic() < deadline:
                self._state.wait(max(0.0, deadline - time.monotonic()))
            tickets, self._pending = self._pending, []
        try:
            results = self.run([ticket.payload for ticket in tickets])
            for ticket, result in zip(tickets, results, strict=True):
                ticket.result = result
        except BaseException as err:  # every generation in the batch learns of the failure
            for ticket in tickets:
                ticket.error = err
        with self._state:
            self.batches, self.steps = self.batches + 1, self.steps + len(tickets)
            for ticket in tickets:
                ticket.finished = True
            self._leading = False
            self._state.notify_all()  # the finished steps return; one waiting step leads the next batch
