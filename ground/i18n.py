"""Marking strings for translation outside the bot.

Code that is shared by the bot, the CLI and the importer (parsers, the roster
importer) must not depend on aiogram's request-scoped locale. It marks its
user-facing texts with :func:`N_` so that ``pybabel extract`` finds them, and
the caller translates: the bot through its catalog, the CLI in English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def _same(text: str, plural: str | None = None, n: int = 1) -> str:
    """English, untranslated: the singular for one, else the plural."""
    return plural if plural is not None and n != 1 else text


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it here."""
    return message


def Np_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a singular and plural pair for extraction (``ngettext``'s), for :meth:`Text.count`."""
    return singular, plural


@dataclass(frozen=True)
class Text:
    """A translatable message id with its parameters, rendered by whoever shows it."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)
    plural: str | None = None  # set by Text.count: the form for any count but one (English)
    n: int = 1  # the count that chooses the form

    @classmethod
    def count(cls, forms: tuple[str, str], n: int, params: dict[str, Any] | None = None) -> "Text":
        """A message whose wording depends on a count: ``Text.count(Np_("{n} row", "{n} rows"), n)``;
        ``{n}`` is filled with the count."""
        return cls(forms[0], {"n": n, **(params or {})}, forms[1], n)

    def render(self, gettext: Callable[..., str] = _same, escape: Callable[[str], str] = _same) -> str:
        """Translate, then fill in.

        String parameters pass through ``escape`` first: they often echo what someone
        typed, and the bot sends HTML. A parameter that is itself a Text is rendered the
        same way, so what it was given is escaped once and its own markup kept.
        """
        params = {k: v.render(gettext, escape) if isinstance(v, Text) else escape(v) if isinstance(v, str) else v
                  for k, v in self.params.items()}
        template = gettext(self.msgid) if self.plural is None else gettext(self.msgid, self.plural, self.n)
        return template.format(**params)

    def __str__(self) -> str:
        return self.render()
