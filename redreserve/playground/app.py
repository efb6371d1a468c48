"""The playground's web app: a Telegram-like page and the small JSON API it polls.

Every action goes through the Bot API simulator's user side (``push_*``), exactly as
the tests play users, so the real bot cannot tell the page from Telegram. The page
only ever acts as one of the seeded personas.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web

from redreserve.botapi_sim import BotAPISimulator
from redreserve.playground.render import message_view, reply_keyboard_view
from redreserve.playground.seed import Persona

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_UPLOAD = 20 * 1024 * 1024  # a bot may download files up to 20 MB
STATIC = {  # the whole front end: no build step, nothing from the internet
    "index.html": "text/html",
    "playground.css": "text/css",
    "playground.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
# A page that somehow rendered markup could still run nothing: scripts only from this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ApiError(web.HTTPException):
    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


class PlaygroundApi:
    """The page's endpoints: the personas, their chats, and what a persona sends or taps."""

    def __init__(self, sim: BotAPISimulator, personas: list[Persona], places: list[dict[str, Any]]) -> None:
        self.sim, self.personas, self.places = sim, personas, places
        self.by_id = {p.user_id: p for p in personas}

    def persona(self, value: Any) -> Persona:
        try:
            found = self.by_id.get(int(value))
        except (TypeError, ValueError):
            found = None
        if found is None:
            raise ApiError(404, "no such persona")
        return found

    async def index(self, request: web.Request) -> web.Response:
        return _static("index.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return _static(name)

    async def list_personas(self, request: web.Request) -> web.Response:
        rows = []
        for p in self.personas:
            bot_messages = [m for m in self.sim.messages(p.user_id) if self.sim.world.is_from_bot(m)]
            last = bot_messages[-1] if bot_messages else None
            rows.append({**asdict(p), "id": p.user_id, "bot_messages": len(bot_messages),
                         "last": _preview(last) if last else ""})
        me = self.sim.world.bot_user
        return web.json_response({"personas": rows, "places": self.places,
                                  "bot": {"name": me["first_name"], "username": me["username"]}})

    async def chat(self, request: web.Request) -> web.Response:
        p = self.persona(request.match_info["user_id"])
        messages = [message_view(m, from_bot=self.sim.world.is_from_bot(m)) for m in self.sim.messages(p.user_id)]
        notices = [{"id": a["callback_query_id"], "text": a["text"], "alert": bool(a.get("show_alert"))}
                   for a in self.sim.callback_answers(user_id=p.user_id) if a.get("text")]
        keyboard = reply_keyboard_view(self.sim.reply_keyboard(p.user_id))
        if keyboard is not None:
            # Which message brought it: a keyboard sent again is shown again, as clients do.
            keyboard["message_id"] = next((m["id"] for m in reversed(messages)
                                           if m["from_bot"] and m.get("reply_keyboard")), None)
        body = {"messages": messages, "reply_keyboard": keyboard, "notices": notices, "commands": _menu(self.sim, p)}
        # The page polls: an unchanged chat costs one short answer, and edits count as changes.
        version = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        if request.query.get("since") == version:
            return web.json_response({"version": version, "changed": False})
        return web.json_response({"version": version, "changed": True, **body})

    async def send(self, request: web.Request) -> web.Response:
        data = await _json(request)
        p = self.persona(data.get("user_id"))
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "the message is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, f"the message is longer than {MAX_TEXT} characters")
        update = self.sim.push_message(p.user_id, text)
        return web.json_response({"ok": True, "update_id": update["update_id"]})

    async def tap(self, request: web.Request) -> web.Response:
        data = await _json(request)
        p = self.persona(data.get("user_id"))
        if not isinstance(data.get("data"), str) or not isinstance(data.get("message_id"), int):
            raise ApiError(400, "message_id (a number) and data (text) are required")
        try:
            update = self.sim.push_callback(p.user_id, data["message_id"], data["data"])
        except ValueError:
            raise ApiError(404, "no such bot message in this chat") from None
        return web.json_response({"ok": True, "update_id": update["update_id"],
                                  "query_id": update["callback_query"]["id"]})

    async def contact(self, request: web.Request) -> web.Response:
        data = await _json(request)
        p = self.persona(data.get("user_id"))
        # The request_contact button shares the person's own number, never a typed one.
        update = self.sim.push_contact(p.user_id, p.phone, first_name=p.first_name)
        return web.json_response({"ok": True, "update_id": update["update_id"], "phone": p.phone})

    async def location(self, request: web.Request) -> web.Response:
        data = await _json(request)
        p = self.persona(data.get("user_id"))
        lat, lon = _coordinate(data.get("lat"), 90, "latitude"), _coordinate(data.get("lon"), 180, "longitude")
        update = self.sim.push_location(p.user_id, lat, lon)
        return web.json_response({"ok": True, "update_id": update["update_id"]})

    async def upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise ApiError(400, "send the file as multipart/form-data")
        fields: dict[str, Any] = {}
        async for part in await request.multipart():
            if part.name == "file":
                fields["file"] = (part.filename or "roster", part.headers.get("Content-Type"),
                                  await part.read(decode=False))
            elif part.name == "user_id":
                fields["user_id"] = await part.text()
        p = self.persona(fields.get("user_id"))
        if "file" not in fields or not fields["file"][2]:
            raise ApiError(400, "no file, or an empty one")
        name, mime, data = fields["file"]
        update = self.sim.push_document(p.user_id, name, bytes(data), mime_type=mime)
        return web.json_response({"ok": True, "update_id": update["update_id"]})

    async def download(self, request: web.Request) -> web.Response:
        sim_file = self.sim.file(request.match_info["file_id"])
        if sim_file is None:
            raise ApiError(404, "no such file")
        # Always a download, never rendered: a file's bytes are not the page's to interpret.
        name = (sim_file.file_name or "file").replace('"', "")
        return web.Response(body=sim_file.data, content_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{_ascii(name)}"; '
                                                            f"filename*=UTF-8''{_quote(name)}"})



def make_app(sim: BotAPISimulator, personas: list[Persona], places: list[dict[str, Any]]) -> web.Application:
    """``places``: hospitals and clubs to mark on the location map ({name, kind, lat, lon})."""
    api = PlaygroundApi(sim, personas, places)
    app = web.Application(client_max_size=MAX_UPLOAD + 64 * 1024, middlewares=[_headers, _same_origin])
    app.router.add_get("/", api.index)
    app.router.add_get("/static/{name}", api.static)
    app.router.add_get("/api/personas", api.list_personas)
    app.router.add_get("/api/chat/{user_id}", api.chat)
    app.router.add_post("/api/send", api.send)
    app.router.add_post("/api/tap", api.tap)
    app.router.add_post("/api/contact", api.contact)
    app.router.add_post("/api/location", api.location)
    app.router.add_post("/api/upload", api.upload)
    app.router.add_get("/api/file/{file_id}", api.download)
    return app


@web.middleware
async def _headers(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/") and not isinstance(exc, ApiError):
            exc = ApiError(exc.status, exc.reason)  # the page reads every API error as JSON
        exc.headers.update(SECURITY_HEADERS)
        raise exc from None
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _same_origin(request: web.Request, handler) -> web.StreamResponse:
    # Anything on this machine can reach 127.0.0.1: another site open in the browser must
    # not be able to act as a persona with a form post.
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin and origin.split("://", 1)[-1] != request.host:
        raise ApiError(403, "cross-origin requests are refused")
    return await handler(request)


def _static(name: str) -> web.Response:
    body = resources.files("redreserve.playground").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name], charset="utf-8")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _coordinate(value: Any, limit: float, what: str) -> float:
    try:
        number = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{what} must be a number") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise ApiError(400, f"{what} must be between -{limit:g} and {limit:g}")
    return number


def _menu(sim: BotAPISimulator, p: Persona) -> list[dict[str, str]]:
    """The "/" menu this person sees: their own chat's commands, else the default ones, as clients fall back."""
    for scope, language in (({"type": "chat", "chat_id": p.user_id}, p.language),
                            ({"type": "chat", "chat_id": p.user_id}, ""),
                            (None, p.language), (None, "")):
        commands = sim.commands(scope, language)
        if commands:
            return [{"command": c["command"], "description": c["description"]} for c in commands]
    return []


def _preview(message: dict[str, Any]) -> str:
    if "text" in message:
        text = message["text"]
    elif "venue" in message:
        text = "📍 " + message["venue"].get("title", "")
    elif "document" in message:
        text = "📎 " + (message["document"].get("file_name") or "file")
    else:
        text = message.get("caption", "…")
    line = " ".join(text.split())
    return line[:80] + ("…" if len(line) > 80 else "")


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace("?", "_")


def _quote(name: str) -> str:
    return quote(name, safe="")
