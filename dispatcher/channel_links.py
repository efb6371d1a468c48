"""Linking a donor's Zalo chat to her record, and her consent to be called there (issue 15, DOMAIN.md §7).

A chat on Zalo says nothing about who writes from it, so it is linked by a one-time code the donor got
where she is known: from ``/me zalo`` on Telegram, or from her club lead. Sending the code to the Zalo
bot makes the channel *known* (``consent_at`` None: never used for a call); she then agrees in Zalo by
replying "DONG Y", which records the consent with its time and policy version. Every step is audited:
linking a channel changes who can reach her and how.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ground.link_codes import new_code, parse_code
from ground.sms_text import unaccented
from models.audit import audit
from models.tables import ChannelLinkCode, Donor, DonorChannel


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def is_consent(text: str) -> bool:
    """"DONG Y", "Đồng ý", "dong y." …: her agreement, typed."""
    return " ".join(unaccented(text).upper().replace(".", " ").replace("!", " ").split()) in ("DONG Y", "DONGY")


async def issue_code(s: AsyncSession, donor_id: int, channel: str, *, now: datetime, hours: int,
                     created_by: int | None, rng: random.Random | None = None) -> str:
    """A new code for ``donor_id`` on ``channel``; her earlier unused ones stop working (one live code)."""
    await s.exec(delete(ChannelLinkCode).where(col(ChannelLinkCode.donor_id) == donor_id,
                                               col(ChannelLinkCode.channel) == channel,
                                               col(ChannelLinkCode.used_at).is_(None)))
    code = new_code(rng)
    s.add(ChannelLinkCode(code_hash=code_hash(code), donor_id=donor_id, channel=channel, created_by=created_by,
                          created_at=now, expires_at=now + timedelta(hours=hours)))
    who = "herself" if created_by is None else f"by:{created_by}"
    audit(s, created_by, "channel_code_issued", f"donor:{donor_id}", f"{channel} {who}", at=now)
    return code


@dataclass(frozen=True)
class LinkResult:
    outcome: str  # "not_a_code" | "unknown" | "expired" | "used" | "taken" | "linked"
    donor_id: int | None = None
    locale: str | None = None


async def redeem(s: AsyncSession, channel: str, address: str, text: str, *, now: datetime) -> LinkResult:
    """Link ``address`` on ``channel`` to the donor whose code ``text`` is. The caller commits."""
    code = parse_code(text)
    if code is None:
        return LinkResult("not_a_code")
    row = (await s.exec(select(ChannelLinkCode).where(ChannelLinkCode.code_hash == code_hash(code),
                                                      ChannelLinkCode.channel == channel))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        outcome = "unknown" if row is None else "used" if row.used_at is not None else "expired"
        audit(s, "system", "channel_link_refused", f"channel:{channel}", outcome, at=now)
        return LinkResult(outcome)
    other = (await s.exec(select(DonorChannel).where(DonorChannel.channel == channel,
                                                     DonorChannel.address == address,
                                                     DonorChannel.donor_id != row.donor_id))).first()
    donor = await s.get(Donor, row.donor_id)
    locale = donor.locale if donor is not None else None
    if other is not None:
        # One chat, one donor: an answer from it must be bound to a single person.
        audit(s, "system", "channel_link_refused", f"donor:{row.donor_id}", f"{channel} chat linked to another",
              at=now)
        return LinkResult("taken", row.donor_id, locale)
    row.used_at = now
    s.add(row)
    mine = (await s.exec(select(DonorChannel).where(DonorChannel.donor_id == row.donor_id,
                                                    DonorChannel.channel == channel))).first()
    if mine is None:
        last = (await s.exec(select(func.max(DonorChannel.rank)).where(
            DonorChannel.donor_id == row.donor_id))).one()
        mine = DonorChannel(donor_id=row.donor_id, channel=channel, address=address,
                            rank=0 if last is None else last + 1, created_at=now)
    elif mine.address != address:
        mine.consent_at = mine.consent_policy_version = None  # a new chat: agreed to anew
    mine.address, mine.unreachable_at = address, None
    s.add(mine)
    audit(s, "system", "channel_linked", f"donor:{row.donor_id}", channel, at=now)
    return LinkResult("linked", row.donor_id, locale)


async def record_consent(s: AsyncSession, ch: DonorChannel, *, now: datetime, policy_version: str) -> None:
    ch.consent_at, ch.consent_policy_version, ch.unreachable_at = now, policy_version, None
    s.add(ch)
    audit(s, "system", "channel_consent", f"donor:{ch.donor_id}", f"{ch.channel} policy {policy_version}", at=now)


async def unlink(s: AsyncSession, donor_id: int, channel: str, *, actor: int | str | None, now: datetime) -> bool:
    """Forget her ``channel``; False when it was not linked. The caller commits."""
    row = (await s.exec(select(DonorChannel).where(DonorChannel.donor_id == donor_id,
                                                   DonorChannel.channel == channel))).first()
    if row is None:
        return False
    await s.delete(row)
    audit(s, actor, "channel_unlinked", f"donor:{donor_id}", channel, at=now)
    return True


async def channel_of(s: AsyncSession, donor_id: int, channel: str) -> DonorChannel | None:
    return (await s.exec(select(DonorChannel).where(DonorChannel.donor_id == donor_id,
                                                    DonorChannel.channel == channel))).first()


async def agreed_channels(s: AsyncSession, donor_ids: list[int]) -> dict[int, list[str]]:
    """Each donor's channels she agreed to, in her order (for a lead's view of her members)."""
    found: dict[int, list[str]] = {d: [] for d in donor_ids}
    for i in range(0, len(donor_ids), 500):
        rows = (await s.exec(select(DonorChannel).where(
            col(DonorChannel.donor_id).in_(donor_ids[i:i + 500]), col(DonorChannel.consent_at).is_not(None))
            .order_by(col(DonorChannel.rank), col(DonorChannel.id)))).all()
        for row in rows:
            found[row.donor_id].append(row.channel)
    return found


__all__ = ["LinkResult", "agreed_channels", "channel_of", "code_hash", "is_consent", "issue_code",
           "record_consent", "redeem", "unlink"]
