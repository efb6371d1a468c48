"""Can the deadline be met at all? Asked before a request is posted (issue 9, point 7).

DOMAIN.md §6: travel dominates, a whole-blood visit takes about an hour and apheresis
up to two; "a deadline under 2–3 hours is hard to meet with new donors; warn the
hospital when the ranked travel times say so". The figures come from the same search
and ranking as the waves: the nearest likely-eligible donors of the patient's own RhD,
as many as the stop target needs (the engine's, from its policy's margin), their preparation
and travel, and the component's collection time. A check that finds the deadline too short says so with those figures;
staff may still send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.candidates import Search, fetch_ranked
from dispatcher.compat import compatible_tiers
from dispatcher.ranking import RankContext
from ground.config import DispatchConfig
from ground.eligibility import APHERESIS, Rules
from models.tables import Hospital

LOOK_AHEAD = timedelta(hours=48)  # how far the search looks for the nearest donors, whatever the deadline


@dataclass(frozen=True)
class DeadlineCheck:
    ok: bool
    minutes_left: int  # from now to the deadline
    donors: int  # how many donors the figures are about (the stop target)
    found: int  # likely-eligible donors with a known location found (at most ``donors``)
    travel_min: int | None  # preparation + travel of the farthest of those ``donors`` nearest
    collect_min: int  # the component's collection time
    need_min: int | None  # travel_min + collect_min
    deadline_local: str

    def params(self) -> dict:
        return self.__dict__.copy()


def collect_minutes(component: str, cfg: DispatchConfig) -> int:
    """DOMAIN.md §6: a visit about an hour; apheresis (platelets, plasma) up to two."""
    return cfg.apheresis_min if component in APHERESIS else cfg.visit_min


async def deadline_check(s: AsyncSession, *, hospital: Hospital, abo: str, rh: str, component: str, want: int,
                         deadline: datetime, now: datetime, cfg: DispatchConfig, rules: Rules,
                         tz: ZoneInfo) -> DeadlineCheck:
    """``want``: the request's stop target, the donors whose travel the figures are about."""
    tiers = [t for t in compatible_tiers(abo, rh, component) if not t.last_resort]
    today = now.astimezone(tz).date()
    # Rh− searches every club (DOMAIN.md §3); otherwise the waves' widest radius.
    radius = None if rh == "-" else cfg.max_radius_km
    search = Search(hospital.lat, hospital.lon, component, tiers, now, today, now + LOOK_AHEAD, radius,
                    request_id=None, cap_count=cfg.contact_cap_count, cap_days=cfg.contact_cap_days,
                    require_consent=cfg.require_contact_consent)
    ctx = RankContext.of(hospital_lat=hospital.lat, hospital_lon=hospital.lon, now=now, today=today,
                         deadline=now + LOOK_AHEAD, dispatch=cfg, eligibility=rules)
    ranked = await fetch_ranked(s, search, ctx, rules, want)
    travels = sorted(r.travel_min for r in ranked if r.travel_min is not None)
    collect = collect_minutes(component, cfg)
    travel = round(cfg.prep_min + travels[-1]) if travels else None
    need = None if travel is None else travel + collect
    left = int((deadline - now).total_seconds() // 60)
    ok = need is not None and len(travels) >= want and need <= left
    return DeadlineCheck(ok, left, want, len(travels), travel, collect, need,
                         deadline.astimezone(tz).strftime("%H:%M %d/%m"))


__all__ = ["DeadlineCheck", "collect_minutes", "deadline_check"]
