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
from typing import TypeVar

from sqlalchemy import and_, case, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select, SelectOfScalar

from dispatcher.candidates import medical_conditions, messageable_conditions
from dispatcher.compat import ABO
from dispatcher import messages as M
from dispatcher.outbox import enqueue
from dispatcher.reminders import hh_mm, local_at
from models.dispatch_tables import BloodRequest, OutboxMessage, RequestState
from models.geo import haversine_km
from models.tables import Club, ClubMembership, Donor, Hospital, TelegramUser
from ground.config import WEEKDAYS, Settings

# Rh− first: the types a club is shortest of, and the ones hospitals page leads about (DOMAIN.md §3).
TYPE_ORDER = [(abo, rh) for rh in ("-", "+") for abo in ABO]
COVERED_STATES = (RequestState.covered.value, RequestState.fulfilled.value)

_Select = TypeVar("_Select", Select, SelectOfScalar)


def digest_key(club_id: int, lead_telegram_id: int, day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"digest:{club_id}:{lead_telegram_id}:{year}-W{week:02d}"


class LeadDigest:
    name = "lead_digest"

    def __init__(self, settings: Settings) -> None:
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
            .join(TelegramUser, col(TelegramUser.telegram_id) == ClubMembership.telegram_id)
            .where(col(ClubMembership.role) == "lead", col(TelegramUser.blocked_at).is_(None))
            .order_by(col(ClubMembership.club_id), col(ClubMembership.telegram_id)))).all()
        summaries: dict[int, M.LeadDigest] = {}
        for club_id, lead_tg, locale in leads:
            assert lead_tg is not None  # joined to the lead's Telegram account by it
            key = digest_key(club_id, lead_tg, today)
            if (await session.exec(select(OutboxMessage.id).where(col(OutboxMessage.key) == key))).first() is not None:
                continue
            if club_id not in summaries:
                summaries[club_id] = await self.summary(session, club_id, today, now)
            await enqueue(session, key=key, chat_id=lead_tg, params=summaries[club_id], now=now, locale=locale)
        return self.slot(today + timedelta(days=7))

    async def summary(self, session: AsyncSession, club_id: int, today: date, now: datetime) -> M.LeadDigest:
        club = await session.get(Club, club_id)
        assert club is not None  # a lead's own club: clubs are never deleted
        year, week, _ = today.isocalendar()

        def members(stmt: _Select) -> _Select:
            return (stmt.select_from(Donor)
                    .join(ClubMembership, and_(col(ClubMembership.donor_id) == Donor.id,
                                               col(ClubMembership.club_id) == club_id,
                                               col(ClubMembership.role) == "member")))

        total = (await session.exec(members(select(func.count())))).one()
        by_type = {(abo, rh): n for abo, rh, n in (await session.exec(
            members(select(col(Donor.abo), col(Donor.rh), func.count()))
            .where(*medical_conditions("whole_blood", today, self.rules))
            .group_by(col(Donor.abo), col(Donor.rh)))).all()}
        until = col(Donor.status_until)
        paused = (await session.exec(members(select(func.count())).where(
            col(Donor.status).in_(("paused", "deferred")), or_(until.is_(None), until > today)))).one()
        reachable = (await session.exec(
            members(select(func.count())).join(TelegramUser, col(TelegramUser.telegram_id) == Donor.telegram_id)
            .where(*messageable_conditions(require_consent=False)))).one()
        requests = await self._requests_around(session, club, now)
        return M.LeadDigest(
            club=club.name,
            week=f"{year}-W{week:02d}",
            members=total,
            eligible=tuple((abo, rh, by_type.get((abo, rh), 0)) for abo, rh in TYPE_ORDER),
            eligible_total=sum(by_type.values()),
            paused=paused,
            unreachable=total - reachable,
            radius_km=self.radius_km,
            days=self.days,
            requests=requests,
            requests_total=sum(r[2] for r in requests),
            covered_total=sum(r[3] for r in requests),
        )

    async def _requests_around(self, session: AsyncSession, club: Club, now: datetime) -> tuple[tuple[str, str, int, int], ...]:
        """((abo, rh, posted, covered), …), Rh− first, for hospitals within the widest dispatch radius."""
        hospitals = [h.id for h in (await session.exec(select(Hospital))).all()
                     if haversine_km(club.lat, club.lon, h.lat, h.lon) <= self.radius_km]
        if not hospitals:
            return ()
        covered = func.sum(case((col(BloodRequest.state).in_(COVERED_STATES), 1), else_=0))
        created = col(BloodRequest.created_at)
        rows = (await session.exec(
            select(col(BloodRequest.abo), col(BloodRequest.rh), func.count(), covered)
            .where(col(BloodRequest.hospital_id).in_(hospitals), created > now - timedelta(days=self.days),
                   created <= now)
            .group_by(col(BloodRequest.abo), col(BloodRequest.rh)))).all()
        found = {(abo, rh): (n, int(c or 0)) for abo, rh, n, c in rows}
        return tuple((abo, rh, *found[(abo, rh)]) for abo, rh in TYPE_ORDER if (abo, rh) in found)
