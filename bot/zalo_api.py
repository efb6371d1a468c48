"""The Zalo Bot Platform's HTTP API (https://bot.zaloplatforms.com/docs): a Telegram-like API.

``{api_url}/bot{token}/{method}`` with a JSON body; every answer is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": n, "description": "..."}``. Chat ids are strings. No buttons: a donor
answers by text. aiohttp, already ours, makes the calls without another dependency.

Errors map onto the sender's (dispatcher.sender) as Telegram's do: 429 waits, 5xx and network errors
are retried, a user who blocked the bot or a chat Zalo does not know (403, 404, 400 naming the chat)
cannot be reached on Zalo, and the call goes on to her next channel or the lead's call list. The
platform does not publish every code; these are the ones its clients handle and our simulator gives.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import aiohttp

from dispatcher.sender import PermanentError, RetryAfter, TransientError, Unreachable

# Zalo posts each webhook update with the secret given to setWebhook in this header.
SECRET_HEADER = "X-Bot-Api-Secret-Token"
# A long poll that saw nothing answers ok=false with this code: not an error.
POLL_TIMEOUT_CODE = 408


def secret_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class ZaloMessage:
    """One message a Zalo user sent the bot, as much of it as RedReserve reads."""

    event: str  # "message.text.received", "message.image.received", …
    message_id: str
    chat_id: str  # where a reply goes; a private chat's id is the user's
    user_id: str
    text: str | None


def parse_update(update: Any) -> ZaloMessage | None:
    """An update from getUpdates or a webhook post, or None when it is not a message at all.
    A webhook body may come wrapped like an API answer (``{"ok": true, "result": {...}}``) or bare."""
    if isinstance(update, dict) and isinstance(update.get("result"), dict):
        update = update["result"]
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    sender = _mapping(message.get("from"))
    chat = _mapping(message.get("chat"))
    user_id = str(sender.get("id") or chat.get("id") or "")
    if not user_id:
        return None
    text = message.get("text")
    return ZaloMessage(event=str(update.get("event_name") or ""), message_id=str(message.get("message_id") or ""),
                       chat_id=str(chat.get("id") or user_id), user_id=user_id,
                       text=text if isinstance(text, str) else None)


class ZaloBotApi:
    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str, *, timeout_s: float = 15.0):
        self.session = session
        self.base = f"{api_url.rstrip('/')}/bot{token}"
        self.timeout_s = timeout_s

    async def call(self, method: str, body: dict[str, Any] | None = None, *, timeout_s: float | None = None) -> Any:
        """One API call; its ``result``, or the error as the sender's exception."""
        data, retry_after = await self._request(method, body, timeout_s)
        if data.get("ok") is True:
            return data.get("result")
        raise _error(method, data, retry_after)

    async def _request(self, method: str, body: dict[str, Any] | None,
                       timeout_s: float | None) -> tuple[dict[str, Any], str | None]:
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        try:
            async with self.session.post(f"{self.base}/{method}", json=body or {}, timeout=timeout) as resp:
                data = await resp.json(content_type=None)
                if isinstance(data, dict) and "error_code" not in data and data.get("ok") is not True:
                    data["error_code"] = resp.status
                return (data if isinstance(data, dict) else {"error_code": resp.status}), \
                    resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # the token is in the URL: the message names the method only
            raise TransientError(f"zalo {method}: {type(exc).__name__}") from exc

    async def get_me(self) -> dict[str, Any]:
        result = await self.call("getMe")
        return result if isinstance(result, dict) else {}

    async def get_updates(self, timeout_s: int = 30) -> list[dict[str, Any]]:
        """Waits up to ``timeout_s`` for what users sent; [] when nothing came (Zalo answers 408 then)."""
        data, retry_after = await self._request("getUpdates", {"timeout": str(timeout_s)}, timeout_s + 10)
        if data.get("ok") is not True:
            if data.get("error_code") == POLL_TIMEOUT_CODE:
                return []
            raise _error("getUpdates", data, retry_after)
        result = data.get("result")
        # one update at a time, or a list of them: both are seen from Zalo clients
        if isinstance(result, list):
            return [u for u in result if isinstance(u, dict)]
        return [result] if isinstance(result, dict) else []

    async def set_webhook(self, url: str, secret_token: str) -> None:
        await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> None:
        await self.call("deleteWebhook")

    async def send_message(self, chat_id: str, text: str) -> str:
        """The sent message's id."""
        result = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return str(result.get("message_id", "")) if isinstance(result, dict) else ""

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> str:
        body = {"chat_id": chat_id, "photo": photo_url, **({"caption": caption} if caption else {})}
        result = await self.call("sendPhoto", body)
        return str(result.get("message_id", "")) if isinstance(result, dict) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error(method: str, data: dict[str, Any], retry_after: str | None) -> Exception:
    code = int(data.get("error_code") or 0)
    description = str(data.get("description") or "")
    params = _mapping(data.get("parameters"))
    if code == 429:
        wait = params.get("retry_after") or (retry_after if retry_after and retry_after.isdigit() else None)
        return RetryAfter(float(wait or 1.0))
    if code in (403, 404) or (code == 400 and "chat" in description.lower()):
        return Unreachable(f"zalo {method}: {code} {description}")
    if code == 401:  # the club's token: retried (someone may fix it), then given up
        return TransientError(f"zalo {method}: 401 {description or 'unauthorized'}")
    if code >= 500 or code in (0, POLL_TIMEOUT_CODE):
        return TransientError(f"zalo {method}: {code} {description}")
    return PermanentError(f"zalo {method}: {code} {description}")


__all__ = ["POLL_TIMEOUT_CODE", "SECRET_HEADER", "ZaloBotApi", "ZaloMessage", "parse_update",
           "secret_ok"]
