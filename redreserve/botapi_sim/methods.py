"""Bot API methods: validation, Telegram's refusals, and their effect on the world.

Each handler takes the decoded parameters and returns the ``result`` value, or
raises :class:`~.errors.BotAPIError`. Handlers are synchronous except
``getUpdates``; since they never await mid-change, a client disconnecting can
never leave half-applied state.

Order of checks for anything that posts into a chat: can the bot write there
(403/400), is the request well-formed (400), is it within flood limits (429),
and only then is a message id consumed.
"""

from __future__ import annotations

import copy
import inspect
import re
import time
from collections.abc import Callable
from typing import Any

from .entities import format_text, utf16_len
from .errors import (
    conflict,
    MESSAGE_NOT_MODIFIED,
    QUERY_TOO_OLD,
    bad_request,
    forbidden,
    method_not_found,
    too_many_requests,
)
from .limits import RateLimiter
from .webhook import WebhookDelivery
from .params import Upload, input_file
from .state import SimFile, World, api_view
from .updates import UpdateQueue

_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA = 64
_MAX_DOWNLOAD = 20 * 1024 * 1024
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)

Handler = Callable[[dict[str, Any]], Any]


def _require(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty")
    return value


_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _optional(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: params[name] for name in names if params.get(name) is not None}


PHOTO_MAX_BYTES = 10 * 1024 * 1024  # Telegram's limit for a photo upload


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, or None when the bytes are not one (the simulator reads PNG only)."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class BotAPIMethods:
    def __init__(self, world: World, queue: UpdateQueue, limiter: RateLimiter,
                 webhook: WebhookDelivery | None = None) -> None:
        self.world = world
        self.queue = queue
        self.limiter = limiter
        self.webhook = webhook or WebhookDelivery(queue)
        self.violations = 0
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._trivial,
            "close": self._trivial,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendLocation": self._send_location,
            "sendVenue": self._send_venue,
            "sendContact": self._send_contact,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
        }
        self._handlers = {name.lower(): (name, handler) for name, handler in handlers.items()}

    def canonical(self, name: str) -> str:
        """Telegram method names are case-insensitive; the log uses the documented spelling."""
        if name.lower() == "getupdates":
            return "getUpdates"
        entry = self._handlers.get(name.lower())
        return entry[0] if entry else name

    async def call(
        self, name: str, params: dict[str, Any], *, client_alive: Callable[[], bool]
    ) -> Any:
        if name.lower() == "getupdates":
            if self.webhook.active:
                raise conflict("can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
            return await self._get_updates(params, client_alive)
        entry = self._handlers.get(name.lower())
        if entry is None:
            raise method_not_found()
        result = entry[1](params)
        return await result if inspect.isawaitable(result) else result

    # --- service methods ------------------------------------------------------

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self.world.bot_user)

    def _trivial(self, params: dict[str, Any]) -> bool:
        return True  # logOut/close only matter for a real server's sessions

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params)
        if not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.queue.drop_pending()
        allowed = params.get("allowed_updates")
        self.webhook.set(url, str(secret) if secret is not None else None,
                         list(allowed) if allowed is not None else None)
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self.queue.drop_pending()
        await self.webhook.delete()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.webhook.info()

    async def _get_updates(
        self, params: dict[str, Any], client_alive: Callable[[], bool]
    ) -> list[dict[str, Any]]:
        limit = params.get("limit") or 100
        allowed = params.get("allowed_updates")
        return await self.queue.get_updates(
            offset=params.get("offset"),
            limit=min(max(int(limit), 1), 100),
            timeout=max(float(params.get("timeout") or 0), 0.0),
            allowed_updates=list(allowed) if allowed is not None else None,
            client_alive=client_alive,
        )

    # --- access rules ---------------------------------------------------------

    def _writable_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """The chat a bot may post into, or the refusal Telegram gives."""
        chat_id = self.world.resolve_chat_id(_require(params, "chat_id"))
        if chat_id is None:
            raise bad_request("chat not found")
        if chat_id > 0:
            # Bots cannot open private chats: the user must have written first,
            # and blocking the bot closes the chat again.
            if chat_id in self.world.blocked:
                raise forbidden("bot was blocked by the user")
            if chat_id not in self.world.started:
                raise forbidden("bot can't initiate conversation with a user")
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _within_limits(self, chat_id: int) -> None:
        retry_after = self.limiter.check(chat_id, self.world.is_group(chat_id))
        if retry_after is not None:
            self.violations += 1
            raise too_many_requests(retry_after)

    def _count_towards_limits(self, chat_id: int) -> None:
        self.limiter.record(chat_id, self.world.is_group(chat_id))

    # --- building messages ------------------------------------------------------

    def _formatted(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[dict[str, Any]]]:
        plain, parsed = format_text(str(text), parse_mode, entities)
        for entity in parsed:
            if entity["type"] == "text_mention" and entity["user"]["id"] in self.world.users:
                entity["user"] = copy.deepcopy(self.world.users[entity["user"]["id"]])
        limit = _MAX_CAPTION if caption else _MAX_TEXT
        if utf16_len(plain) > limit:
            raise bad_request("message caption is too long" if caption else "message is too long")
        return plain, parsed

    def _text_content(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text")
        if text is None or text == "":
            raise bad_request("message text is empty")
        plain, entities = self._formatted(text, params.get("parse_mode"), params.get("entities"))
        if not plain:
            raise bad_request("message text is empty")
        content: dict[str, Any] = {"text": plain}
        if entities:
            content["entities"] = entities
        return content

    def _caption_content(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("caption"):
            return {}
        plain, entities = self._formatted(
            params["caption"], params.get("parse_mode"), params.get("caption_entities"), caption=True
        )
        content: dict[str, Any] = {"caption": plain} if plain else {}
        if entities:
            content["caption_entities"] = entities
        return content

    @staticmethod
    def _checked_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if inline_only:
                raise bad_request("inline keyboard expected")
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for row in rows:
            for button in row:
                if not button.get("text"):
                    raise bad_request("BUTTON_TEXT_INVALID")
                if len(button) == 1:
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                # The limit is in bytes: Vietnamese text in callback_data hits it early.
                if data is not None and not 1 <= len(data.encode("utf-8")) <= _MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
        if not any(rows):
            return None  # an empty inline keyboard is the same as none
        return markup

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or params.get("reply_to_message_id")
        if not message_id:
            return {}
        original = self.world.get_message(chat_id, int(message_id))
        if original is None:
            allowed = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
            if allowed:
                return {}
            raise bad_request("message to be replied not found")
        original = copy.deepcopy(original)
        original.pop("reply_to_message", None)  # Telegram nests only one level
        return {"reply_to_message": original}

    def _post(self, chat: dict[str, Any], params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        """Store a new bot message once every check passed; returns the API view."""
        chat_id = chat["id"]
        markup = self._checked_markup(params.get("reply_markup"))
        content = {**self._reply_to(chat_id, params), **content}
        self._within_limits(chat_id)
        if markup is not None:
            content["reply_markup"] = markup
            if "keyboard" in markup:
                self.world.reply_keyboards[chat_id] = markup
            elif markup.get("remove_keyboard"):
                self.world.reply_keyboards[chat_id] = None
        message = self.world.add_message(chat_id, self.world.bot_user, content)
        self._count_towards_limits(chat_id)
        return api_view(message)

    # --- sending ----------------------------------------------------------------

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        return self._post(chat, params, self._text_content(params))

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        document = input_file(params, "document")
        if isinstance(document, Upload):
            sim_file = self.world.add_file(document.data, document.filename, document.content_type)
        else:
            sim_file = self.world.files.get(document)
            if sim_file is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        content = {"document": sim_file.as_document(), **self._caption_content(params)}
        message = self._post(chat, params, content)
        self.world.sent_documents.append(
            SimFile(**{**vars(sim_file), "chat_id": chat["id"],
                       "message_id": message["message_id"], "caption": message.get("caption")})
        )
        return message

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        """A photo upload: Telegram refuses what it cannot read as an image and over-size pictures."""
        chat = self._writable_chat(params)
        photo = input_file(params, "photo")
        if not isinstance(photo, Upload):
            raise bad_request("wrong file identifier/HTTP URL specified")
        size = png_size(photo.data)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if len(photo.data) > PHOTO_MAX_BYTES or width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        sim_file = self.world.add_file(photo.data, photo.filename, photo.content_type)
        content = {"photo": [{"file_id": sim_file.file_id, "file_unique_id": sim_file.file_unique_id,
                              "width": width, "height": height, "file_size": sim_file.size}],
                   **self._caption_content(params)}
        message = self._post(chat, params, content)
        self.world.sent_photos.append(
            SimFile(**{**vars(sim_file), "chat_id": chat["id"],
                       "message_id": message["message_id"], "caption": message.get("caption")}))
        return message

    def _send_location(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        location = {"latitude": _require(params, "latitude"), "longitude": _require(params, "longitude"),
                    **_optional(params, "horizontal_accuracy", "live_period", "heading")}
        return self._post(chat, params, {"location": location})

    def _send_venue(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        location = {"latitude": _require(params, "latitude"), "longitude": _require(params, "longitude")}
        venue = {"location": location, "title": _require(params, "title"),
                 "address": _require(params, "address"),
                 **_optional(params, "foursquare_id", "foursquare_type",
                             "google_place_id", "google_place_type")}
        # A venue message carries the bare location too.
        return self._post(chat, params, {"venue": venue, "location": dict(location)})

    def _send_contact(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        contact = {"phone_number": _require(params, "phone_number"),
                   "first_name": _require(params, "first_name"),
                   **_optional(params, "last_name", "vcard")}
        return self._post(chat, params, {"contact": contact})

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        self._writable_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    # --- changing and removing messages -------------------------------------------

    def _editable_message(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline mode is not simulated
        chat_id = self.world.resolve_chat_id(_require(params, "chat_id"))
        if chat_id is not None and chat_id in self.world.blocked:
            raise forbidden("bot was blocked by the user")
        message_id = params.get("message_id")
        message = self.world.get_message(chat_id, message_id) if chat_id is not None else None
        if message is None or message_id is None:
            raise bad_request("message to edit not found")
        if not self.world.is_from_bot(message):
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: dict[str, Any], changes: dict[str, Any], markup: Any) -> dict[str, Any]:
        current = {key: message.get(key) for key in changes}
        if current == changes and message.get("reply_markup") == markup:
            raise bad_request(MESSAGE_NOT_MODIFIED)
        chat_id = message["chat"]["id"]
        self._within_limits(chat_id)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = max(message["date"], int(time.time()))
        self._count_towards_limits(chat_id)
        return api_view(message)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable_message(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        content = self._text_content(params)
        # Omitting reply_markup in an edit removes the inline keyboard: a
        # classic source of buttons that vanish after the first update.
        markup = self._checked_markup(params.get("reply_markup"), inline_only=True)
        changes = {"text": content["text"], "entities": content.get("entities")}
        return self._apply_edit(message, changes, markup)

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable_message(params)
        markup = self._checked_markup(params.get("reply_markup"), inline_only=True)
        return self._apply_edit(message, {}, markup)

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self.world.resolve_chat_id(_require(params, "chat_id"))
        message_id = params.get("message_id")
        if chat_id is None or message_id is None or not self.world.delete_message(chat_id, message_id):
            raise bad_request("message to delete not found")
        return True

    def _delete_messages(self, params: dict[str, Any]) -> bool:
        chat_id = self.world.resolve_chat_id(_require(params, "chat_id"))
        if chat_id is None:
            raise bad_request("chat not found")
        # Unlike deleteMessage, missing messages are skipped silently.
        for message_id in _require(params, "message_ids"):
            self.world.delete_message(chat_id, int(message_id))
        return True

    # --- callbacks and files --------------------------------------------------------

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        record = self.world.callbacks.get(str(_require(params, "callback_query_id")))
        # A query can be answered once; a second answer is refused like a stale one.
        if record is None or record.answer is not None:
            raise bad_request(QUERY_TOO_OLD)
        if len(params.get("text") or "") > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = _optional(params, "text", "show_alert", "url", "cache_time")
        return True

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        sim_file = self.world.files.get(str(_require(params, "file_id")))
        if sim_file is None:
            raise bad_request("invalid file_id")
        if sim_file.size > _MAX_DOWNLOAD:
            raise bad_request("file is too big")  # bots may only download up to 20 MB
        return {"file_id": sim_file.file_id, "file_unique_id": sim_file.file_unique_id,
                "file_size": sim_file.size, "file_path": sim_file.file_path}

    # --- commands and menu ------------------------------------------------------------

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        scope_key = ",".join(f"{k}={scope[k]}" for k in sorted(scope))
        return scope_key, params.get("language_code") or ""

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("commands is empty")
        for command in commands:
            name = str(command.get("command", ""))
            # Telegram wants 1-32 lowercase latin letters, digits and underscores.
            if not (1 <= len(name) <= 32) or not all(c.islower() or c.isdigit() or c == "_" for c in name) \
                    or not name.isascii():
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.world.commands[self._commands_key(params)] = copy.deepcopy(commands)
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.world.commands.get(self._commands_key(params), []))

    def commands_for(self, scope: dict[str, Any] | None, language_code: str) -> list[dict[str, Any]]:
        return self._get_my_commands({"scope": scope, "language_code": language_code})

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.world.commands.pop(self._commands_key(params), None)
        return True

    def _set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        chat_id = params.get("chat_id")
        if chat_id is not None and self.world.resolve_chat_id(chat_id) not in self.world.chats:
            raise bad_request("chat not found")
        self.world.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    def _get_chat_menu_button(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        button = self.world.menu_buttons.get(chat_id) or self.world.menu_buttons.get(None)
        return copy.deepcopy(button or {"type": "commands"})

