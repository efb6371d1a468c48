"""Which "available" answers count towards a request's stop target (issue 9).

A hospital needs blood in the bag before the deadline, not taps on "I'm coming". A
donor's "available" counts only when her expected arrival — the moment she answered,
plus the preparation and travel time the ranking computes (dispatcher.ranking) — falls
before the deadline. A donor already at the hospital counts whatever the clock says; a
donor whose location is unknown counts (the ranking places her between the two, and
nothing says she is late). Everyone else who said yes is welcome, shown on the board
as late, and does not stop the asking.

One home for the rule: the engine's stop test, the board's "coming" count and the
property test all call :func:`counted_condition`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_
from sqlalchemy.sql import ColumnElement
from sqlmodel import col, select

from models.dispatch_tables import ContactState, RequestContact

# On the way or about to leave: counted when expected in time.
COMING_STATES = (ContactState.available.value, ContactState.en_route.value)
# At the hospital: counted, whatever the expected arrival said.
THERE_STATES = (ContactState.arrived.value, ContactState.donated.value)


def expected_arrival(at: datetime, travel_min: float | None, prep_min: float) -> datetime | None:
    """When a donor who decides at ``at`` would be at the hospital; None when her location is unknown."""
    if travel_min is None:
        return None
    return at + timedelta(minutes=prep_min + travel_min)


def arrives_in_time(arrival: datetime | None, deadline: datetime) -> bool:
    return arrival is None or arrival <= deadline


def counted_condition(deadline: datetime) -> ColumnElement:
    """SQL: a contact whose "available" counts towards the target of a request with this deadline."""
    state, arrival = col(RequestContact.state), col(RequestContact.expected_arrival_at)
    return or_(state.in_(THERE_STATES), and_(state.in_(COMING_STATES), or_(arrival.is_(None), arrival <= deadline)))


def late_condition(deadline: datetime) -> ColumnElement:
    """SQL: said available, still to come, and expected after the deadline (shown as late, never counted)."""
    state, arrival = col(RequestContact.state), col(RequestContact.expected_arrival_at)
    return and_(state.in_(COMING_STATES), arrival.is_not(None), arrival > deadline)


async def count_counted(s, request_id: int, deadline: datetime) -> int:
    return (await s.exec(select(func.count()).select_from(RequestContact).where(
        RequestContact.request_id == request_id, counted_condition(deadline)))).one()


__all__ = ["COMING_STATES", "THERE_STATES", "arrives_in_time", "count_counted", "counted_condition",
           "expected_arrival", "late_condition"]
