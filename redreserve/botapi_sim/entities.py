"""Text formatting the way the Bot API applies it to outgoing messages.

Why the simulator parses HTML at all: with ``parse_mode=HTML`` Telegram does
not store the markup, it stores plain text plus ``entities`` (offsets counted in
UTF-16 code units), and it *rejects* the whole message when the markup is
malformed, e.g. a user-supplied name containing ``<`` that was not escaped.
Reproducing that rejection is the point: such a bug only shows in production
otherwise. The rules below follow Telegram's own parser (tdlib's ``parse_html``):
only a fixed set of tags, only ``&lt; &gt; &amp; &quot;`` and numeric character
references, tag names case-insensitive, error texts with UTF-8 byte offsets.

Markdown and MarkdownV2 are not parsed; such text is stored as sent.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import BotAPIError, bad_request

_SUPPORTED_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins",
        "tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote",
    }
)
_SIMPLE_TAG_TYPES = {
    "b": "bold", "strong": "bold",
    "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
# tdlib's is_space() also treats NUL as a space; we use it as the end-of-text sentinel.
_SPACES = frozenset(" \t\r\n\v\f\0")
_NAMED_REFERENCES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TG_USER_LINK = re.compile(r"^tg://user\?id=(\d+)$")
# A bot command: "/" + 1-64 of [A-Za-z0-9_], optionally "@botname", not glued to
# a word or to "/", "<", ">" on either side (same rule as Telegram's matcher).
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, so emoji count twice."""
    return len(text.encode("utf-16-le")) // 2


class _HTMLParser:
    """One pass over the text, mirroring tdlib so errors point at the same byte."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        self.u16 = 0
        self.entities: list[dict[str, Any]] = []
        # (tag name, argument, utf16 offset at open, index into self.out at open)
        self.stack: list[tuple[str, str, int, int]] = []

    def char(self, index: int) -> str:
        return self.src[index] if index < len(self.src) else "\0"

    def byte_offset(self, index: int) -> int:
        return len(self.src[:index].encode("utf-8"))

    def error(self, detail: str) -> BotAPIError:
        return bad_request(f"can't parse entities: {detail}")

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.u16 += utf16_len(text)

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if c == "&":
                decoded = self.decode_reference()
                if decoded is not None:
                    self.emit(decoded)
                    continue
            if c != "<":
                self.emit(c)
                self.pos += 1
            elif self.char(self.pos + 1) == "/":
                self.end_tag()
            else:
                self.start_tag()
        if self.stack:
            raise self.error(
                f"Can't find end tag corresponding to start tag {self.stack[-1][0]}"
            )
        for entity in self.entities:
            if entity["type"] == "code":
                entity.pop("language", None)
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def decode_reference(self) -> str | None:
        """Decode ``&...;`` at self.pos; unknown references stay literal text."""
        src, start = self.src, self.pos
        end = start + 1
        if self.char(end) == "#":
            end += 1
            if self.char(end) == "x":
                end += 1
                digits_start = end
                while self.char(end) in "0123456789abcdefABCDEF":
                    end += 1
                digits = src[digits_start:end]
                code = int(digits, 16) if digits else 0
            else:
                digits_start = end
                while self.char(end).isascii() and self.char(end).isdigit():
                    end += 1
                digits = src[digits_start:end]
                code = int(digits) if digits else 0
            if code == 0 or code >= 0x10FFFF or end - start >= 10:
                return None
            decoded = chr(code)
        else:
            while self.char(end).isascii() and self.char(end).isalpha():
                end += 1
            decoded = _NAMED_REFERENCES.get(src[start + 1 : end])
            if decoded is None:
                return None
        self.pos = end + 1 if self.char(end) == ";" else end
        return decoded

    def start_tag(self) -> None:
        begin = self.pos
        i = begin + 1
        while self.char(i) not in _SPACES and self.char(i) != ">":
            i += 1
        if i >= len(self.src):
            raise self.error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        tag = self.src[begin + 1 : i].lower()
        if tag not in _SUPPORTED_TAGS:
            raise self.error(
                f'Unsupported start tag "{tag}" at byte offset {self.byte_offset(begin)}'
            )
        argument = ""
        while self.char(i) != ">":
            while i < len(self.src) and self.char(i) in _SPACES:
                i += 1
            if self.char(i) == ">":
                break
            name_start = i
            while self.char(i) not in _SPACES and self.char(i) != "=":
                i += 1
            name = self.src[name_start:i]
            if not name:
                raise self.error(
                    f'Empty attribute name in the tag "{tag}" at byte offset {self.byte_offset(begin)}'
                )
            while i < len(self.src) and self.char(i) in _SPACES:
                i += 1
            if self.char(i) != "=":
                raise self.error(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {self.byte_offset(begin)}"
                )
            i += 1
            while i < len(self.src) and self.char(i) in _SPACES:
                i += 1
            if i >= len(self.src):
                raise self.error(
                    f'Unclosed start tag "{tag}" at byte offset {self.byte_offset(begin)}'
                )
            value, i = self.attribute_value(i)
            if i >= len(self.src):
                raise self.error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
            if tag == "a" and name == "href":
                argument = value
            elif tag == "code" and name == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and name == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif tag == "tg-emoji" and name == "emoji-id":
                argument = value
        if tag == "span" and argument != "spoiler":
            raise self.error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}'
            )
        self.stack.append((tag, argument, self.u16, len(self.out)))
        self.pos = i + 1

    def attribute_value(self, i: int) -> tuple[str, int]:
        quote = self.char(i)
        if quote not in ("'", '"'):
            start = i
            while self.char(i).isascii() and (self.char(i).isalnum() or self.char(i) in ".-"):
                i += 1
            if self.char(i) not in _SPACES and self.char(i) != ">":
                raise self.error(f"Unexpected end of name token at byte offset {self.byte_offset(start)}")
            return self.src[start:i].lower(), i
        i += 1
        parts: list[str] = []
        while i < len(self.src) and self.src[i] != quote:
            if self.src[i] == "&":
                self.pos = i
                decoded = self.decode_reference()
                if decoded is not None:
                    parts.append(decoded)
                    i = self.pos
                    continue
            parts.append(self.src[i])
            i += 1
        if self.char(i) == quote:
            i += 1
        return "".join(parts), i

    def end_tag(self) -> None:
        begin = self.pos
        if not self.stack:
            raise self.error(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        i = begin + 2
        while self.char(i) not in _SPACES and self.char(i) != ">":
            i += 1
        name = self.src[begin + 2 : i].lower()
        while i < len(self.src) and self.char(i) in _SPACES:
            i += 1
        if self.char(i) != ">":
            raise self.error(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        tag, argument, offset, out_index = self.stack[-1]
        if name and name != tag:
            raise self.error(
                f'Unmatched end tag at byte offset {self.byte_offset(begin)}, '
                f'expected "</{tag}>", found "</{name}>"'
            )
        self.stack.pop()
        self.pos = i + 1
        length = self.u16 - offset
        if length > 0:
            self.add_entity(tag, argument, offset, length, "".join(self.out[out_index:]))

    def add_entity(self, tag: str, argument: str, offset: int, length: int, inner: str) -> None:
        span = {"offset": offset, "length": length}
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and last["offset"] == offset and last["length"] == length
        if tag in _SIMPLE_TAG_TYPES or tag == "span":
            self.entities.append({"type": _SIMPLE_TAG_TYPES.get(tag, "spoiler"), **span})
        elif tag == "tg-emoji":
            if not argument.isdigit() or int(argument) == 0:
                raise bad_request("can't parse entities: Invalid custom emoji identifier specified")
            self.entities.append({"type": "custom_emoji", **span, "custom_emoji_id": argument})
        elif tag == "a":
            url = argument or inner
            user = _TG_USER_LINK.match(url)
            if user:
                # Completed with the user's profile by the caller when it is known.
                self.entities.append(
                    {"type": "text_mention", **span,
                     "user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""}}
                )
            elif url:
                self.entities.append({"type": "text_link", **span, "url": url})
        elif tag == "pre":
            # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
            if same_span and last["type"] == "code" and last.get("language"):
                last["type"] = "pre"
            else:
                self.entities.append({"type": "pre", **span})
        elif tag == "code":
            if same_span and last["type"] == "pre" and argument:
                last["language"] = argument
            else:
                entity = {"type": "code", **span}
                if argument:
                    entity["language"] = argument
                self.entities.append(entity)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities), or raise the 400 Telegram would answer."""
    return _HTMLParser(text).run()


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims surrounding whitespace of message texts and shifts entities to match.

    This matters for "message is not modified" checks and for tests that compare
    the text the user actually sees.
    """
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    limit = utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` / explicit ``entities`` as the server does before storing a text."""
    if entities:
        plain, parsed = text, [dict(e) for e in entities]
    elif parse_mode and parse_mode.lower() == "html":
        plain, parsed = parse_html(text)
    else:
        plain, parsed = text, []
    return strip_text(plain, parsed)


def bot_command_entities(text: str) -> list[dict[str, Any]]:
    """Entities a Telegram client attaches to a user's text such as "/start ref_42"."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _BOT_COMMAND.finditer(text)
    ]
