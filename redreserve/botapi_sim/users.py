"""The users' side of the simulator: what a donor or coordinator does in Telegram.

Each action stores the user's message in the chat (so the chat reads like the
real one) and queues the Update a bot would receive, returning it. Telegram
rules that depend on the user live here: a private chat opens only when the
user writes in it, and writing again implies unblocking the bot.
"""

from __future__ import annotations

import copy
from typing import Any

from .entities import bot_command_entities
from .state import GROUP_TYPES, PRIVATE, CallbackRecord, World, api_view


def _caption(caption: str | None) -> dict[str, Any]:
    if not caption:
        return {}
    entities = bot_command_entities(caption)
    return {"caption": caption, **({"caption_entities": entities} if entities else {})}


class SimulatedUsers:
    """Mixin for :class:`~.simulator.BotAPISimulator`; needs ``world`` and ``_push``."""

    world: World
    group_privacy: bool
    withheld: list[dict[str, Any]]

    def _push(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def block(self, user_id: int) -> None:
        """The user blocks the bot: later sends to them get 403 until :meth:`unblock`."""
        self.world.blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self.world.blocked.discard(user_id)

    def add_user(
        self, user_id: int, *, first_name: str | None = None, username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """Make a user known (e.g. imported from a club roster) without starting the bot."""
        return copy.deepcopy(self.world.upsert_user(
            user_id, first_name=first_name, username=username, language_code=language_code
        ))

    def start_chat(
        self, user_id: int, *, first_name: str | None = None, language_code: str | None = None
    ) -> None:
        """As if the user had pressed Start some time ago: the bot may now message them.

        For seeding a simulated roster without pushing an update (and a reply) per person.
        """
        user = self.world.upsert_user(user_id, first_name=first_name, language_code=language_code)
        self.world.upsert_chat(user_id, PRIVATE, user=user)
        self._open_private_chat(user_id)

    def _user_message(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        chat_id: int | None,
        chat_type: str,
        chat_title: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        if chat_type == PRIVATE and chat_id != user_id:
            raise ValueError("a private chat's id is the user's id")
        if chat_type != PRIVATE and chat_type not in GROUP_TYPES:
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        user = self.world.upsert_user(
            user_id, first_name=first_name, last_name=last_name, username=username,
            language_code=language_code,
        )
        self.world.upsert_chat(chat_id, chat_type, user=user, title=chat_title)
        if chat_type == PRIVATE:
            self._open_private_chat(user_id)
        if reply_to_message_id is not None:
            original = self.world.get_message(chat_id, reply_to_message_id)
            if original is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
            # As the Bot API shows it: inline keyboards only (a ForceReply is not echoed), one level deep.
            quoted = api_view(original)
            quoted.pop("reply_to_message", None)
            content = {**content, "reply_to_message": quoted}
        message = self.world.add_message(chat_id, user, content)
        if chat_type != PRIVATE and self.group_privacy and not self.meant_for_bot(message):
            # Privacy mode: the people in the group see it, the bot never hears of it.
            # The returned "update" has no update_id: there is nothing to wait for.
            withheld = {"message": copy.deepcopy(message)}
            self.withheld.append(withheld)
            return copy.deepcopy(withheld)
        return self._push({"message": copy.deepcopy(message)})

    def meant_for_bot(self, message: dict[str, Any]) -> bool:
        """What a bot in privacy mode receives from a group (Bot API, "Privacy mode"):
        a command not addressed to another bot, or a reply to one of the bot's messages."""
        reply_to = message.get("reply_to_message")
        if reply_to is not None and self.world.is_from_bot(reply_to):
            return True
        text = message.get("text") or message.get("caption") or ""
        if not text.startswith("/"):
            return False
        command = text.split(maxsplit=1)[0]
        _name, _at, mention = command.partition("@")
        return not mention or mention.lower() == (self.world.bot_user.get("username") or "").lower()

    def _open_private_chat(self, user_id: int) -> None:
        # Writing to a bot is what allows it to write back. Sending a message
        # also implies the user unblocked it (Telegram clients do that).
        self.world.started.add(user_id)
        self.world.blocked.discard(user_id)

    def push_message(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        first_name: str | None = None,
        language_code: str | None = None,
        chat_type: str = PRIVATE,
        username: str | None = None,
        *,
        last_name: str | None = None,
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends ``text``; commands ("/start x") get bot_command entities like in clients.

        Profile fields left as None keep their previous value; a new user is
        "User <id>" speaking "vi".
        Only updates in the *private* chat open it for the bot; writing in a
        group does not let the bot message the user privately, as on Telegram.
        In a group under privacy mode (the default) only commands for this bot and
        replies to its messages (``reply_to_message_id``) are delivered.
        """
        content: dict[str, Any] = {"text": text}
        entities = bot_command_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(
            user_id, content, chat_id=chat_id, chat_type=chat_type, chat_title=chat_title,
            first_name=first_name, last_name=last_name, username=username,
            language_code=language_code, reply_to_message_id=reply_to_message_id,
        )

    def push_command(self, user_id: int, command: str, args: str = "", **kwargs: Any) -> dict[str, Any]:
        text = command if command.startswith("/") else f"/{command}"
        return self.push_message(user_id, f"{text} {args}".strip(), **kwargs)

    def push_contact(
        self,
        user_id: int,
        phone_number: str,
        contact_user_id: int | None = None,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """A shared contact. By default the user's own, as a ``request_contact`` button sends it.

        Telegram fills ``user_id`` only for contacts that are Telegram users;
        pass ``contact_user_id=0`` to omit it (a contact typed in by hand).
        """
        user = self.world.upsert_user(user_id)
        contact_user_id = user_id if contact_user_id is None else contact_user_id
        contact = {"phone_number": phone_number, "first_name": first_name or user["first_name"]}
        if last_name:
            contact["last_name"] = last_name
        if contact_user_id:
            contact["user_id"] = contact_user_id
        return self._user_message(user_id, {"contact": contact}, chat_id=chat_id,
                                  chat_type=self._chat_type(user_id, chat_id))

    def push_location(
        self, user_id: int, latitude: float, longitude: float, *, chat_id: int | None = None,
        horizontal_accuracy: float | None = None,
    ) -> dict[str, Any]:
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        return self._user_message(user_id, {"location": location}, chat_id=chat_id,
                                  chat_type=self._chat_type(user_id, chat_id))

    def push_document(
        self,
        user_id: int,
        filename: str,
        data: bytes,
        mime_type: str | None = None,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user uploads a file; the bot can fetch it with getFile + download."""
        sim_file = self.world.add_file(data, filename, mime_type)
        content: dict[str, Any] = {"document": sim_file.as_document(), **_caption(caption)}
        return self._user_message(user_id, content, chat_id=chat_id,
                                  chat_type=self._chat_type(user_id, chat_id))

    def push_photo(
        self, user_id: int, caption: str | None = None, *, chat_id: int | None = None,
        width: int = 1280, height: int = 960,
    ) -> dict[str, Any]:
        """The user sends a photo, maybe with a caption. A caption starting with a command
        ("/urgent O- 1") carries bot_command entities, as clients send them, and no ``text``."""
        sim_file = self.world.add_file(b"\xff\xd8\xff\xe0 simulated jpeg", None, "image/jpeg")
        sizes = [{"file_id": sim_file.file_id, "file_unique_id": sim_file.file_unique_id,
                  "width": w, "height": h, "file_size": sim_file.size}
                 for w, h in ((width // 16, height // 16), (width, height))]
        return self._user_message(user_id, {"photo": sizes, **_caption(caption)}, chat_id=chat_id,
                                  chat_type=self._chat_type(user_id, chat_id))

    def push_callback(
        self, user_id: int, message_id: int, data: str, chat_id: int | None = None, *,
        inaccessible: bool = False,
    ) -> dict[str, Any]:
        """The user presses an inline button of a bot message, sending ``data``.

        ``data`` is not checked against the message's buttons: clients can be
        modified, so bots must treat callback data as untrusted input.
        ``inaccessible``: Telegram does not show the bot the message (it is too old, or
        otherwise unavailable): the query carries an InaccessibleMessage, only the chat,
        the message id and ``date`` 0.
        """
        chat_id = user_id if chat_id is None else chat_id
        message = self.world.get_message(chat_id, message_id)
        if message is None or not self.world.is_from_bot(message):
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        user = self.world.upsert_user(user_id)
        if chat_id == user_id:
            self._open_private_chat(user_id)
        query_id = f"{user_id}{self.world.next_id():08d}"
        self.world.callbacks[query_id] = CallbackRecord(query_id, user_id, chat_id, message_id, data)
        shown = ({"chat": copy.deepcopy(message["chat"]), "message_id": message_id, "date": 0} if inaccessible
                 else api_view(message))
        return self._push({"callback_query": {
            "id": query_id,
            "from": copy.deepcopy(user),
            "message": shown,
            "chat_instance": f"{abs(chat_id)}{self.world.bot_user['id']}",
            "data": data,
        }})

    def press_button(
        self, user_id: int, text: str, *, chat_id: int | None = None, message_id: int | None = None
    ) -> dict[str, Any]:
        """Press the inline button labelled ``text``.

        Looks in ``message_id`` if given, else in the newest bot message that has such a button.
        """
        chat_id = user_id if chat_id is None else chat_id
        candidates = self.world.messages(chat_id)
        if message_id is not None:
            candidates = [m for m in candidates if m["message_id"] == message_id]
        for message in reversed(candidates):
            if not self.world.is_from_bot(message):
                continue
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            for button in (b for row in rows for b in row):
                if button.get("text") == text:
                    if "callback_data" not in button:
                        raise ValueError(f"button {text!r} is not a callback button: {button}")
                    return self.push_callback(user_id, message["message_id"], button["callback_data"],
                                              chat_id=chat_id)
        raise ValueError(f"no inline button {text!r} in chat {chat_id}")

    def push_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an arbitrary update; re-pushing one with a used ``update_id`` makes
        getUpdates deliver it again, as Telegram does after a lost confirmation."""
        return self._push(copy.deepcopy(update), redeliver="update_id" in update)

    def _chat_type(self, user_id: int, chat_id: int | None) -> str:
        if chat_id is None or chat_id == user_id:
            return PRIVATE
        chat = self.world.chats.get(chat_id)
        return chat["type"] if chat else "supergroup"
