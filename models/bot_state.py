"""Conversation state kept in the database, so a restart does not drop a half-done flow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from models.tables import utcnow


class FsmRecord(SQLModel, table=True):
    __tablename__ = "fsm_record"

    key: str = Field(primary_key=True)
    state: str | None = None
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    updated_at: datetime = Field(default_factory=utcnow)


class ProcessedUpdate(SQLModel, table=True):
    """Telegram delivers updates at least once (DOMAIN.md §8); a seen update_id is skipped."""

    __tablename__ = "processed_update"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(default_factory=utcnow)
