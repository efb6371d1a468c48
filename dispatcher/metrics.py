"""What an operator watches: Prometheus metrics for the one outbound path and the requests.

Two sources, on purpose:

* events that leave no row behind (a retry, a 429) are counted as they happen, by the
  sender, through the :class:`SendMetrics` it is given in its constructor;
* everything the database already knows (outbox depth, open requests, minutes to cover,
  answers) is read from it when /metrics is scraped (:meth:`Metrics.refresh`), so the
  figures survive a restart and cannot drift from the truth.

Each :class:`Metrics` has its own registry (no process-wide globals): two bots in one
test process do not share counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select

from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    SAID_AVAILABLE_STATES,
    BloodRequest,
    ContactState,
    OutboxMessage,
    OutboxState,
    RequestContact,
    Urgency,
)

# Minutes: a critical request should be covered within the hour, a planned one within days.
MINUTE_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 360, 720, 1440, 4320)
# How a recorded answer is counted: said available (whatever happened after), declined, silent, unreachable.
ANSWER_KINDS = {
    **{state: "available" for state in SAID_AVAILABLE_STATES},
    ContactState.declined.value: "declined",
    ContactState.no_answer.value: "no_answer",
    ContactState.unreachable.value: "unreachable",
}


class SendMetrics(Protocol):
    """What the sender reports, by message kind."""

    def sent(self, kind: str) -> None: ...
    def failed(self, kind: str) -> None: ...
    def retried(self, kind: str) -> None: ...
    def rate_limited(self, kind: str) -> None: ...


class NoMetrics:
    """For tests, benches and the demo: counts nothing."""

    def sent(self, kind: str) -> None:
        pass

    def failed(self, kind: str) -> None:
        pass

    def retried(self, kind: str) -> None:
        pass

    def rate_limited(self, kind: str) -> None:
        pass


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["kind"], registry=self.registry)

        self._sent = counter("redreserve_messages_sent", "Messages Telegram accepted, by kind")
        self._failed = counter("redreserve_messages_failed", "Messages given up (retries used up, 400, 403), by kind")
        self._retried = counter("redreserve_messages_retried", "Sends retried after a network error or 5xx, by kind")
        self._rate_limited = counter("redreserve_messages_rate_limited",
                                     "Sends answered 429 by Telegram (all sending paused), by kind")
        self._from_db = _DatabaseFigures()
        self.registry.register(self._from_db)

    def sent(self, kind: str) -> None:
        self._sent.labels(kind).inc()

    def failed(self, kind: str) -> None:
        self._failed.labels(kind).inc()

    def retried(self, kind: str) -> None:
        self._retried.labels(kind).inc()

    def rate_limited(self, kind: str) -> None:
        self._rate_limited.labels(kind).inc()

    async def refresh(self, sessionmaker: async_sessionmaker, now: datetime) -> None:
        """Read the database's figures (call before :meth:`render`)."""
        async with sessionmaker() as s:
            waiting = (OutboxState.pending.value, OutboxState.sending.value)
            depth, oldest = (await s.exec(select(func.count(), func.min(OutboxMessage.created_at))
                                          .where(col(OutboxMessage.state).in_(waiting)))).one()
            open_by_urgency = dict((await s.exec(
                select(BloodRequest.urgency, func.count()).where(col(BloodRequest.state).in_(ACTIVE_REQUEST_STATES))
                .group_by(col(BloodRequest.urgency)))).all())
            covered = (await s.exec(select(BloodRequest.created_at, BloodRequest.covered_at)
                                    .where(col(BloodRequest.covered_at).is_not(None)))).all()
            first_donation = (await s.exec(
                select(BloodRequest.created_at, func.min(RequestContact.outcome_at))
                .join(RequestContact, col(RequestContact.request_id) == BloodRequest.id)
                .where(col(RequestContact.state) == ContactState.donated.value,
                       col(RequestContact.outcome_at).is_not(None))
                .group_by(col(BloodRequest.id), col(BloodRequest.created_at)))).all()
            by_state = (await s.exec(select(RequestContact.state, func.count())
                                     .where(col(RequestContact.state).in_(list(ANSWER_KINDS)))
                                     .group_by(RequestContact.state))).all()
        answers = dict.fromkeys(sorted(set(ANSWER_KINDS.values())), 0)
        for state, n in by_state:
            answers[ANSWER_KINDS[state]] += n
        self._from_db.set(
            outbox_depth=depth,
            outbox_oldest_s=(now - _utc(oldest)).total_seconds() if oldest is not None else 0.0,
            open_requests={u.value: open_by_urgency.get(u.value, 0) for u in Urgency},
            minutes_to_cover=[_minutes(a, b) for a, b in covered],
            minutes_to_first_donation=[_minutes(a, b) for a, b in first_donation],
            answers=answers,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DatabaseFigures:
    """A custom collector: the figures last read from the database, as Prometheus families."""

    def __init__(self) -> None:
        self._families: list[Metric] = []

    def set(self, *, outbox_depth: int, outbox_oldest_s: float, open_requests: dict[str, int],
            minutes_to_cover: list[float], minutes_to_first_donation: list[float], answers: dict[str, int]) -> None:
        depth = GaugeMetricFamily("redreserve_outbox_depth", "Messages waiting to be sent (pending or sending)")
        depth.add_metric([], outbox_depth)
        oldest = GaugeMetricFamily("redreserve_outbox_oldest_age_seconds",
                                   "Age of the oldest message waiting to be sent (0 when none waits)")
        oldest.add_metric([], max(outbox_oldest_s, 0.0))
        open_ = GaugeMetricFamily("redreserve_open_requests", "Requests still asking donors, by urgency",
                                  labels=["urgency"])
        for urgency, n in open_requests.items():
            open_.add_metric([urgency], n)
        answered = GaugeMetricFamily("redreserve_answers", "Donors' answers to calls as recorded, by kind",
                                     labels=["kind"])
        for kind, n in answers.items():
            answered.add_metric([kind], n)
        self._families = [
            depth, oldest, open_,
            _histogram("redreserve_minutes_to_cover", "Minutes from a request to enough donors saying available",
                       minutes_to_cover),
            _histogram("redreserve_minutes_to_first_donation", "Minutes from a request to its first recorded donation",
                       minutes_to_first_donation),
            answered,
        ]

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _histogram(name: str, doc: str, values: Iterable[float]) -> HistogramMetricFamily:
    values = list(values)
    buckets = [(floatToGoString(b), sum(v <= b for v in values)) for b in MINUTE_BUCKETS]
    buckets.append(("+Inf", len(values)))
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], buckets, sum_value=sum(values))
    return family


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


def _minutes(start: datetime, end: datetime) -> float:
    return (_utc(end) - _utc(start)).total_seconds() / 60
