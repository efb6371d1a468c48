"""The call log: every request the bot made, in completion order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class APICall:
    """One Bot API request as the simulator answered it.

    ``params`` are decoded (ints, dicts, ...); uploads are summarised as
    ``{"upload": filename, "size": n, "content_type": ...}`` (the bytes are in
    ``BotAPISimulator.documents()``). ``started_at``/``finished_at`` come from
    ``time.monotonic()``.
    """

    seq: int
    method: str
    params: dict[str, Any]
    token: str
    started_at: float
    finished_at: float
    chat_id: int | str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    cancelled: bool = False  # the client hung up before the answer (a cancelled long poll)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    @property
    def error_code(self) -> int | None:
        return self.error["error_code"] if self.error else None

    @property
    def description(self) -> str | None:
        return self.error["description"] if self.error else None

    def __str__(self) -> str:
        target = f"chat_id={self.chat_id}" if self.chat_id is not None else ""
        text = self.params.get("text")
        if isinstance(text, str):
            target += f", text={text[:40]!r}" if target else f"text={text[:40]!r}"
        if self.cancelled:
            outcome = "cancelled"
        elif self.error:
            outcome = f"{self.error_code} {self.description}"
        else:
            outcome = "ok"
        return f"#{self.seq} {self.method}({target}) -> {outcome}"


def matches(
    call: APICall,
    method: str | Iterable[str] | None,
    chat_id: int | str | None,
    ok: bool | None,
) -> bool:
    if method is not None:
        names = {method.lower()} if isinstance(method, str) else {m.lower() for m in method}
        if call.method.lower() not in names:
            return False
    if chat_id is not None and call.chat_id != chat_id:
        return False
    return ok is None or call.ok == ok
