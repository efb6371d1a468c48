"""Decoding Bot API request parameters.

The Bot API accepts the same parameters as a query string, as
``application/x-www-form-urlencoded``, as ``application/json`` and as
``multipart/form-data``. aiogram always sends forms: every value is a string,
nested objects (``reply_markup``, ``allowed_updates``, ...) are JSON *strings*,
booleans are ``"true"``/``"false"``, and uploaded files travel as separate
parts referenced by ``attach://<name>``. The server types values by the
parameter's name, which is what this module does, so handlers can work with
ints, floats, bools and dicts regardless of how the client encoded them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import BotAPIError, bad_request

_JSON_FIELDS = frozenset(
    {
        "reply_markup", "entities", "caption_entities", "allowed_updates", "commands",
        "scope", "menu_button", "link_preview_options", "reply_parameters", "message_ids",
        "media",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id", "message_id", "offset", "limit", "timeout", "user_id",
        "reply_to_message_id", "cache_time", "message_thread_id", "from_chat_id",
        "live_period", "heading", "proximity_alert_radius", "until_date",
    }
)
_FLOAT_FIELDS = frozenset({"latitude", "longitude", "horizontal_accuracy"})
_BOOL_FIELDS = frozenset(
    {
        "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
        "allow_sending_without_reply", "disable_web_page_preview",
        "disable_content_type_detection", "revoke_messages", "allow_paid_broadcast",
        "has_spoiler",
    }
)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes

    def describe(self) -> dict[str, Any]:
        """What the call log keeps instead of raw bytes."""
        return {"upload": self.filename, "size": len(self.data), "content_type": self.content_type}


def coerce(name: str, value: Any) -> Any:
    """Type one parameter by its name; values already typed (JSON bodies) pass through."""
    if not isinstance(value, str):
        return value
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS:
            # chat_id may also be "@channelusername".
            return int(value) if value.lstrip("-").isdigit() else value
        if name in _FLOAT_FIELDS:
            return float(value)
        if name in _BOOL_FIELDS:
            return value.lower() in ("true", "1")
    except ValueError as exc:
        raise bad_request(f"can't parse {name} JSON object") from exc
    return value


async def read_params(request: web.Request) -> dict[str, Any]:
    """Typed parameters for any supported encoding; uploads appear as :class:`Upload` values."""
    raw: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method == "POST" and request.can_read_body:
        try:
            if request.content_type == "application/json":
                raw.update(_json_object(await request.read()))
            else:
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        uploads[key] = Upload(
                            filename=value.filename or key,
                            content_type=value.content_type or "application/octet-stream",
                            data=value.file.read(),
                        )
                    else:
                        raw[key] = value
        except web.HTTPRequestEntityTooLarge as exc:
            raise BotAPIError(413, "Request Entity Too Large") from exc
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str) and value.startswith("attach://"):
            # aiogram names file parts randomly and points at them with attach://.
            upload = uploads.pop(value[len("attach://") :], None)
            if upload is None:
                raise bad_request("wrong HTTP URL specified")
            params[name] = upload
        else:
            params[name] = coerce(name, value)
    # A part named like the parameter itself (curl -F document=@x.pdf) is the file.
    for name, upload in uploads.items():
        params.setdefault(name, upload)
    return params


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise bad_request("can't parse JSON request body") from exc
    if not isinstance(value, dict):
        raise bad_request("JSON request body must be an object")
    return value


def input_file(params: dict[str, Any], name: str) -> Upload | str:
    """An InputFile parameter: a fresh upload, or the file_id/URL of a known file."""
    value = params.get(name)
    if isinstance(value, Upload) or (isinstance(value, str) and value):
        return value
    raise bad_request(f"there is no {name} in the request")


def loggable(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded in the call log: uploads summarised, everything else as decoded."""
    return {k: (v.describe() if isinstance(v, Upload) else v) for k, v in params.items()}
