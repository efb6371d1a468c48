"""The one outbound path: drain the outbox within Telegram's limits (DOMAIN.md §8).

Rows are written by the dispatcher (dispatcher.outbox) in the transaction that causes
them; this loop sends them. Limits (configurable; Bots FAQ): 30 messages/s overall,
1/s per chat, 20/min per group, each enforced over an exact sliding window that
does not depend on network latency (see RateLimiter). A 429 pauses *all* sending for its
``retry_after``; a 403 marks the user blocked and the donor unreachable on every open
request, and the dispatcher replaces her; network errors back off exponentially, a
bounded number of times.

Delivery guarantee, honestly: a row is marked ``sending`` before the call and ``sent``
with its Telegram message_id in one write after it. If the process dies between
Telegram accepting a message and that write, the row is still ``sending`` and is sent
again at restart: at-least-once, with a duplicate window of one round trip per
message in flight. Nothing is ever lost, and nothing already marked sent is resent.

Several instances on one PostgreSQL (issue 14): a row is *claimed*, not grabbed. The claim
names this instance and a lease (``[cluster] lease_s``), renewed while the row is in flight;
rows are picked with ``FOR UPDATE SKIP LOCKED`` under a transaction-scoped advisory lock, so two
instances never claim one row, nor two rows of one chat (SKIP LOCKED locks rows, not chats; the
lock makes the claims, a few milliseconds each, take turns). A row whose lease ran out belongs to
a dead instance and is taken over. At start an instance puts back only its own rows and those
whose lease ran out, never a live instance's. The per-token limits are shared through a
:class:`dispatcher.send_budget.SendBudget`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from sqlalchemy import and_, exists, or_, text, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    BloodRequest,
    ContactState,
    OutboxMessage,
    OutboxState,
    RequestContact,
)
from dispatcher.messages import InvalidParams, Message, load
from dispatcher.metrics import NoMetrics, SendMetrics
from dispatcher.outbox import scrub_delivered, scrubbed
from models.tables import Channel, Donor, DonorChannel, TelegramUser
from ground.clock import Clock, system_clock
from ground.config import ClusterConfig
from ground.logs import log_context

if TYPE_CHECKING:
    from dispatcher.send_budget import SendBudget

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the outbox claim: any constant no other lock in this database uses.
CLAIM_LOCK = 0x52_52_0B_0C  # "RR", outbox claim


class RetryAfter(Exception):
    """Telegram's 429: wait ``seconds`` before sending anything."""

    def __init__(self, seconds: float):
        super().__init__(f"retry after {seconds} s")
        self.seconds = float(seconds)


class Unreachable(Exception):
    """403: the user blocked the bot or never started it (DOMAIN.md §8)."""


class TransientError(Exception):
    """A network error or a 5xx: worth retrying."""


class PermanentError(Exception):
    """A 400 that retrying will not fix."""


@dataclass(frozen=True)
class Outgoing:
    id: int
    key: str
    chat_id: int
    kind: str
    params: Message  # one of dispatcher.messages' kinds
    locale: str | None
    edit_message_id: int | None  # set when this message edits an earlier one (a stand-down edits the call)
    address: str | None = None  # off Telegram: where it goes (an E.164 phone for SMS)
    contact_id: int | None = None  # a call's ask: what an answer link names (bot.answer_page)


@dataclass(frozen=True)
class DeliveryResult:
    message_id: int | None


class Transport(Protocol):
    async def deliver(self, message: Outgoing) -> DeliveryResult: ...


class _Slot:
    """One send in a window: it counts from the moment it started until ``window`` after it finished."""

    __slots__ = ("t", "done")

    def __init__(self, t: float):
        self.t = t
        self.done = False


FIRST_RANK = -1  # a reply to a person, before any outbox rank (each kind's priority, dispatcher.messages)


class RateLimiter:
    """Sliding windows: global N/s, per private chat M/s, per group G/min; plus a global 429 pause.

    Exact without trusting the network: a send occupies its windows from the moment it
    is started until one window after its answer came back. Telegram received it at
    some moment in between, so the next send that the window allows is started
    at least one window after that moment, whatever the latency. The price is one
    round trip per window (≈ 1 % against the local simulator).
    """

    def __init__(self, global_per_second: float = 30, per_chat_per_second: float = 1, group_per_minute: float = 20,
                 safety_margin_s: float = 0.005, *, now: Callable[[], float] = time.monotonic):
        self.global_n = max(int(global_per_second), 1)
        self.global_window = self.global_n / global_per_second + safety_margin_s
        self.chat_n = max(int(per_chat_per_second), 1)
        self.chat_window = self.chat_n / per_chat_per_second + safety_margin_s
        self.group_n = max(int(group_per_minute), 1)
        self.group_window = 60.0 * self.group_n / group_per_minute + safety_margin_s
        self.now = now
        self.paused_until = 0.0
        self._next_start = float("-inf")
        self._global: collections.deque[_Slot] = collections.deque()
        self._chats: dict[int, collections.deque[_Slot]] = {}
        self._waiters: dict[object, tuple[int, int]] = {}  # each acquire under way -> (rank, chat)
        self._ranks: collections.Counter[int] = collections.Counter()  # how many wait at each rank

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.now() + seconds)

    @staticmethod
    def _wait(q: collections.deque[_Slot] | None, n: int, window: float, t: float) -> float:
        if not q:
            return 0.0
        while q and q[0].done and q[0].t <= t - window:
            q.popleft()
        if len(q) < n:
            return 0.0
        oldest = q[len(q) - n]
        return oldest.t + window - t if oldest.done else 0.005  # still in flight: look again shortly

    def _chat_wait(self, chat_id: int, t: float) -> float:
        n, window = (self.group_n, self.group_window) if chat_id < 0 else (self.chat_n, self.chat_window)
        return self._wait(self._chats.get(chat_id), n, window, t)

    def wait_time(self, chat_id: int) -> float:
        t = self.now()
        # Even spacing instead of bursts: a burst of N queues at Telegram's end and each of its
        # round trips would lengthen the window (see the class docstring).
        spacing = self._next_start - t
        return max(self.paused_until - t, spacing, self._wait(self._global, self.global_n, self.global_window, t),
                   self._chat_wait(chat_id, t))

    def _outranked(self, me: object, rank: int) -> bool:
        """Someone of a better rank waits whose own chat allows a send now: the next turn is theirs."""
        if not any(r < rank for r in self._ranks):  # the usual case, cheaply: nobody ranks better
            return False
        t = self.now()
        return any(r < rank and self._chat_wait(c, t) <= 0 for w, (r, c) in self._waiters.items() if w is not me)

    async def acquire(self, chat_id: int, *, first: bool = False, rank: int = 5) -> _Slot:
        """Wait for a turn. The global budget goes to the best ``rank`` first, across chats, among those
        whose chat allows a send (1/s per chat still holds for everyone). ``first``: a reply to someone
        who just tapped or typed, ahead of everything (a board edit can wait a second; the presser should
        not); then the outbox's ranks (dispatcher.messages: board edits, then calls)."""
        me, rank = object(), FIRST_RANK if first else rank
        self._waiters[me] = (rank, chat_id)
        self._ranks[rank] += 1
        try:
            while (wait := self.wait_time(chat_id)) > 0 or self._outranked(me, rank):
                await asyncio.sleep(wait if wait > 0 else 0.005)
        finally:
            del self._waiters[me]
            self._ranks[rank] -= 1
            if not self._ranks[rank]:
                del self._ranks[rank]
        slot = _Slot(self.now())
        step = self.global_window / self.global_n
        # Keep to the ideal timeline, so that a late wake-up is made up by the next send.
        self._next_start = max(self._next_start, slot.t - step / 2) + step
        self._global.append(slot)
        self._chats.setdefault(chat_id, collections.deque()).append(slot)
        if len(self._chats) > 10_000:  # forget chats idle for a minute
            for k in [k for k, v in self._chats.items() if not v or (v[-1].done and v[-1].t < slot.t - 60)]:
                del self._chats[k]
        return slot

    def release(self, slot: _Slot) -> None:
        """The answer came back: the send now counts from this moment."""
        slot.t = self.now()
        slot.done = True


OnUnreachable = Callable[[list[int]], Awaitable[None]]
# A call this channel cannot deliver, written again for the donor's next channel (dispatcher.channels):
# (session, the failed row, now) -> the new row, or None when she has no other channel left.
Reroute = Callable[[Any, OutboxMessage, datetime], Awaitable[OutboxMessage | None]]
# A kind whose content is read when it is sent (the live board): (request_id, chat_id) -> the message, or None
# to drop it.
Prepare = Callable[[int, int], Awaitable[Message | None]]


class Sender:
    def __init__(self, sessionmaker, transport: Transport, send_cfg, *, clock: Clock = system_clock,
                 on_unreachable: OnUnreachable | None = None, limiter: SendBudget | None = None,
                 rng: random.Random | None = None, prepare: dict[str, Prepare] | None = None,
                 metrics: SendMetrics | None = None, instance_id: str | None = None, lease_s: float = 30.0,
                 channel: str = Channel.telegram.value, reroute: Reroute | None = None):
        self.sm = sessionmaker
        # One sender per channel, each with its transport and limits, draining only its channel's rows.
        self.channel = channel
        self.reroute = reroute
        # Who claims rows, and for how long without renewal ([cluster], ground.config.ClusterConfig).
        self.instance_id = instance_id or ClusterConfig().resolved_id()
        self.lease_s = lease_s
        self.takeovers = 0  # rows claimed from an instance whose lease ran out (it died mid-send)
        self.claims = 0  # claim transactions that claimed rows, and their time (the advisory lock is held
        self.claim_time_s = 0.0  # that long on PostgreSQL): the benches' figure
        self._renewer: asyncio.Task | None = None
        self.metrics = metrics or NoMetrics()
        self.prepare = prepare or {}
        self.transport = transport
        self.cfg = send_cfg
        self.clock = clock
        self.on_unreachable = on_unreachable
        self.limiter: SendBudget = limiter or RateLimiter(send_cfg.global_per_second, send_cfg.per_chat_per_second,
                                              send_cfg.group_per_minute, send_cfg.safety_margin_s)
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stop = False
        self._task: asyncio.Task | None = None
        self._inflight: set[int] = set()
        self._inflight_chats: dict[int, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._sem = asyncio.Semaphore(send_cfg.max_in_flight)
        self._db_lock = asyncio.Lock()  # result writes, one at a time (SQLite has one writer anyway)

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.recover()
        self._stop = False
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")

    async def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None

    def kick(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        """The loop is alive (the health check's question)."""
        return self._task is not None and not self._task.done()

    async def recover(self) -> int:
        """Rows a crash left ``sending`` go back to pending (the at-least-once window, see above).

        On PostgreSQL only this instance's own rows, rows whose lease ran out, and rows claimed by
        no one (written ``sending`` before leases existed): another live instance's are its own.
        SQLite has one instance (an OS file lock sees to it): every ``sending`` row is a crash's."""
        now = self.clock()
        async with self.sm() as s, s.begin():
            q = update(OutboxMessage).where(col(OutboxMessage.state) == OutboxState.sending.value,
                                            col(OutboxMessage.channel) == self.channel)
            if (await s.connection()).dialect.name == "postgresql":
                q = q.where(or_(col(OutboxMessage.claimed_by) == self.instance_id,
                                col(OutboxMessage.claimed_by).is_(None),
                                col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) < now))
            res = await s.exec(q.values(state=OutboxState.pending.value, claimed_by=None, lease_until=None))
            await scrub_delivered(s)
            return res.rowcount or 0

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Send everything due now, and wait for it (tests, benches, the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = await self._dispatch_batch()
            if not started and not self._tasks:
                return
            if self._tasks:
                await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        raise TimeoutError("outbox not drained")

    async def _loop(self) -> None:
        while not self._stop:
            try:
                started = await self._dispatch_batch()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("outbox: batch failed")
                started = 0
            if started:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.cfg.poll_interval_s)
            except asyncio.TimeoutError:
                pass

    # -------------------------------------------------------------- sending
    async def _dispatch_batch(self) -> int:
        free = self.cfg.max_in_flight - len(self._tasks)
        if free <= 0:
            if self._tasks:
                await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            return 1
        now = self.clock()
        lease_until = now + timedelta(seconds=self.lease_s)
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                t0 = time.monotonic()
                if (await s.connection()).dialect.name == "postgresql":
                    # Claims take turns across instances (see the module docstring): without it two
                    # instances could each claim a row of one chat, both seeing no other in flight.
                    # Held until this transaction commits, a few milliseconds (BENCHMARKS.md).
                    await s.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=CLAIM_LOCK))
                other = aliased(OutboxMessage)
                sending = OutboxState.sending.value
                q = (select(OutboxMessage).where(
                        col(OutboxMessage.channel) == self.channel,
                        or_(and_(col(OutboxMessage.state) == OutboxState.pending.value,
                                 col(OutboxMessage.next_attempt_at) <= now),
                            # claimed by an instance that died: its lease ran out
                            and_(col(OutboxMessage.state) == sending, col(OutboxMessage.lease_until) < now)),
                        # One message per chat at a time, so that a chat reads in the order things happened
                        # ("accepted" before "covered"), across instances; the per-chat limit would space
                        # them anyway. A row of a dead instance does not hold its chat.
                        ~exists().where(col(other.chat_id) == col(OutboxMessage.chat_id),
                                        col(other.channel) == col(OutboxMessage.channel),
                                        col(other.state) == sending,
                                        or_(col(other.lease_until).is_(None), col(other.lease_until) >= now)))
                     .order_by(col(OutboxMessage.priority), col(OutboxMessage.id))
                     .limit(4 * free + len(self._inflight))
                     .with_for_update(skip_locked=True, of=OutboxMessage))  # SQLite: no-op (one instance)
                busy = set(self._inflight_chats)
                rows = []
                for r in (await s.exec(q)).all():
                    if r.id in self._inflight or r.chat_id in busy:
                        continue
                    busy.add(r.chat_id)
                    rows.append(r)
                    if len(rows) >= free:
                        break
                if not rows:
                    return 0
                taken = [r for r in rows if r.state == sending]
                if taken:
                    self.takeovers += len(taken)
                    log.warning("outbox: took over %d row(s) whose claim ran out: %s", len(taken),
                                ", ".join(f"{r.id} from {r.claimed_by}" for r in taken))
                ids = [r.id for r in rows]
                await s.exec(update(OutboxMessage).where(col(OutboxMessage.id).in_(ids))
                             .values(state=sending, claimed_by=self.instance_id, lease_until=lease_until))
                edits = {r.edit_of_key for r in rows if r.edit_of_key}
                originals = {}
                if edits:
                    originals = {o.key: o for o in (await s.exec(
                        select(OutboxMessage).where(col(OutboxMessage.key).in_(edits)))).all()}
            self.claims += 1
            self.claim_time_s += time.monotonic() - t0
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_leases(), name="outbox-lease")
        for r in rows:
            self._inflight.add(r.id)
            self._inflight_chats[r.chat_id] = self._inflight_chats.get(r.chat_id, 0) + 1
            task = asyncio.create_task(self._send_one(r, originals.get(r.edit_of_key) if r.edit_of_key else None))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def _renew_leases(self) -> None:
        """While rows are in flight, their leases are renewed every third of a lease: a send that waits
        out a 429 or a slow network keeps its rows, and no other instance sends them a second time."""
        due = time.monotonic() + self.lease_s / 3
        while self._inflight:
            # Short naps, so that the task ends soon after the last row in flight does.
            await asyncio.sleep(min(due - time.monotonic(), 0.5))
            ids = list(self._inflight)
            if not ids or time.monotonic() < due:
                continue
            due = time.monotonic() + self.lease_s / 3
            try:
                async with self._db_lock:
                    async with self.sm() as s, s.begin():
                        await s.exec(update(OutboxMessage).where(
                            col(OutboxMessage.id).in_(ids), col(OutboxMessage.claimed_by) == self.instance_id,
                            col(OutboxMessage.state) == OutboxState.sending.value)
                            .values(lease_until=self.clock() + timedelta(seconds=self.lease_s)))
            except Exception:  # the next round tries again; a lease is three rounds long
                log.exception("outbox: renewing leases failed")

    async def _send_one(self, row: OutboxMessage, original: OutboxMessage | None) -> None:
        with log_context(request_id=row.request_id):
            await self._send_one_logged(row, original)

    async def _send_one_logged(self, row: OutboxMessage, original: OutboxMessage | None) -> None:
        try:
            edit_id = None
            if row.edit_of_key:
                if original is None or original.state in (OutboxState.cancelled.value, OutboxState.failed.value,
                                                          OutboxState.unreachable.value):
                    await self._finish(row, OutboxState.cancelled.value, error="nothing to edit")
                    return
                if original.state != OutboxState.sent.value:  # the call is still on its way: edit after it
                    await self._retry(row, 0.5, count=False, error="waiting for the original")
                    return
                edit_id = original.message_id
            try:
                params = load(row.kind, row.params)
            except InvalidParams as exc:  # a row no version of the code can read: retrying will not fix it
                await self._give_up(row, str(exc))
                return
            async with self._sem:
                slot = await self.limiter.acquire(row.chat_id, rank=row.priority)
                try:
                    if row.kind in self.prepare and row.request_id is not None:
                        # Read after the turn came: an edit that waited for the limiter shows the latest state.
                        prepared = await self.prepare[row.kind](row.request_id, row.chat_id)
                        if prepared is None:
                            await self._finish(row, OutboxState.cancelled.value, error="nothing to show")
                            return
                        params = prepared
                    assert row.id is not None  # a row read from the database
                    msg = Outgoing(row.id, row.key, row.chat_id, row.kind, params, row.locale, edit_id,
                                   row.address, row.contact_id)
                    result = await self.transport.deliver(msg)
                except RetryAfter as exc:
                    self.metrics.rate_limited(row.kind)
                    self.limiter.pause(exc.seconds)
                    await self._retry(row, exc.seconds, count=False, error=str(exc))
                    return
                except Unreachable as exc:
                    self.metrics.failed(row.kind)
                    await self._unreachable(row, str(exc))
                    return
                except PermanentError as exc:
                    await self._give_up(row, str(exc))
                    return
                except (TransientError, OSError, asyncio.TimeoutError) as exc:
                    await self._transient_failure(row, str(exc))
                    return
                finally:
                    self.limiter.release(slot)
            await self._sent(row, result, original)
            self.metrics.sent(row.kind)
        except Exception:
            log.exception("outbox: row %s", row.id)
            await self._retry(row, self.cfg.backoff_max_s, count=True, error="internal error")
        finally:
            self._inflight.discard(row.id)
            left = self._inflight_chats.get(row.chat_id, 1) - 1
            if left > 0:
                self._inflight_chats[row.chat_id] = left
            else:
                self._inflight_chats.pop(row.chat_id, None)
            self._wake.set()

    async def _give_up(self, row: OutboxMessage, error: str, *, attempt: bool = False) -> None:
        """A message that will never be sent: counted, marked failed, and a call's contact updated."""
        self.metrics.failed(row.kind)
        await self._finish(row, OutboxState.failed.value, error=error[:500], attempt=attempt)
        await self._call_failed(row)

    async def _transient_failure(self, row: OutboxMessage, error: str) -> None:
        """Tried again after a growing, jittered back-off, until ``max_attempts``."""
        if row.attempts + 1 >= self.cfg.max_attempts:
            await self._give_up(row, error, attempt=True)
        else:
            self.metrics.retried(row.kind)
            backoff = min(self.cfg.backoff_base_s * 2 ** row.attempts, self.cfg.backoff_max_s)
            await self._retry(row, backoff * (0.5 + self.rng.random()), count=True, error=error)

    async def _sent(self, row: OutboxMessage, result: DeliveryResult, original: OutboxMessage | None = None) -> None:
        now = self.clock()
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                # One write records both "sent" and the message_id: the pair can't disagree after a crash.
                await s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(
                    state=OutboxState.sent.value, message_id=result.message_id, sent_at=now,
                    attempts=row.attempts + 1, last_error="", **_left(row)))
                if original is not None and result.message_id not in (None, original.message_id):
                    # The message to edit was gone (deleted in the chat) and was sent anew: later
                    # edits go to the new one instead of re-sending every time.
                    await s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == original.id)
                                 .values(message_id=result.message_id))
                if row.kind == "call" and row.contact_id is not None:
                    # The response window runs from delivery, not from the decision to ask.
                    await s.exec(update(RequestContact).where(col(RequestContact.id) == row.contact_id,
                                                              col(RequestContact.state) == ContactState.queued.value)
                                 .values(state=ContactState.notified.value, notified_at=now))

    async def _retry(self, row: OutboxMessage, after_s: float, *, count: bool, error: str) -> None:
        now = self.clock()
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                await s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(
                    state=OutboxState.pending.value, claimed_by=None, lease_until=None,
                    next_attempt_at=now + timedelta(seconds=after_s),
                    attempts=row.attempts + (1 if count else 0), last_error=error[:500]))
        self._wake.set()

    async def _finish(self, row: OutboxMessage, state: str, *, error: str = "", attempt: bool = False) -> None:
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                await s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(
                    state=state, last_error=error, attempts=row.attempts + (1 if attempt else 0), **_left(row)))

    async def _unreachable(self, row: OutboxMessage, error: str) -> None:
        now = self.clock()
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                await s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(
                    state=OutboxState.unreachable.value, last_error=error[:500], attempts=row.attempts + 1,
                    **_left(row)))
                if row.channel == Channel.telegram.value:
                    await s.exec(update(TelegramUser).where(col(TelegramUser.telegram_id) == row.chat_id)
                                 .values(blocked_at=now))
                else:  # off Telegram the row's chat is the donor_channel row (dispatcher.outbox)
                    await s.exec(update(DonorChannel).where(col(DonorChannel.id) == row.chat_id)
                                 .values(unreachable_at=now))
                rerouted = await self.reroute(s, row, now) if self.reroute is not None else None
                if row.channel == Channel.telegram.value:
                    request_ids = await _contacts_unreachable(s, chat_id=row.chat_id,
                                                              keep=rerouted.contact_id if rerouted else None)
                elif rerouted is None and row.contact_id is not None:
                    request_ids = await _contacts_unreachable(s, contact_id=row.contact_id)
                else:
                    request_ids = []
        if request_ids and self.on_unreachable is not None:
            await self.on_unreachable(request_ids)

    async def _call_failed(self, row: OutboxMessage) -> None:
        if row.kind != "call" or row.contact_id is None:
            return
        async with self._db_lock:
            async with self.sm() as s, s.begin():
                request_ids = await _contacts_unreachable(s, contact_id=row.contact_id)
        if request_ids and self.on_unreachable is not None:
            await self.on_unreachable(request_ids)


def _left(row: OutboxMessage) -> dict[str, Any]:
    """The row's personal parameters go once it is done with (each kind's ``personal``, dispatcher.messages)."""
    kept = scrubbed(row.kind, row.params)
    return {} if kept is None else {"params": kept}


async def _contacts_unreachable(s, *, chat_id: int | None = None, contact_id: int | None = None,
                                keep: int | None = None) -> list[int]:
    """Take the donor off open requests she was asked for but cannot be told about; the dispatcher replaces her.
    ``keep``: the contact whose call went on to her next channel (dispatcher.channels)."""
    q = (select(RequestContact).join(BloodRequest, col(BloodRequest.id) == RequestContact.request_id)
         .where(col(RequestContact.state).in_((ContactState.queued.value, ContactState.notified.value)),
                col(BloodRequest.state).in_(ACTIVE_REQUEST_STATES)))
    if contact_id is not None:
        q = q.where(col(RequestContact.id) == contact_id)
    else:
        q = q.join(Donor, col(Donor.id) == RequestContact.donor_id).where(col(Donor.telegram_id) == chat_id)
    if keep is not None:
        q = q.where(col(RequestContact.id) != keep)
    rows = (await s.exec(q)).all()
    for c in rows:
        c.state = ContactState.unreachable.value
    return sorted({c.request_id for c in rows})


class Ticks(Protocol):
    """What the sender needs of the dispatcher: look at a request again (dispatcher.engine.Dispatcher)."""

    async def tick(self, request_id: int) -> object: ...


def replace_unreachable(dispatcher: Ticks) -> OnUnreachable:
    """The wiring between sender and dispatcher: a donor who cannot be reached is replaced at once."""

    async def _cb(request_ids: list[int]) -> None:
        for rid in request_ids:
            await dispatcher.tick(rid)
    return _cb


__all__ = ["DeliveryResult", "Outgoing", "PermanentError", "RateLimiter", "RetryAfter", "Sender", "TransientError",
           "Transport", "Unreachable", "replace_unreachable"]
