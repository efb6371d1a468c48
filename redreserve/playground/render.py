"""Chat messages as the web page shows them, with the bot's formatting made safe.

The simulator stores what Telegram stores: plain text plus entities (the bot's
``parse_mode=HTML`` already parsed, offsets in UTF-16 units). Rebuilding HTML from
the entities means only tags chosen here can ever reach the page: every character
of text is escaped, and a donor named ``<script>`` is just text.
"""

from __future__ import annotations

import html
import re
from typing import Any

# Entity type → the one tag the page uses for it (Telegram's HTML set, nothing more).
_TAGS = {
    "bold": "b", "italic": "i", "underline": "u", "strikethrough": "s",
    "code": "code", "pre": "pre", "blockquote": "blockquote",
}
_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")
_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


def _open_tag(entity: dict[str, Any], units: list[int], start: int, end: int) -> tuple[str, str]:
    kind = entity.get("type")
    if kind in _TAGS:
        tag = _TAGS[kind]
        return f"<{tag}>", f"</{tag}>"
    if kind == "spoiler":
        return '<span class="spoiler">', "</span>"
    if kind in ("text_link", "url"):
        url = entity.get("url") if kind == "text_link" else _decode(units[start:end])
        if url and url.lower().startswith(_SAFE_SCHEMES):
            return (f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">', "</a>")
        return "", ""
    if kind == "text_mention":
        return '<span class="mention">', "</span>"
    return "", ""  # bot_command and the rest: plain text (commands are found in _text below)


def _decode(units: list[int]) -> str:
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", errors="replace")


def _text(units: list[int], *, commands: bool) -> str:
    """Escaped text; /commands become tappable, as Telegram clients make them."""
    text = _decode(units)
    if not commands:
        return html.escape(text, quote=False)
    out, last = [], 0
    for m in _COMMAND.finditer(text):
        out.append(html.escape(text[last:m.start()], quote=False))
        out.append(f'<span class="cmd">{html.escape(m.group(), quote=False)}</span>')
        last = m.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def render_html(text: str, entities: list[dict[str, Any]] | None = None) -> str:
    """Safe HTML for a message text and its entities; improperly nested entities are clipped."""
    data = text.encode("utf-16-le")
    units = [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]
    spans = []
    for e in entities or []:
        start = max(0, int(e.get("offset", 0)))
        end = min(len(units), start + max(0, int(e.get("length", 0))))
        if end > start:
            spans.append((start, end, e))
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    stack: list[tuple[int, str, bool]] = []  # (end, closing tag, is code-like)
    pos = 0

    def flush(upto: int) -> None:
        nonlocal pos
        if upto > pos:
            out.append(_text(units[pos:upto], commands=not any(code for _, _, code in stack)))
            pos = upto

    def close_until(at: int) -> None:
        while stack and stack[-1][0] <= at:
            flush(stack[-1][0])
            out.append(stack.pop()[1])

    for start, end, entity in spans:
        close_until(start)
        flush(start)
        if stack:
            end = min(end, stack[-1][0])  # a span crossing its parent's end is cut there
        opening, closing = _open_tag(entity, units, start, end)
        out.append(opening)
        stack.append((end, closing, entity.get("type") in ("code", "pre", "text_link", "url")))
    close_until(len(units))
    flush(len(units))
    return "".join(out)


def message_view(message: dict[str, Any], *, from_bot: bool) -> dict[str, Any]:
    """One message as the page's JSON: the safe HTML plus what the page draws around it."""
    view: dict[str, Any] = {
        "id": message["message_id"],
        "from_bot": from_bot,
        "date": message.get("date"),
        "edited": "edit_date" in message,
    }
    if "text" in message:
        view["html"] = render_html(message["text"], message.get("entities"))
    if message.get("caption"):
        view["caption_html"] = render_html(message["caption"], message.get("caption_entities"))
    if "venue" in message:
        venue = message["venue"]
        view["venue"] = {"title": venue.get("title", ""), "address": venue.get("address", ""),
                         "lat": venue["location"]["latitude"], "lon": venue["location"]["longitude"]}
    elif "location" in message:
        view["location"] = {"lat": message["location"]["latitude"], "lon": message["location"]["longitude"]}
    if "contact" in message:
        contact = message["contact"]
        view["contact"] = {"phone": contact.get("phone_number", ""),
                           "name": " ".join(filter(None, [contact.get("first_name"), contact.get("last_name")]))}
    if "document" in message:
        doc = message["document"]
        view["document"] = {"file_id": doc["file_id"], "name": doc.get("file_name") or "file",
                            "size": doc.get("file_size", 0)}
    markup = message.get("reply_markup") or {}
    if from_bot and markup.get("inline_keyboard"):
        view["buttons"] = [[_inline_button(b) for b in row] for row in markup["inline_keyboard"]]
    if from_bot and markup.get("keyboard"):
        view["reply_keyboard"] = True  # the keyboard itself is chat state, shown under the text box
    return view


def _inline_button(button: dict[str, Any]) -> dict[str, Any]:
    out = {"text": button.get("text", "")}
    if "callback_data" in button:
        out["data"] = button["callback_data"]
    url = button.get("url")
    if url and url.lower().startswith(_SAFE_SCHEMES):
        out["url"] = url
    return out


def reply_keyboard_view(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reply keyboard under the text box: each button sends text, the phone or a location."""
    if not markup or not markup.get("keyboard"):
        return None
    rows = []
    for row in markup["keyboard"]:
        buttons = []
        for b in row:
            b = {"text": b} if isinstance(b, str) else b
            kind = "contact" if b.get("request_contact") else "location" if b.get("request_location") else "text"
            buttons.append({"text": b.get("text", ""), "kind": kind})
        rows.append(buttons)
    return {"rows": rows, "one_time": bool(markup.get("one_time_keyboard")),
            "placeholder": markup.get("input_field_placeholder") or ""}
