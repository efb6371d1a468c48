"""Bot API error responses, with the exact wording Telegram uses.

Bot code (and aiogram) branches on these strings and codes: aiogram picks its
exception class from the HTTP status and from ``parameters.retry_after``, and
application code often matches descriptions such as "message is not modified"
to decide whether an error is harmless. So the texts here are copied from what
the real server answers, not paraphrased.
"""

from __future__ import annotations

from typing import Any

MESSAGE_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
GET_UPDATES_CONFLICT = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class BotAPIError(Exception):
    """An ``{"ok": false, ...}`` answer; raised inside the simulator, never seen by bot code.

    The HTTP status of the response equals ``error_code``, as on the real
    server: aiogram classifies errors by status (400 → TelegramBadRequest, 403 →
    TelegramForbiddenError, ...), and by ``retry_after`` for 429.
    """

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def to_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        parameters: dict[str, Any] = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def bad_request(detail: str) -> BotAPIError:
    return BotAPIError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> BotAPIError:
    return BotAPIError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> BotAPIError:
    # Telegram repeats the delay in the text *and* in parameters.retry_after;
    # aiogram only reads the latter to raise TelegramRetryAfter.
    return BotAPIError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


def conflict(detail: str) -> BotAPIError:
    return BotAPIError(409, f"Conflict: {detail}")


def method_not_found() -> BotAPIError:
    return BotAPIError(404, "Not Found: method not found")


def injected(error_code: int, description: str | None, retry_after: int | None) -> BotAPIError:
    """Build an error requested through ``fail_next``, filling in Telegram-like defaults."""
    if error_code == 429:
        retry_after = 1 if retry_after is None else retry_after
        if description is None:
            return too_many_requests(retry_after)
    if description is None:
        description = _DEFAULT_DESCRIPTIONS.get(error_code, "Unknown error")
    return BotAPIError(error_code, description, retry_after=retry_after)
