"""Club leads: a weekly digest of the roster and of the requests around the club.

Per club, once per ISO week, at the configured local weekday and time, to every lead of
that club the bot may write to: how many members are likely able to give today per blood
type, Rh− first (the SQL form of :func:`ground.eligibility.assess`,
dispatcher.candidates.medical_conditions); how many are paused or deferred, and how many
the bot cannot reach (the lead phones them); and the requests posted at hospitals within
``dispatch.max_radius_km`` of the club during the past ``digest_days`` days, by blood
type, with how many were covered. Counts only: no names, no phone numbers (DOMAIN.md §7).
A week whose wake-up was missed gets its digest once, late, within that week.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from dispatcher.candidates import medical_conditions, messageable_conditions
from dispatcher.compat import ABO
from dispatcher.messages import Kind
from dispatcher.outbox import enqueue
from dispatcher.reminders import hh_mm, local_at
from models.dispatch_tables import BloodRequest, OutboxMessage, RequestState
from models.geo import haversine_km
from models.tables import Club, ClubMembership, Donor, Hospital, TelegramUser
from ground.config import WEEKDAYS

# Rh− first: the types a club is shortest of, and the ones hospitals page leads about (DOMAIN.md §3).
TYPE_ORDER = [(abo, rh) for rh in ("-", "+") for abo in ABO]
COVERED_STATES = (RequestState.covered.value, RequestState.fulfilled.value)


def digest_key(club_id: int, lead_telegram_id: int, day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"digest:{club_id}:{lead_telegram_id}:{year}-W{week:02d}"


class LeadDigest:
    name = "lead_digest"

    def __init__(self, settings) -> None:
        cfg = settings.reminders
        self.enabled = cfg.digest_enabled
        self.weekday = WEEKDAYS.index(cfg.digest_weekday)
        self.at = hh_mm(cfg.digest_time)
        self.days = cfg.digest_days
        self.tz = settings.bot.tz
        self.radius_km = settings.dispatch.max_radius_km
        self.rules = settings.eligibility

    def slot(self, day: date) -> datetime:
        """This week's digest time for the ISO week holding ``day``."""
        monday = day - timedelta(days=day.weekday())
        return local_at(monday + timedelta(days=self.weekday), self.at, self.tz)

    async def run(self, session: AsyncSession, now: datetime) -> datetime | None:
        if not self.enabled:
            return None
        today = now.astimezone(self.tz).date()
        slot = self.slot(today)
        if now < slot:
            return slot
        leads = (await session.exec(
            select(ClubMembership.club_id, ClubMembership.telegram_id, TelegramUser.locale)
            .join(TelegramUser, TelegramUser.telegram_id == ClubMembership.telegram_id)
            .where(ClubMembership.role == "lead", TelegramUser.blocked_at.is_(None))
            .order_by(ClubMembership.club_id, ClubMembership.telegram_id))).all()
        summaries: dict[int, dict] = {}
        for club_id, lead_tg, locale in leads:
            key = digest_key(club_id, lead_tg, today)
            if (await session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key))).first() is not None:
                continue
            if club_id not in summaries:
                summaries[club_id] = await self.summary(session, club_id, today, now)
            await enqueue(session, key=key, chat_id=lead_tg, kind=Kind.lead_digest.value,
                          params=summaries[club_id], now=now, locale=locale)
        return self.slot(today + timedelta(days=7))

    async def summary(self, session: AsyncSession, club_id: int, today: date, now: datetime) -> dict[str, Any]:
        club = await session.get(Club, club_id)
        year, week, _ = today.isocalendar()
        def members(*columns: Any) -> Select:
            return (select(*columns).select_from(Donor)
                    .join(ClubMembership, and_(ClubMembership.donor_id == Donor.id, ClubMembership.club_id == club_id,
                                               ClubMembership.role == "member")))

        total = (await session.exec(members(func.count()))).one()
        by_type = {(abo, rh): n for abo, rh, n in (await session.exec(
            members(Donor.abo, Donor.rh, func.count())
            .where(*medical_conditions("whole_blood", today, self.rules))
            .group_by(Donor.abo, Donor.rh))).all()}
        paused = (await session.exec(members(func.count()).where(
            Donor.status.in_(("paused", "deferred")),
            or_(Donor.status_until.is_(None), Donor.status_until > today)))).one()
        reachable = (await session.exec(
            members(func.count()).join(TelegramUser, TelegramUser.telegram_id == Donor.telegram_id)
            .where(*messageable_conditions(require_consent=False)))).one()
        requests = await self._requests_around(session, club, now)
        return {
            "club": club.name,
            "week": f"{year}-W{week:02d}",
            "members": total,
            "eligible": [[abo, rh, by_type.get((abo, rh), 0)] for abo, rh in TYPE_ORDER],
            "eligible_total": sum(by_type.values()),
            "paused": paused,
            "unreachable": total - reachable,
            "radius_km": self.radius_km,
            "days": self.days,
            "requests": requests,
            "requests_total": sum(r[2] for r in requests),
            "covered_total": sum(r[3] for r in requests),
        }

    async def _requests_around(self, session, club: Club, now: datetime) -> list[list]:
        """[[abo, rh, posted, covered], …], Rh− first, for hospitals within the widest dispatch radius."""
        hospitals = [h.id for h in (await session.exec(select(Hospital))).all()
                     if haversine_km(club.lat, club.lon, h.lat, h.lon) <= self.radius_km]
        if not hospitals:
            return []
        covered = func.sum(case((BloodRequest.state.in_(COVERED_STATES), 1), else_=0))
        rows = (await session.exec(
            select(BloodRequest.abo, BloodRequest.rh, func.count(), covered)
            .where(BloodRequest.hospital_id.in_(hospitals), BloodRequest.created_at > now - timedelta(days=self.days),
                   BloodRequest.created_at <= now)
            .group_by(BloodRequest.abo, BloodRequest.rh))).all()
        found = {(abo, rh): (n, int(c or 0)) for abo, rh, n, c in rows}
        return [[abo, rh, *found[(abo, rh)]] for abo, rh in TYPE_ORDER if (abo, rh) in found]
