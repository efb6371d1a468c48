"""Marking strings for translation outside the bot.

Code that is shared by the bot, the CLI and the importer (parsers, the roster
importer) must not depend on aiogram's request-scoped locale. It marks its
user-facing texts with :func:`N_` so that ``pybabel extract`` finds them, and
the caller translates: the bot through its catalog, the CLI in English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def _same(text: str) -> str:
    return text


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it here."""
    return message


@dataclass(frozen=True)
class Text:
    """A translatable message id with its parameters, rendered by whoever shows it."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, gettext: Callable[[str], str] = _same, escape: Callable[[str], str] = _same) -> str:
        """Translate, then fill in.

        String parameters pass through ``escape`` first: they often echo what someone
        typed, and the bot sends HTML. A parameter that is itself a Text is rendered the
        same way, so what it was given is escaped once and its own markup kept.
        """
        params = {k: v.render(gettext, escape) if isinstance(v, Text) else escape(v) if isinstance(v, str) else v
                  for k, v in self.params.items()}
        return gettext(self.msgid).format(**params)

    def __str__(self) -> str:
        return self.render()
