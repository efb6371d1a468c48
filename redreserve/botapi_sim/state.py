"""What the simulated Telegram knows: users, chats, messages as they look now, files.

Messages are stored *as the user currently sees them*: an edit replaces text
and keyboard in place, a delete removes the message. Tests assert on that
view, because that is what matters to a donor looking at the chat, while the
call log (kept by the simulator) answers "what did the bot do".
"""

from __future__ import annotations

import copy
import itertools
import mimetypes
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

PRIVATE = "private"
GROUP_TYPES = frozenset({"group", "supergroup"})


@dataclass
class SimFile:
    """A file held by the simulated server.

    ``chat_id``/``message_id``/``caption`` are set on the records returned by
    ``BotAPISimulator.documents()``, which describe one sent message each.
    """

    file_id: str
    file_unique_id: str
    file_path: str
    file_name: str | None
    mime_type: str | None
    data: bytes = field(repr=False)
    chat_id: int | None = None
    message_id: int | None = None
    caption: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.file_name:
            document["file_name"] = self.file_name
        if self.mime_type:
            document["mime_type"] = self.mime_type
        return document


@dataclass
class CallbackRecord:
    """A pushed callback query; Telegram accepts exactly one answer per query id."""

    query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: dict[str, Any] | None = None


def api_view(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the Bot API returns it.

    Telegram only echoes *inline* keyboards in Message.reply_markup; reply
    keyboards and ReplyKeyboardRemove are chat state, not message content, and
    aiogram would fail to parse them there. The stored copy keeps whatever the
    bot attached so tests can inspect reply keyboards too.
    """
    view = copy.deepcopy(message)
    markup = view.get("reply_markup")
    if markup is not None and "inline_keyboard" not in markup:
        del view["reply_markup"]
    if "reply_to_message" in view:
        view["reply_to_message"] = api_view(view["reply_to_message"])
    return view


class World:
    def __init__(self, bot_user: dict[str, Any]) -> None:
        self.bot_user = bot_user
        self.users: dict[int, dict[str, Any]] = {}
        self.started: set[int] = set()
        self.blocked: set[int] = set()
        self.chats: dict[int, dict[str, Any]] = {}
        self._messages: defaultdict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self.files: dict[str, SimFile] = {}
        self._files_by_path: dict[str, SimFile] = {}
        self.sent_documents: list[SimFile] = []
        self.sent_photos: list[SimFile] = []
        self.callbacks: dict[str, CallbackRecord] = {}
        self.reply_keyboards: dict[int, dict[str, Any] | None] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    # --- people and chats -------------------------------------------------

    def upsert_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        # New users default to Vietnamese, the language of most donors.
        user = self.users.setdefault(
            user_id,
            {"id": user_id, "is_bot": False, "first_name": f"User {user_id}", "language_code": "vi"},
        )
        for key, value in (
            ("first_name", first_name),
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value is not None:
                user[key] = value
        return user

    def upsert_chat(
        self, chat_id: int, chat_type: str, *, user: dict[str, Any], title: str | None = None
    ) -> dict[str, Any]:
        if chat_type == PRIVATE:
            chat = {"id": chat_id, "type": PRIVATE, "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            existing = self.chats.get(chat_id, {})
            chat = {"id": chat_id, "type": chat_type,
                    "title": title or existing.get("title") or f"Chat {chat_id}"}
        self.chats[chat_id] = chat
        return chat

    def is_group(self, chat_id: int | str) -> bool:
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        return chat is not None and chat["type"] in GROUP_TYPES

    def resolve_chat_id(self, chat_id: int | str) -> int | None:
        """Numeric id for an ``@username`` target, as Telegram accepts both."""
        if isinstance(chat_id, int):
            return chat_id
        name = chat_id.lstrip("@").lower()
        for chat in self.chats.values():
            if chat.get("username", "").lower() == name:
                return chat["id"]
        return None

    # --- messages ---------------------------------------------------------

    def add_message(
        self, chat_id: int, sender: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        # Message ids are per chat and shared by both sides of the conversation.
        self._last_message_id[chat_id] += 1
        message = {
            "message_id": self._last_message_id[chat_id],
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(self.chats[chat_id]),
            "date": int(time.time()),
            **content,
        }
        self._messages[chat_id][message["message_id"]] = message
        return message

    def get_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        return self._messages.get(chat_id, {}).get(message_id)

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        return self._messages.get(chat_id, {}).pop(message_id, None) is not None

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [copy.deepcopy(m) for m in self._messages.get(chat_id, {}).values()]

    def is_from_bot(self, message: dict[str, Any]) -> bool:
        return message.get("from", {}).get("id") == self.bot_user["id"]

    # --- files --------------------------------------------------------------

    def add_file(self, data: bytes, file_name: str | None, mime_type: str | None) -> SimFile:
        n = self.next_id()
        guessed = mimetypes.guess_type(file_name)[0] if file_name else None
        if mime_type in (None, "application/octet-stream") and guessed:
            # Telegram derives the MIME type from the file name, not from the
            # part's Content-Type, which HTTP clients usually leave generic.
            mime_type = guessed
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        sim_file = SimFile(
            file_id=f"BQACAgSim{n:06d}",
            file_unique_id=f"AgADSim{n:06d}",
            file_path=f"documents/file_{n}{extension}",
            file_name=file_name,
            mime_type=mime_type,
            data=data,
        )
        self.files[sim_file.file_id] = sim_file
        self._files_by_path[sim_file.file_path] = sim_file
        return sim_file

    def file_by_path(self, path: str) -> SimFile | None:
        return self._files_by_path.get(path)
