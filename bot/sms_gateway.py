"""SMS Gateway for Android's REST API (https://sms-gate.app): send an SMS, check an incoming webhook.

A club's spare Android phone with a SIM runs the open-source app; it serves this API itself on the
club's network, or through the project's cloud server. Its Python client (``android-sms-gateway``)
is a thin wrapper over the same calls; aiohttp, already ours, makes them without another dependency.

Errors map onto the sender's (dispatcher.sender): 429 waits, 5xx and network errors are retried,
a 400 is the message's own fault and is not; a number the gateway refuses (400 naming the phone)
cannot be reached by SMS, and the call goes on to her next channel or the lead's call list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import aiohttp

from dispatcher.sender import PermanentError, RetryAfter, TransientError, Unreachable

# The gateway signs each webhook with the signing key: HMAC-SHA256 over the raw body followed by the
# X-Timestamp header (seconds), hex in X-Signature. A post older than this is refused (a replay).
SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
MAX_WEBHOOK_AGE_S = 300


def sign(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                 *, now: float | None = None) -> bool:
    if not secret or not timestamp or not signature:
        return False
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= MAX_WEBHOOK_AGE_S and hmac.compare_digest(sign(secret, body, timestamp), signature.lower())


def message_id(outbox_key: str) -> str:
    """The gateway's message id for an outbox row: the same row sent twice (the at-least-once window,
    dispatcher.sender) is one message to the gateway, which answers 409 the second time."""
    return hashlib.sha256(outbox_key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SentSms:
    id: str
    state: str


class AndroidSmsGateway:
    """``POST {api_url}/messages`` with basic authentication (the app's username and password)."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, username: str, password: str,
                 *, timeout_s: float = 15.0):
        self.session = session
        self.url = api_url.rstrip("/") + "/messages"
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, phone: str, text: str, *, id: str) -> SentSms:
        body = {"id": id, "textMessage": {"text": text}, "phoneNumbers": [phone], "withDeliveryReport": True}
        try:
            async with self.session.post(self.url, json=body, headers=self.headers, timeout=self.timeout) as resp:
                status = resp.status
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"sms gateway: {type(exc).__name__}: {exc}") from exc
        message = (data or {}).get("message", "") if isinstance(data, dict) else ""
        if status in (200, 201, 202):
            return SentSms(str(data.get("id", id)) if isinstance(data, dict) else id,
                           str(data.get("state", "Pending")) if isinstance(data, dict) else "Pending")
        if status == 409:  # this id was accepted before: sent once, not twice
            return SentSms(id, "Duplicate")
        if status == 429:
            raise RetryAfter(float(retry_after) if retry_after and retry_after.isdigit() else 5.0)
        if status == 400 and "phone" in message.lower():
            raise Unreachable(f"sms gateway: {message}")
        if status in (401, 403):  # the club's credentials: retried (someone may fix them), then given up
            raise TransientError(f"sms gateway: {status} {message or 'unauthorized'}")
        if status >= 500:
            raise TransientError(f"sms gateway: {status} {message}")
        raise PermanentError(f"sms gateway: {status} {message}")


__all__ = ["AndroidSmsGateway", "SentSms", "message_id", "sign", "signature_ok"]
