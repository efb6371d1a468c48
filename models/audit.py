"""The audit trail (DOMAIN.md §7): who changed access or read personal data, never the data itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import AuditLog


def audit(session: AsyncSession, actor: int | str | None, action: str, subject: str, detail: str = "", *,
          at: datetime | None = None) -> None:
    """Add an audit row to the session; the caller commits it with the change it records.

    ``actor`` is the Telegram id of the person who acted, or a name such as "cli" or
    "system" when no person did (AuditLog's two actor columns); None when nobody is known.
    ``subject`` names ids ("donor:12", "club:3"); ``at`` defaults to now.
    """
    row = AuditLog(actor_telegram_id=actor if isinstance(actor, int) else None,
                   actor=actor if isinstance(actor, str) else "", action=action, subject=subject, detail=detail)
    if at is not None:
        row.at = at
    session.add(row)
