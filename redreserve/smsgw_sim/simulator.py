"""``SmsGatewaySimulator``: SMS Gateway for Android on localhost, in the style of redreserve.botapi_sim.

The product's adapter (bot.sms_gateway) talks to it over HTTP exactly as to a club's phone: basic
authentication, ``POST /3rdparty/v1/messages``, its status codes. Tests play the phones: they read
what was sent (``sent``, ``texts_to``), make the gateway fail (``fail_next``, ``down``, numbers it
cannot reach), slow it down (``delay_s``), and send an SMS *to* the club (``receive``), which the
simulator posts to the registered webhook signed as the app signs it.

Typical use::

    async with SmsGatewaySimulator(webhook_url=url, signing_key="k") as gw:
        gateway = AndroidSmsGateway(session, gw.base_url, gw.username, gw.password)
        ...
        assert await gw.receive("+84912345678", "CO 12") == 200
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bot.sms_gateway import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from ground.sms_text import count_parts

API_PREFIX = "/3rdparty/v1"


@dataclass(frozen=True)
class SimSms:
    id: str
    phone: str
    text: str
    parts: int
    encoding: str
    at: float


@dataclass
class _Failure:
    status: int
    message: str
    retry_after: int | None
    count: int


class SmsGatewaySimulator:
    def __init__(self, *, username: str = "club", password: str = "sim-password", signing_key: str = "sim-signing",
                 webhook_url: str | None = None, delay_s: float = 0.0):
        self.username, self.password, self.signing_key = username, password, signing_key
        self.webhook_url = webhook_url
        self.delay_s = delay_s  # each send takes this long (a phone handing the SMS to its modem)
        self.down = False  # every call answers 503: the phone is off or out of network
        self.unreachable: set[str] = set()  # numbers the gateway refuses ("invalid phone number")
        self.sent: list[SimSms] = []
        self.refused = 0  # sends answered with an error
        self._failures: list[_Failure] = []
        self._ids: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_post(f"{API_PREFIX}/messages", self._send)
        app.router.add_post(f"{API_PREFIX}/webhooks", self._register_webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SmsGatewaySimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    # ---------------------------------------------------------------- what tests do
    def fail_next(self, status: int = 500, message: str = "internal error", *, count: int = 1,
                  retry_after: int | None = None) -> None:
        self._failures.append(_Failure(status, message, retry_after, count))

    def texts_to(self, phone: str) -> list[str]:
        return [m.text for m in self.sent if m.phone == phone]

    async def receive(self, phone: str, text: str, *, event_id: str | None = None,
                      signing_key: str | None = None, timestamp: int | None = None) -> int:
        """An SMS from ``phone`` arrives at the club's phone: the ``sms:received`` webhook is posted, signed
        with the signing key (or ``signing_key``, to forge one). Returns the webhook's HTTP status."""
        if self.webhook_url is None:
            raise RuntimeError("no webhook registered")
        event = {"deviceId": "sim-device", "event": "sms:received", "id": event_id or uuid.uuid4().hex,
                 "webhookId": "sim-webhook",
                 "payload": {"messageId": uuid.uuid4().hex[:8], "message": text, "phoneNumber": phone,
                             "simNumber": 1, "receivedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000+07:00")}}
        return await self.post_event(event, signing_key=signing_key, timestamp=timestamp)

    async def post_event(self, event: dict[str, Any], *, signing_key: str | None = None,
                         timestamp: int | None = None) -> int:
        assert self.webhook_url is not None
        body = json.dumps(event, ensure_ascii=False).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts,
                   SIGNATURE_HEADER: sign(self.signing_key if signing_key is None else signing_key, body, ts)}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.webhook_url, data=body, headers=headers) as resp:
                return resp.status

    # ---------------------------------------------------------------- the API
    def _authorized(self, request: web.Request) -> bool:
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return kind == "Basic" and (login, password) == (self.username, self.password)

    async def _register_webhook(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        body = await request.json()
        if body.get("event") == "sms:received":
            self.webhook_url = str(body["url"])
        return web.json_response({"id": "sim-webhook", **body}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        if self.down:
            self.refused += 1
            return web.json_response({"message": "device is offline"}, status=503)
        if self._failures:
            f = self._failures[0]
            f.count -= 1
            if f.count <= 0:
                self._failures.pop(0)
            self.refused += 1
            headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else None
            return web.json_response({"message": f.message}, status=f.status, headers=headers)
        try:
            body = await request.json()
            text = str(body["textMessage"]["text"])
            phones = [str(p) for p in body["phoneNumbers"]]
            msg_id = str(body.get("id") or uuid.uuid4().hex)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"message": "invalid request"}, status=400)
        if msg_id in self._ids:
            return web.json_response({"message": "message with this id already exists"}, status=409)
        bad = [p for p in phones if p in self.unreachable or not (p.startswith("+") and p[1:].isdigit())]
        if bad:
            self.refused += 1
            return web.json_response({"message": f"invalid phone number: {bad[0]}"}, status=400)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self._ids.add(msg_id)
        parts = count_parts(text)
        for phone in phones:
            self.sent.append(SimSms(msg_id, phone, text, parts.parts, parts.encoding, time.monotonic()))
        return web.json_response({"id": msg_id, "state": "Pending", "isHashed": False, "isEncrypted": False,
                                  "recipients": [{"phoneNumber": p, "state": "Pending"} for p in phones]},
                                 status=202)


__all__ = ["SimSms", "SmsGatewaySimulator"]
