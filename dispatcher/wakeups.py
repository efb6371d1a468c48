"""The bells the dispatcher rings after a transaction, and who answers them.

The engine, the reminders, the sender and the scheduler need each other in a ring: the sender
asks the engine to replace an unreachable donor and to draw a board, the scheduler drives the
engine's ticks, and the engine must wake the sender (messages written) and the scheduler (a
request's next moment). None of them holds another to ring it. Each takes one :class:`Wakeups`
in its constructor; the assembly (``bot.runtime``) says, in one place, who answers which bell.
A bell nobody answers rings silently: a test or a bench wires only what it watches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

RequestDue = Callable[[int, datetime, "datetime | None"], None]


class Wakeups:
    def __init__(self) -> None:
        self._outbox_written: list[Callable[[], None]] = []
        self._requests_changed: list[Callable[[], None]] = []
        self._request_due: list[RequestDue] = []
        self._reminders_due: list[Callable[[datetime | None], None]] = []
        self._reminders_now: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ ringing
    def outbox_written(self) -> None:
        """Messages were committed to the outbox: the sender should look."""
        for answer in self._outbox_written:
            answer()

    def requests_changed(self) -> None:
        """A request moved (an answer, a wave, a desk action): a staff nudge may come forward."""
        for answer in self._requests_changed:
            answer()

    def request_due(self, request_id: int, when: datetime, deadline: datetime | None = None) -> None:
        """The request's next expiry or wave is at ``when`` (its deadline, once known, at ``deadline``)."""
        for answer in self._request_due:
            answer(request_id, when, deadline)

    def reminders_due(self, when: datetime | None) -> None:
        """The next reminder is due at ``when`` (None: nothing scheduled)."""
        for answer in self._reminders_due:
            answer(when)

    def reminders_now(self) -> None:
        """Run the reminders again as soon as the current run (if any) ends."""
        for answer in self._reminders_now:
            answer()

    # ---------------------------------------------------------------- answering
    def on_outbox_written(self, answer: Callable[[], None]) -> None:
        self._outbox_written.append(answer)

    def on_requests_changed(self, answer: Callable[[], None]) -> None:
        self._requests_changed.append(answer)

    def on_request_due(self, answer: RequestDue) -> None:
        self._request_due.append(answer)

    def on_reminders_due(self, answer: Callable[[datetime | None], None]) -> None:
        self._reminders_due.append(answer)

    def on_reminders_now(self, answer: Callable[[], None]) -> None:
        self._reminders_now.append(answer)
