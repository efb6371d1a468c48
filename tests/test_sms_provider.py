"""The commercial provider's adapter (``[sms] gateway = "http"``), against a tiny provider of our own over HTTP:
the body's fields and the auth header as configured, and each of its answers mapped as the gateway's."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bot.sms_gateway import AndroidSmsGateway, HttpSmsProvider, make_gateway
from dispatcher.sender import PermanentError, RetryAfter, TransientError, Unreachable
from ground.config import ConfigError, Settings, SmsConfig, load_settings


class Provider:
    """Answers each POST with the next (status, body, headers) queued; 200 when none is."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.answers: list[tuple[int, object, dict]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        status, body, headers = self.answers.pop(0) if self.answers else (200, {"id": "p-1", "state": "queued"}, {})
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers, content_type="text/html")
        return web.json_response(body, status=status, headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/sms", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1/sms"


@pytest.fixture
async def provider():
    p = Provider()
    await p.start()
    async with aiohttp.ClientSession() as session:
        cfg = SmsConfig(enabled=True, gateway="http", http={
            "url": p.url, "auth_header": "X-Api-Key", "auth_value": "k-123", "phone_field": "phone",
            "text_field": "content", "id_field": "request_id", "sender_field": "brandname", "sender": "HIENMAU",
            "extra": {"type": "2"}})
        yield p, make_gateway(session, cfg)
    assert p.runner is not None
    await p.runner.cleanup()


async def test_the_body_and_auth_header_are_the_providers_own(provider):
    p, gateway = provider
    assert isinstance(gateway, HttpSmsProvider)
    sent = await gateway.send("+84912345678", "Cần máu gấp", id="abc")
    assert sent.id == "p-1"
    headers, body = p.received[0]
    assert headers["X-Api-Key"] == "k-123"
    assert body == {"type": "2", "phone": "+84912345678", "content": "Cần máu gấp", "request_id": "abc",
                    "brandname": "HIENMAU"}


@pytest.mark.parametrize("status, body, headers, error", [
    (503, {"message": "maintenance"}, {}, TransientError),
    (502, "<html>Bad gateway</html>", {}, TransientError),  # an HTML error page is no crash
    (429, {"message": "slow down"}, {"Retry-After": "7"}, RetryAfter),
    (400, {"message": "invalid phone number"}, {}, Unreachable),
    (422, {"message": "number not reachable"}, {}, Unreachable),
    (401, {"message": "bad key"}, {}, TransientError),
    (400, {"message": "text too long"}, {}, PermanentError),
])
async def test_each_answer_of_the_provider_maps_onto_the_senders_errors(provider, status, body, headers, error):
    p, gateway = provider
    p.answers.append((status, body, headers))
    with pytest.raises(error) as raised:
        await gateway.send("+84912345678", "x", id="abc")
    if error is RetryAfter:
        assert raised.value.seconds == 7.0


async def test_a_repeated_id_the_provider_already_took_is_sent_once(provider):
    p, gateway = provider
    p.answers.append((409, {"message": "duplicate"}, {}))
    assert (await gateway.send("+84912345678", "x", id="abc")).state == "Duplicate"


async def test_a_provider_that_is_down_is_retried_later():
    async with aiohttp.ClientSession() as session:
        gateway = HttpSmsProvider(session, SmsConfig(gateway="http", http={"url": "http://127.0.0.1:9/sms"}).http)
        with pytest.raises(TransientError):
            await gateway.send("+84912345678", "x", id="abc")


async def test_the_android_gateway_stays_the_default_and_http_needs_its_url(tmp_path):
    async with aiohttp.ClientSession() as session:
        assert isinstance(make_gateway(session, Settings().sms), AndroidSmsGateway)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[sms]\nenabled = true\ngateway = "http"\n')
    with pytest.raises(ConfigError, match=r"\[sms.http\] url"):
        load_settings(cfg)
