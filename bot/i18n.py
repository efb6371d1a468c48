"""gettext catalogs for the bot, compiled from the .po files when the bot starts.

The .po files are the one source of truth in the repository; compiling them with
Babel at start-up (into a cache folder named by their content hash) means no
build step on a fresh machine and no stale .mo file.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.texts import escape
from ground.i18n import Text

LOCALES_DIR = Path(__file__).parent / "locales"
LOCALES = ("vi", "en")
DOMAIN = "messages"


def compile_catalogs(source: Path = LOCALES_DIR) -> Path:
    pos = {loc: source / loc / "LC_MESSAGES" / f"{DOMAIN}.po" for loc in LOCALES}
    digest = hashlib.sha256()
    for loc, po in pos.items():
        if po.exists():
            digest.update(loc.encode() + po.read_bytes())
    target = Path(tempfile.gettempdir()) / f"redreserve-locales-{digest.hexdigest()[:16]}"
    for loc, po in pos.items():
        mo = target / loc / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if not po.exists() or mo.exists():
            continue
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=loc)
        mo.parent.mkdir(parents=True, exist_ok=True)
        partial = mo.with_suffix(".tmp")
        with partial.open("wb") as fp:
            write_mo(fp, catalog, use_fuzzy=False)
        partial.replace(mo)  # atomic: a concurrent start never reads half a file
    target.mkdir(parents=True, exist_ok=True)
    return target


def make_i18n(default_locale: str = "vi") -> I18n:
    return I18n(path=compile_catalogs(), default_locale=default_locale, domain=DOMAIN)


def render(text: Text, i18n: I18n, locale: str | None = None, *, html: bool = True) -> str:
    """A shared-code message in the current (or given) locale, ready to send as HTML.

    Its parameters often echo what someone typed (a mistyped "<x" quoted back), so
    they are HTML-escaped, in nested Texts too. ``html=False`` is for the plain text
    Telegram shows in an alert.
    """
    def gettext(singular: str, plural: str | None = None, n: int = 1) -> str:
        return i18n.gettext(singular, plural, n, locale=locale)

    return text.render(gettext, escape if html else str)
