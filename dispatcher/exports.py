"""Donations and requests as tables a club or a hospital keeps (issue 16): CLI and chat alike.

A club's export names its own members (the lead already sees them on /roster) and is
audited like the roster export; a hospital's export of its requests holds counts and
times only, never a donor (DOMAIN.md §7). Headers come in English and Vietnamese, like
the roster's, and the values are the record's own: codes for components and urgencies,
local times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.club_report import NOT_DELIVERED
from ground.clock import as_utc
from ground.parsing import format_blood_type, format_phone
from models import stats
from models.audit import audit
from models.dispatch_tables import SAID_AVAILABLE_STATES, ContactState


@dataclass(frozen=True)
class Table:
    sheet: tuple[str, str]  # (English, Vietnamese)
    headers: tuple[tuple[str, str], ...]
    rows: list[tuple[object, ...]]

    def header_row(self, lang: str) -> list[str]:
        return [vi if lang == "vi" else en for en, vi in self.headers]

    def sheet_name(self, lang: str) -> str:
        return self.sheet[1] if lang == "vi" else self.sheet[0]


DONATION_HEADERS = (("Date", "Ngày hiến"), ("Name", "Họ tên"), ("Phone", "Số điện thoại"),
                    ("Blood type", "Nhóm máu"), ("Component", "Thành phần"), ("Volume (ml)", "Thể tích (ml)"),
                    ("Where", "Nơi hiến"))
REQUEST_HEADERS = (("Request", "Yêu cầu"), ("Posted", "Thời điểm đăng"), ("Deadline", "Hạn"),
                   ("Blood type", "Nhóm máu"), ("Component", "Thành phần"), ("Units", "Số đơn vị"),
                   ("Urgency", "Mức độ"), ("State", "Trạng thái"), ("Asked", "Đã hỏi"),
                   ("Said available", "Nhận lời"), ("Donated", "Đã hiến"),
                   ("Donated before the deadline", "Hiến trước hạn"),
                   ("Minutes to first donation", "Số phút đến lần hiến đầu"))


async def club_donations(session: AsyncSession, club_id: int, first: date, last: date, *,
                         actor: int | str) -> Table:
    lines = await stats.club_donation_lines(session, club_id, first, last)
    audit(session, actor, "donations.export", f"club:{club_id}", f"rows={len(lines)} from={first} to={last}")
    await session.commit()
    return Table(("Donations", "Lần hiến"), DONATION_HEADERS, [
        (d.donated_on, d.full_name, format_phone(d.phone),
         format_blood_type(d.abo, d.rh) if d.abo and d.rh else "", d.component, d.volume_ml, d.where)
        for d in lines])


async def hospital_requests(session: AsyncSession, hospital_id: int, since: datetime, tz: tzinfo, *,
                            actor: int | str, until: datetime | None = None) -> Table:
    """The hospital's requests posted from ``since`` (until ``until``, excluded, when given)."""
    requests = [r for r in await stats.hospital_requests(session, hospital_id, since)
                if until is None or as_utc(r.created_at) < until]
    outcomes = await stats.hospital_outcomes(session, hospital_id, since)
    by_request: dict[int, list[stats.OutcomeRow]] = {}
    for o in outcomes:
        by_request.setdefault(o.request_id, []).append(o)
    rows: list[tuple[object, ...]] = []
    for r in requests:
        calls = by_request.get(r.id, [])
        gifts = sorted(as_utc(o.outcome_at) for o in calls
                       if o.state == ContactState.donated.value and o.outcome_at is not None)
        created, deadline = as_utc(r.created_at), as_utc(r.deadline)
        rows.append((
            r.id, created.astimezone(tz), deadline.astimezone(tz), format_blood_type(r.abo, r.rh), r.component, r.units, r.urgency,
            r.state, sum(1 for o in calls if o.state not in NOT_DELIVERED),
            sum(1 for o in calls if o.state in SAID_AVAILABLE_STATES), len(gifts),
            sum(1 for g in gifts if g <= deadline),
            round((gifts[0] - created).total_seconds() / 60) if gifts else None))
    audit(session, actor, "requests.export", f"hospital:{hospital_id}", f"rows={len(rows)} since={since:%Y-%m-%d}")
    await session.commit()
    return Table(("Requests", "Yêu cầu"), REQUEST_HEADERS, rows)
