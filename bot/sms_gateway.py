"""SMS Gateway for Android's REST API (https://sms-gate.app): send an SMS, check an incoming webhook; and a
commercial provider's HTTP API (``[sms] gateway = "http"``), whose answers map the same way.

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
from ground.config import SmsConfig, SmsHttpConfig

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
        return await _post(self.session, self.url, body, self.headers, self.timeout, id, "sms gateway")


class HttpSmsProvider:
    """A commercial provider's HTTP API, shaped by ``[sms.http]``: one JSON POST per SMS, the auth header
    and the body's field names as the provider documents them; its answers mapped as the gateway's."""

    def __init__(self, session: aiohttp.ClientSession, cfg: SmsHttpConfig, *, timeout_s: float = 15.0):
        self.session = session
        self.cfg = cfg
        self.headers = {cfg.auth_header: cfg.auth_value.get_secret_value()} if cfg.auth_value else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, phone: str, text: str, *, id: str) -> SentSms:
        cfg = self.cfg
        body: dict[str, str] = {**cfg.extra, cfg.phone_field: phone, cfg.text_field: text}
        if cfg.id_field:
            body[cfg.id_field] = id
        if cfg.sender_field and cfg.sender:
            body[cfg.sender_field] = cfg.sender
        return await _post(self.session, cfg.url, body, self.headers, self.timeout, id, "sms provider")


def make_gateway(session: aiohttp.ClientSession, cfg: SmsConfig) -> AndroidSmsGateway | HttpSmsProvider:
    """The gateway ``[sms] gateway`` names."""
    if cfg.gateway == "http":
        return HttpSmsProvider(session, cfg.http)
    return AndroidSmsGateway(session, cfg.api_url, cfg.username, cfg.password.get_secret_value() if cfg.password else "")


async def _post(session: aiohttp.ClientSession, url: str, body: dict, headers: dict[str, str],
                timeout: aiohttp.ClientTimeout, id: str, who: str) -> SentSms:
    try:
        async with session.post(url, json=body, headers=headers, timeout=timeout) as resp:
            status = resp.status
            try:
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
            except ValueError:  # a provider's error page in HTML: its status still says what happened
                data = None
            retry_after = resp.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"{who}: {type(exc).__name__}: {exc}") from exc
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    if status in (200, 201, 202):
        return SentSms(str(data.get("id", id)) if isinstance(data, dict) else id,
                       str(data.get("state", "Pending")) if isinstance(data, dict) else "Pending")
    if status == 409:  # this id was accepted before: sent once, not twice
        return SentSms(id, "Duplicate")
    if status == 429:
        raise RetryAfter(float(retry_after) if retry_after and retry_after.isdigit() else 5.0)
    if status in (400, 422) and ("phone" in message.lower() or "number" in message.lower()):
        raise Unreachable(f"{who}: {message}")
    if status in (401, 403):  # the club's credentials: retried (someone may fix them), then given up
        raise TransientError(f"{who}: {status} {message or 'unauthorized'}")
    if status >= 500:
        raise TransientError(f"{who}: {status} {message}")
    raise PermanentError(f"{who}: {status} {message}")


__all__ = ["AndroidSmsGateway", "HttpSmsProvider", "SentSms", "make_gateway", "message_id", "sign", "signature_ok"]
