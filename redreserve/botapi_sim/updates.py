"""The update queue behind ``getUpdates`` long polling.

Telegram semantics reproduced here, because polling loops depend on them:

* Updates stay queued until *confirmed*: a later ``getUpdates`` with
  ``offset`` greater than their ``update_id``. Delivering is not confirming, so
  a bot that crashes mid-batch gets the same updates again.
* ``allowed_updates`` is sticky: it applies to later calls that omit it, and
  updates of other types are discarded, not kept for later. aiogram derives
  the list from the registered handlers, so a missing ``callback_query``
  handler means button presses silently vanish, just as in production.
* A new ``getUpdates`` terminates one still waiting with 409 Conflict (two bot
  instances polling the same token).
* Updates are returned in ``update_id`` order, which is what lets a client
  confirm a whole batch with ``offset = last_id + 1``.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import GET_UPDATES_CONFLICT, conflict

# Update types Telegram leaves out unless explicitly requested.
_NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class Pulse:
    """Wakes every current waiter when something changed; replaces polling with sleeps.

    Waiters re-check their own condition after each wake-up. Checking the
    condition and calling :meth:`wait` happen without an ``await`` in between,
    so no notification can be missed on a single event loop.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), max(timeout, 0))
        except TimeoutError:
            return False
        return True


def update_type(update: dict[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)


@dataclass(order=True)
class _Queued:
    update_id: int
    update: dict[str, Any] = field(compare=False)
    # A re-pushed duplicate must be delivered once even though the client's
    # offset already confirmed its id, as when Telegram re-sends an update.
    redeliver: bool = field(default=False, compare=False)
    delivered: bool = field(default=False, compare=False)


class UpdateQueue:
    def __init__(self, pulse: Pulse | None = None) -> None:
        self._queue: list[_Queued] = []
        self._next_update_id = 1
        self.allowed_updates: list[str] | None = None
        self.dropped: list[dict[str, Any]] = []
        self.pulse = pulse or Pulse()
        self._poll_generation = 0
        self.polls_waiting = 0
        self.closed = False

    # --- producer side (the simulated users) --------------------------------

    def push(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        bisect.insort(self._queue, _Queued(update["update_id"], update, redeliver=redeliver))
        self.pulse.notify()
        return update

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot, in delivery order."""
        return [q.update for q in self._queue]

    @property
    def undelivered(self) -> int:
        return sum(not q.delivered for q in self._queue)

    def undeliver(self, update_id: int) -> None:
        """A webhook post failed: the update goes out again (Telegram retries until the bot answers 2xx)."""
        for queued in self._queue:
            if queued.update_id == update_id:
                queued.delivered = False
                queued.redeliver = True

    def drop_pending(self) -> None:
        self._queue.clear()

    def close(self) -> None:
        """Release every waiting long poll (with an empty result) and refuse to wait again."""
        self.closed = True
        self.pulse.notify()

    # --- consumer side (getUpdates) -------------------------------------------

    def confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset < 0:
            # "-N": forget everything but the last N updates.
            del self._queue[: max(len(self._queue) + offset, 0)]
            return
        self._queue = [
            q for q in self._queue
            if q.update_id >= offset or (q.redeliver and not q.delivered)
        ]

    def take(self, limit: int) -> list[dict[str, Any]]:
        allowed = set(self.allowed_updates or ()) or None
        batch: list[dict[str, Any]] = []
        kept: list[_Queued] = []
        for queued in self._queue:
            kind = update_type(queued.update)
            wanted = kind in allowed if allowed else kind not in _NOT_DELIVERED_BY_DEFAULT
            if not wanted:
                self.dropped.append(queued.update)
                continue
            kept.append(queued)
            if len(batch) < limit:
                queued.delivered = True
                queued.redeliver = False
                batch.append(queued.update)
        self._queue = kept
        return batch

    async def get_updates(
        self,
        *,
        offset: int | None,
        limit: int,
        timeout: float,
        allowed_updates: list[str] | None,
        client_alive: Callable[[], bool],
    ) -> list[dict[str, Any]]:
        """Answer one getUpdates call, holding it up to ``timeout`` seconds for new updates."""
        self._poll_generation += 1
        generation = self._poll_generation
        self.pulse.notify()  # a long poll still waiting is now superseded
        self.confirm(offset)
        if allowed_updates is not None:
            self.allowed_updates = allowed_updates
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise conflict(GET_UPDATES_CONFLICT)
            if not client_alive():
                # Never hand updates to a closed connection: nobody would
                # process them and the redelivery flag would be spent.
                return []
            batch = self.take(limit)
            if batch or self.closed:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            self.polls_waiting += 1
            try:
                await self.pulse.wait(remaining)
            finally:
                self.polls_waiting -= 1
