"""The Vietnamese catalog keeps up with the code.

Every string the code marks with ``_()`` / ``N_()`` / ``__()`` (and each singular/plural pair of
``_(singular, plural, n)`` / ``Np_()``) must have a Vietnamese
translation (Vietnamese is the default language: an untranslated string reaches a
donor in English), with the same ``{placeholders}`` (a missing or renamed one raises
KeyError at ``.format()``, in the middle of an emergency call) and the same HTML tags
(an unbalanced tag makes Telegram refuse the whole message).

When one of these tests fails after you added or changed a string, run

    .venv/bin/pybabel extract -F babel.cfg -k _:1,2,3t -k N_ -k __ -k Np_:1,2 --no-location --sort-output \\
        -o bot/locales/messages.pot bot dispatcher ground models redreserve
    .venv/bin/pybabel update -i bot/locales/messages.pot -d bot/locales -D messages --no-fuzzy-matching

and translate the listed msgids in bot/locales/vi/LC_MESSAGES/messages.po.
No database, no bot: plain file reading, well under a second.
"""

from __future__ import annotations

import gettext
import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALES_DIR, compile_catalogs

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("bot", "dispatcher", "ground", "models", "redreserve")
# ``_(text)`` and, for a count, ``_(singular, plural, n)`` (aiogram's gettext takes both); ``Np_`` marks a
# pair for ground.i18n.Text.count.
KEYWORDS = {"_": {1: None, 3: (1, 2)}, "N_": None, "__": None, "Np_": (1, 2)}
METHOD_MAP = [("**.py", "python")]
VI_PO = LOCALES_DIR / "vi" / "LC_MESSAGES" / f"{DOMAIN}.po"
TAGS = re.compile(r"</?(?:b|i|code)>")


@cache
def extracted() -> dict[str, tuple[str | None, list[str]]]:
    """msgid -> (its plural form if it has one, where it is used ("bot/keyboards.py:27")), from the code."""
    found: dict[str, tuple[str | None, list[str]]] = {}
    for directory in SOURCE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map=METHOD_MAP, keywords=KEYWORDS
        ):
            msgid, plural = (message[0], message[1]) if isinstance(message, (tuple, list)) else (message, None)
            if msgid:
                found.setdefault(msgid, (plural, []))[1].append(f"{directory}/{filename}:{lineno}")
    return found


@cache
def source_msgids() -> dict[str, list[str]]:
    """msgid (a plural pair by its singular) -> where it is used."""
    return {msgid: where for msgid, (_plural, where) in extracted().items()}


def forms(string: str | tuple[str, ...] | None) -> list[str]:
    """A catalog entry's translation(s): one string, or one per plural form."""
    if isinstance(string, str):
        return [string]
    return list(string or ())


@cache
def vi_catalog() -> Catalog:
    with VI_PO.open("rb") as fp:
        return read_po(fp, locale="vi")


def translations() -> list[tuple[str, str]]:
    """(msgid, Vietnamese) for every source msgid that has a translation (Vietnamese has one plural form)."""
    catalog = vi_catalog()
    pairs = []
    for msgid in sorted(source_msgids()):
        entry = catalog.get(msgid)
        if entry is not None:
            pairs += [(msgid, vi) for vi in forms(entry.string) if vi]
    return pairs


def fields(text: str) -> list[tuple[str, str, str]]:
    """The replacement fields of a str.format() template: (name, conversion, format spec), sorted."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:  # a stray "{" or "}": .format() would raise too
        return [(f"<not a valid template: {err}>", "", "")]
    return sorted({(name, conversion or "", spec or "") for _literal, name, spec, conversion in parsed
                   if name is not None})


def report(problem: str, offenders: list[str]) -> str:
    return f"{len(offenders)} msgid(s) {problem} in {VI_PO.relative_to(ROOT)}:\n" + "\n".join(offenders)


def test_catalog_extraction_finds_the_code_strings():
    ids = source_msgids()
    assert len(ids) > 100, "extraction found almost nothing: has the source layout changed?"
    assert "Keep my profile" in ids and "✅ Confirm" in ids


def test_catalog_every_source_string_has_a_vietnamese_translation():
    catalog = vi_catalog()
    offenders = []
    for msgid, where in sorted(source_msgids().items()):
        entry = catalog.get(msgid)
        if entry is None:
            offenders.append(f"  not in the .po (run extract + update): {msgid!r}  [{where[0]}]")
        elif not all(f.strip() for f in forms(entry.string)) or not forms(entry.string):
            offenders.append(f"  untranslated: {msgid!r}  [{where[0]}]")
        elif (extracted()[msgid][0] is None) != isinstance(entry.string, str):
            offenders.append(f"  singular in one, plural in the other (code or .po): {msgid!r}  [{where[0]}]")
        elif entry.fuzzy:
            offenders.append(f"  fuzzy (check it, then remove the flag): {msgid!r}  [{where[0]}]")
    assert not offenders, report("need a Vietnamese translation", offenders)


def test_catalog_translations_keep_the_placeholders():
    # Vietnamese has one form for every count: it keeps the English plural's fields (the singular may
    # leave the count out: "Thank you for the donation" / "for the {n} donations").
    offenders = [
        f"  {msgid!r}\n      code: {fields(reference)}\n      vi:   {fields(vi)}"
        for msgid, vi in translations()
        for reference in [extracted()[msgid][0] or msgid]
        if fields(reference) != fields(vi)
    ]
    assert not offenders, report("whose Vietnamese placeholders differ from the msgid's", offenders)


def test_catalog_translations_keep_the_html_tags():
    offenders = [
        f"  {msgid!r}\n      code: {TAGS.findall(msgid)}\n      vi:   {TAGS.findall(vi)}"
        for msgid, vi in translations()
        if TAGS.findall(msgid) != TAGS.findall(vi)
    ]
    assert not offenders, report("whose Vietnamese HTML tags differ from the msgid's", offenders)


def test_catalog_compiles_and_the_bot_reads_vietnamese():
    compiled = compile_catalogs()
    mo = compiled / "vi" / "LC_MESSAGES" / f"{DOMAIN}.mo"
    assert mo.exists()
    with mo.open("rb") as fp:
        vi = gettext.GNUTranslations(fp)
    assert vi.gettext("✅ Confirm") == "✅ Xác nhận"
    assert vi.gettext("Continue ➡️") == "Tiếp tục ➡️"
    assert "Lưu hồ sơ" in vi.gettext("Keep my profile")
    assert (vi.gettext("Male"), vi.gettext("Female")) == ("Nam", "Nữ")


def test_catalog_labels_the_vietnamese_registration_relies_on():
    """The button labels and texts tests/test_journey_registration.py taps and reads."""
    catalog = vi_catalog()

    def vi(msgid: str) -> str:
        entry = catalog.get(msgid)
        return entry.string if entry is not None and isinstance(entry.string, str) else ""

    assert "chưa" in vi("I have never given blood")
    assert vi("🩸 Thank you, {name}! You are now on the reserve list.").startswith("🩸 Cảm ơn")
    assert "họ và tên" in vi("Your full name, as on your ID card:").lower()
    # A tap finds the first button containing the label: no other label on those screens may contain it.
    summary = ["Name", "Blood type", "Sex", "Birth date", "Weight", "Area", "Last donation", "Club", "Cancel"]
    assert not [m for m in summary if "Xác nhận" in vi(m)]
    assert "Nữ" not in vi("Male")
    consent = ["Keep my profile", "Contact me in emergencies", "Use my location"]
    assert not [m for m in consent if "Tiếp tục" in vi(m)]
    assert [m for m in consent if "Lưu hồ sơ" in vi(m)] == ["Keep my profile"]


def catalog_entries(lang: str) -> list[tuple[str, str]]:
    with (LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fp:
        return [(m.id if isinstance(m.id, str) else m.id[0], m.string) for m in read_po(fp, locale=lang) if m.id]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_catalog_keeps_no_entry_the_code_no_longer_uses(lang):
    """A dead entry misleads the translator who reviews the catalog (issue 16 found 19)."""
    used = source_msgids()
    offenders = [f"  {msgid!r}" for msgid, _vi in catalog_entries(lang) if msgid not in used]
    assert not offenders, f"{len(offenders)} entries of the {lang} catalog no code uses (remove them):\n" + \
        "\n".join(offenders)


# One spelling per word, one word per concept: (what must not appear, what the catalog writes instead).
VI_ONE_WAY = [
    ("huỷ", "hủy"), ("Huỷ", "Hủy"), ("xoá", "xóa"), ("Xoá", "Xóa"),
    ("Xin gõ", "Vui lòng nhập"), ("Xin hãy", "Vui lòng"), ("Hãy xin", "Vui lòng nhờ"),
    ("phương án cuối", "lựa chọn cuối cùng"), ("CLB CLB", "CLB"),
]


def test_catalog_vietnamese_writes_each_word_one_way():
    offenders = [f"  {bad!r} (write {good!r}) in {msgid!r}"
                 for msgid, vi in translations() for bad, good in VI_ONE_WAY if bad in vi]
    assert not offenders, report("with a second spelling of a word", offenders)


def test_catalog_the_critical_urgency_is_cap_cuu_everywhere():
    """The menu says "🚨 cấp cứu"; a note that says "post it again as critical" must use the same word."""
    offenders = [f"  {msgid!r}: {vi!r}" for msgid, vi in translations()
                 if "critical" in msgid.lower() and "cấp cứu" not in vi]
    assert not offenders, report("that name the critical urgency without “cấp cứu”", offenders)


# English needs its plurals; a count fills these nouns. A bound placeholder ({max}, {min}, {limit}) names a
# configured maximum, never one.
COUNTED_NOUNS = ("members", "donors", "donations", "units", "days", "months", "hours", "minutes", "uses", "rows",
                 "characters", "years", "times", "parts", "requests", "calls")
COUNTED = re.compile(r"\{(\w+)\}(?: [\w-]+)? (" + "|".join(COUNTED_NOUNS) + r")\b")
BOUNDS = {"max", "min", "limit"}


def test_catalog_an_english_count_goes_through_ngettext():
    """"1 members" reads wrong: a count before a plural noun takes ``_(singular, plural, n)`` or ``Np_``."""
    offenders = [f"  {msgid!r}  [{where[0]}]" for msgid, (plural, where) in sorted(extracted().items())
                 if plural is None and any(m.group(1) not in BOUNDS for m in COUNTED.finditer(msgid))]
    assert not offenders, f"{len(offenders)} msgid(s) put a count before a plural noun without ngettext:\n" + \
        "\n".join(offenders)


def test_catalog_english_plural_forms_are_written_out():
    """An English plural entry with empty forms would compile to an empty message: each form is spelled."""
    with (LOCALES_DIR / "en" / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fp:
        empty = [f"  {m.id[0]!r}" for m in read_po(fp, locale="en") if isinstance(m.id, tuple)
                 and not all(forms(m.string))]
    assert not empty, "English plural entries need both forms written:\n" + "\n".join(empty)
