"""One parser per input kind, shared by the bot, the CLI and the roster importer.

Each parser takes what a person typed or what a spreadsheet cell holds (text,
or the int/float/date openpyxl gives) and returns a clean value, or raises
:class:`ParseError` carrying a translatable :class:`~ground.i18n.Text`.
Nothing here may raise anything else on any input: the property tests feed
them garbage.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

from ground.eligibility import age_on
from ground.i18n import N_, Text

__all__ = [
    "ParseError",
    "fold",
    "format_blood_type",
    "format_date",
    "parse_birth_date",
    "parse_blood_type",
    "parse_count",
    "parse_date",
    "parse_future_date",
    "parse_latitude",
    "parse_longitude",
    "parse_name",
    "parse_past_date",
    "parse_phone",
    "parse_sex",
    "parse_telegram_id",
    "parse_weight",
    "quoted",
    "whole_number",
]

MINUS = "\u2212"
MAX_AGE_YEARS = 120
MAX_DONATIONS = 500
MIN_WEIGHT_KG, MAX_WEIGHT_KG = 20.0, 250.0
MAX_NAME_LENGTH = 120
MAX_ADDRESS_LENGTH = 200  # a club's area or a hospital's address: a line on a board, not a letter


class ParseError(ValueError):
    """The input cannot be understood; ``text`` says why, for the person who typed it."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


MAX_QUOTE = 60


def quoted(value: str) -> str:
    """What someone typed, as an error message may quote it back: at most ``MAX_QUOTE`` characters.

    A message may hold 4,096 characters and a typed answer as many: quoting one whole
    would make the reply itself too long to send.
    """
    return value if len(value) <= MAX_QUOTE else value[:MAX_QUOTE - 1] + "…"


def _fail(msgid: str, **params: Any) -> ParseError:
    return ParseError(Text(msgid, {k: quoted(v) if isinstance(v, str) else v for k, v in params.items()}))


# PostgreSQL's INTEGER (an id column) holds 31 bits; SQLite's holds 63. A number from a
# person or a button is looked up in such columns, so it never exceeds the smaller.
MAX_ROW_ID = 2**31 - 1


def whole_number(value: str, *, low: int = 0, high: int = MAX_ROW_ID) -> int | None:
    """ASCII digits making a number from ``low`` to ``high``, or None.

    Every number typed by a person or carried by a button is read here. ``str.isdigit``
    is not enough: it accepts "¹" and "②", which ``int`` refuses, and ``int`` accepts
    twenty digits, which no database column holds.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > len(str(high)) or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if low <= number <= high else None


# Dashes people (and Word, and Excel) put where a minus was meant.
_FOLD_TABLE = str.maketrans({
    "đ": "d", "Đ": "d", MINUS: "-", "\u2010": "-", "\u2011": "-", "\u2012": "-",
    "\u2013": "-", "\u2014": "-", "\ufe63": "-",
})


def fold(value: str) -> str:
    """Lower case, no diacritics, ASCII forms of fullwidth characters, single spaces.

    Vietnamese is often typed without diacritics ("duong" for "dương"), and
    phones type fullwidth or odd dashes; comparing folded forms accepts both.
    """
    value = unicodedata.normalize("NFKD", value)
    value = "".join(ch for ch in value if not unicodedata.combining(ch))
    return " ".join(value.translate(_FOLD_TABLE).casefold().split())


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def format_date(day: date) -> str:
    """DD/MM/YYYY, the way dates are written in Vietnam (UX.md)."""
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


# --- blood type ----------------------------------------------------------------

ABO_GROUPS = ("O", "A", "B", "AB")
_ABO_WORDS = {"o": "O", "0": "O", "a": "A", "b": "B", "ab": "AB"}  # "0" for O is common in Vietnam
_RH_WORDS = {
    "+": "+", "-": "-", "am": "-", "duong": "+",
    "neg": "-", "negative": "-", "pos": "+", "positive": "+",
}
# Words that may surround a blood type without changing it: "nhóm máu O Rh dương tính".
_NOISE_WORDS = {"rh", "tinh", "nhom", "mau", "group", "type", "blood"}
_RH_D = re.compile(r"rh\s*\(?\s*d\s*\)?(?![a-z])")
_BT_TOKEN = re.compile(r"[a-z]+|[0-9]+|[+-]|\S")
_BT_EXAMPLE = N_("“{value}” is not a blood type. Write it like O-, A+, AB Rh−, B dương.")


@lru_cache(maxsize=512)
def _blood_type(value: str) -> tuple[str, str] | Text:
    # A roster has a handful of distinct spellings: caching makes 100,000 rows cheap.
    folded = fold(value)
    if not folded:
        return Text(N_("The blood type is empty. Write it like O-, A+, AB Rh−, B dương."))
    spaced = _RH_D.sub(" rh ", folded).replace("rh", " rh ")
    abo: set[str] = set()
    rh: set[str] = set()
    for token in _BT_TOKEN.findall(spaced):
        if token in _ABO_WORDS:
            abo.add(_ABO_WORDS[token])
        elif token in _RH_WORDS:
            rh.add(_RH_WORDS[token])
        elif token in _NOISE_WORDS or not token.isalnum():
            continue
        else:
            return Text(_BT_EXAMPLE, {"value": value})
    if len(abo) > 1 or len(rh) > 1:
        return Text(_BT_EXAMPLE, {"value": value})
    if not abo and not rh:
        return Text(_BT_EXAMPLE, {"value": value})
    if not abo:
        return Text(N_("“{value}” has no ABO group: write O, A, B or AB with the Rh, like O− or A+."),
                    {"value": value})
    if not rh:
        return Text(N_("“{value}” has no Rh (+ or −). Write it like {abo}+ or {abo} Rh−; "
                       "if the Rh is not known, leave the blood type empty."),
                    {"value": value, "abo": abo.pop()})
    return abo.pop(), rh.pop()


def parse_blood_type(value: Any) -> tuple[str, str]:
    """``"O Rh(D) âm"`` → ``("O", "-")``. The Rh is required: an unknown Rh must not be guessed."""
    result = _blood_type(_as_text(value))
    if isinstance(result, Text):
        raise _fail(result.msgid, **result.params)  # which quotes the value no longer than a message allows
    return result


def format_blood_type(abo: str, rh: str, *, rh_word: bool = False) -> str:
    """``("O", "-")`` → ``"O−"`` (or ``"O Rh−"``), with a true minus sign as UX.md asks."""
    if abo not in ABO_GROUPS or rh not in ("+", "-"):
        raise ValueError(f"not a blood type: {abo!r} {rh!r}")
    sign = "+" if rh == "+" else MINUS
    return f"{abo} Rh{sign}" if rh_word else f"{abo}{sign}"


# --- phone -----------------------------------------------------------------------

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]+")


class _FastMobile:
    """Recognises a region's ordinary mobile numbers with its own metadata patterns.

    ``phonenumbers.parse`` costs about 20 µs; a 100,000-row roster is almost all
    plain ``0912 345 678``-style numbers. These are matched here against the
    same patterns the library uses; anything unusual falls through to it.
    Property tests check that both paths agree.
    """

    # Types the library checks before MOBILE; a number matching one is not a mobile.
    _EARLIER_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip",
                      "personal_number", "pager", "uan", "voicemail")

    def __init__(self, region: str) -> None:
        md = PhoneMetadata.metadata_for_region(region)
        self.usable = bool(
            md and md.mobile and md.mobile.national_number_pattern and md.general_desc
            and md.national_prefix_transform_rule is None
            and (md.national_prefix_for_parsing or md.national_prefix) == md.national_prefix
            and not md.leading_digits
        )
        if not self.usable or md is None or md.general_desc is None or md.mobile is None:
            return
        general, mobile = md.general_desc.national_number_pattern, md.mobile.national_number_pattern
        if general is None or mobile is None:
            self.usable = False
            return
        cc = str(md.country_code)
        prefix = re.escape(md.national_prefix or "")
        self.country_code = cc
        self.shape = re.compile(rf"(?:\+{cc}|{prefix})?([0-9]+)" if prefix else rf"(?:\+{cc})?([0-9]+)")
        self.general = re.compile(general)
        self.mobile = re.compile(mobile)
        excluded = [desc.national_number_pattern for name in self._EARLIER_TYPES
                    if (desc := getattr(md, name)) is not None and desc.national_number_pattern]
        self.excluded = re.compile("|".join(f"(?:{p})" for p in excluded)) if excluded else None

    def __call__(self, value: str) -> str | None:
        if not self.usable:
            return None
        m = self.shape.fullmatch(_PHONE_SEPARATORS.sub("", value))
        if m is None:
            return None
        national = m.group(1)
        if (self.mobile.fullmatch(national) and self.general.fullmatch(national)
                and not (self.excluded and self.excluded.fullmatch(national))):
            return f"+{self.country_code}{national}"
        return None


_fast_mobiles: dict[str, _FastMobile] = {}


def _parse_phone_slow(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise _fail(N_("“{value}” is not a phone number. Write it like 0912 345 678 or +84 912 345 678."),
                    value=text) from None
    if not phonenumbers.is_valid_number(number):
        raise _fail(N_("“{value}” is not a valid phone number: check the digits."), value=text)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise _fail(N_("“{value}” is not a mobile number. Give a mobile, so the donor can be called "
                       "and texted wherever they are."), value=text)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_phone(value: Any, region: str = "VN") -> str:
    """A mobile number in any common form → E.164 (``"+84912345678"``).

    ``region`` is the country a number without ``+`` belongs to (BotConfig.phone_region);
    a number given with ``+`` may be any country's, if it is a valid mobile.
    """
    text = _as_text(value)
    if not text:
        raise _fail(N_("The phone number is empty."))
    if len(text) > 40:
        raise _fail(N_("“{value}” is not a phone number. Write it like 0912 345 678 or +84 912 345 678."),
                    value=text[:40] + "…")
    fast = _fast_mobiles.get(region)
    if fast is None:
        fast = _fast_mobiles[region] = _FastMobile(region)
    return fast(text) or _parse_phone_slow(text, region)


@lru_cache(maxsize=4096)
def format_phone(e164: str | None, region: str = "VN") -> str:
    """A stored number as people of ``region`` write it: ``"+84938990608"`` → ``"0938 990 608"``.

    A number of another country keeps its international form (``"+66 81 234 5678"``), so it
    can still be dialled from Vietnam. What does not parse is shown as stored, never dropped.
    """
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return e164
    same_country = phonenumbers.region_code_for_number(number) == region
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if same_country
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_MONTH = re.compile(r"\s*(?:([0-9]{1,2})\s*[/.\-]\s*([0-9]{4})|([0-9]{4})\s*[/.\-]\s*([0-9]{1,2}))\s*")


def parse_month(value: Any, *, today: date) -> date:
    """"11/2026", "11-2026" or "2026-11" → the month's first day; not after this month, not before 2000."""
    text = unicodedata.normalize("NFKC", _as_text(value))  # full-width or other-script digits too
    match = _MONTH.fullmatch(text)
    if match is None:
        raise _fail(N_("“{value}” is not a month. Write it as MM/YYYY, for example 11/2026."), value=text[:40])
    month, year = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
    if not 1 <= int(month) <= 12 or int(year) < 2000:
        raise _fail(N_("“{value}” is not a month. Write it as MM/YYYY, for example 11/2026."), value=text[:40])
    first = date(int(year), int(month), 1)
    if first > today.replace(day=1):
        raise _fail(N_("{value} has not happened yet."), value=text.strip())
    return first


# --- dates -----------------------------------------------------------------------

_DMY = re.compile(r"([0-9]{1,2})\s*([/.\-])\s*([0-9]{1,2})\s*\2\s*([0-9]{4})(?:[ T][0-9:.]*)?")
_YMD = re.compile(r"([0-9]{4})([/.\-])([0-9]{1,2})\2([0-9]{1,2})(?:[ T][0-9:.]*)?")
_YEAR = re.compile(r"[0-9]{4}")
_NOT_A_DATE = N_("“{value}” is not a date. Write it as DD/MM/YYYY, for example 25/12/1990.")


def _date_of(value: Any) -> date | str:
    """A date, or the cleaned text when the value is not a date object."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _as_text(value)
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _calendar_date(text: str) -> date:
    if (m := _DMY.fullmatch(text)) is not None:
        d, mo, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
    elif (m := _YMD.fullmatch(text)) is not None:
        y, mo, d = int(m.group(1)), int(m.group(3)), int(m.group(4))
    else:
        raise _fail(_NOT_A_DATE, value=text)
    try:
        return date(y, mo, d)
    except ValueError:
        raise _fail(N_("“{value}” is not a day in the calendar: check the day and the month."),
                    value=text) from None


def parse_date(value: Any, *, today: date) -> date:
    """DD/MM/YYYY (also D/M/YYYY, with - or .), YYYY-MM-DD, or a spreadsheet date cell.

    Two-digit years are refused: "01/02/03" has three readings. ``today`` bounds the
    plausible years, so a typo like 1/1/2202 or 1/1/1092 is caught.
    """
    parsed = _date_of(value)
    if isinstance(parsed, str):
        if not parsed:
            raise _fail(N_("The date is empty. Write it as DD/MM/YYYY, for example 25/12/1990."))
        parsed = _calendar_date(parsed)
    if not today.year - 150 <= parsed.year <= today.year + 50:
        raise _fail(N_("{date} is too far in the past or the future to be right."), date=format_date(parsed))
    return parsed


def parse_birth_date(value: Any, *, today: date) -> date:
    """A birth date, or a bare birth year.

    A bare year is taken as **31 December** of that year: the latest possible
    birthday, so the donor looks as young as they could be. An 18-year age floor
    then never lets a roster that only knows "2008" call a 17-year-old; the cost
    is that someone may be asked up to a year after turning 60, which the
    on-site screening catches anyway (DOMAIN.md: the facility decides).
    """
    parsed = _date_of(value)
    if isinstance(parsed, str) and _YEAR.fullmatch(parsed):
        year = int(parsed)
        if year > today.year:
            raise _fail(N_("The birth year {year} is in the future."), year=year)
        if today.year - year > MAX_AGE_YEARS:
            raise _fail(N_("A birth year of {year} would make the donor over {max} years old."),
                        year=year, max=MAX_AGE_YEARS)
        return min(date(year, 12, 31), today)
    born = parse_date(parsed, today=today)
    if born > today:
        raise _fail(N_("The birth date {date} is in the future."), date=format_date(born))
    if age_on(born, today) > MAX_AGE_YEARS:
        raise _fail(N_("A birth date of {date} would make the donor over {max} years old."),
                    date=format_date(born), max=MAX_AGE_YEARS)
    return born


def parse_past_date(value: Any, *, today: date) -> date:
    """A day that has happened, such as a last donation."""
    day = parse_date(value, today=today)
    if day > today:
        raise _fail(N_("{date} is in the future: a last donation must be today or earlier."),
                    date=format_date(day))
    return day


def parse_future_date(value: Any, *, today: date) -> date:
    """A day still to come, such as the first day a paused or deferred donor may be called again."""
    day = parse_date(value, today=today)
    if day <= today:
        raise _fail(N_("{date} is not in the future: give the first day they may be called again."),
                    date=format_date(day))
    return day


# --- sex, numbers, names ---------------------------------------------------------

_SEXES = {
    "m": "M", "male": "M", "man": "M", "nam": "M", "nam gioi": "M",
    "f": "F", "female": "F", "woman": "F", "nu": "F", "nu gioi": "F",
}


@lru_cache(maxsize=256)
def _folded_sex(text: str) -> str | None:
    return _SEXES.get(fold(text))


def parse_sex(value: Any) -> str:
    """``"Nữ"`` → ``"F"``; ``"nam"`` → ``"M"``."""
    text = _as_text(value)
    sex = _folded_sex(text)
    if sex is None:
        raise _fail(N_("“{value}” is not a sex. Write M or F (Nam or Nữ)."), value=text)
    return sex


_NUMBER = re.compile(r"([0-9]+(?:[.,][0-9]+)?)")
_WEIGHT = re.compile(r"([0-9]+(?:[.,][0-9]+)?)\s*(?:kg|kgs|kilo|kilos|kilogram|kilograms|ky|can)?\.?")
_COUNT = re.compile(r"([0-9]+)\s*(?:lan|times|x)?\.?")


_PLAIN_NUMBER = re.compile(r"[0-9]{1,9}(?:[.,][0-9]{1,12})?")


def _number(value: Any) -> float | str:
    """The float of an int/float cell or of plain digits, else the folded text to match."""
    if value.__class__ is str and _PLAIN_NUMBER.fullmatch(value):
        return float(value.replace(",", "."))  # the common case, without the cost of fold()
    if isinstance(value, bool):
        return fold(str(value))
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return fold(_as_text(value))


def parse_weight(value: Any) -> float:
    """``"55"``, ``"55,5"``, ``"55 kg"`` → kilograms."""
    parsed = _number(value)
    if isinstance(parsed, str):
        m = _WEIGHT.fullmatch(parsed)
        if m is None:
            raise _fail(N_("“{value}” is not a weight. Write the kilograms as a number, like 55 or 55,5."),
                        value=_as_text(value))
        parsed = float(m.group(1).replace(",", "."))
    if not math.isfinite(parsed) or not MIN_WEIGHT_KG <= parsed <= MAX_WEIGHT_KG:
        raise _fail(N_("{value} kg is not a plausible weight ({min}–{max} kg)."),
                    value=_as_text(value), min=int(MIN_WEIGHT_KG), max=int(MAX_WEIGHT_KG))
    return parsed


def parse_count(value: Any) -> int:
    """The number of past donations, ``"12"`` or ``"12 lần"``."""
    parsed = _number(value)
    if isinstance(parsed, str):
        m = _COUNT.fullmatch(parsed)
        if m is None:
            raise _fail(N_("“{value}” is not a number of donations. Write a whole number, like 3."),
                        value=_as_text(value))
        parsed = float(m.group(1)) if len(m.group(1)) < 10 else math.inf
    if not math.isfinite(parsed) or not parsed.is_integer():
        raise _fail(N_("“{value}” is not a number of donations. Write a whole number, like 3."),
                    value=_as_text(value))
    if not 0 <= parsed <= MAX_DONATIONS:
        raise _fail(N_("{value} is not a plausible number of donations (0–{max})."),
                    value=_as_text(value), max=MAX_DONATIONS)
    return int(parsed)


_LETTER = re.compile(r"[^\W\d_]")


def parse_name(value: Any) -> str:
    """A person's full name, spaces tidied; it must have letters."""
    name = " ".join(_as_text(value).split())
    if not name:
        raise _fail(N_("The name is empty."))
    if len(name) > MAX_NAME_LENGTH:
        raise _fail(N_("The name is too long (at most {max} characters)."), max=MAX_NAME_LENGTH)
    if _LETTER.search(name) is None:
        raise _fail(N_("“{value}” is not a name."), value=name)
    return name


def parse_place_name(value: Any) -> str:
    """A club's or hospital's name: NFC (Vietnamese typed decomposed must equal the same name
    composed), spaces tidied, not empty, not longer than a person's name may be."""
    name = " ".join(unicodedata.normalize("NFC", _as_text(value)).split())
    if not name:
        raise _fail(N_("A name is required."))
    if len(name) > MAX_NAME_LENGTH:
        raise _fail(N_("The name is too long (at most {max} characters)."), max=MAX_NAME_LENGTH)
    return name


def parse_address(value: Any) -> str:
    """A club's area or a hospital's address: spaces tidied, possibly empty, bounded."""
    text = " ".join(_as_text(value).split())
    if len(text) > MAX_ADDRESS_LENGTH:
        raise _fail(N_("The address is too long (at most {max} characters)."), max=MAX_ADDRESS_LENGTH)
    return text


def _coordinate(value: Any, limit: float, msgid: str) -> float:
    parsed = _number(value)
    if isinstance(parsed, str):
        sign = -1.0 if parsed.startswith("-") else 1.0
        m = _NUMBER.fullmatch(parsed.lstrip("+-").strip())
        if m is None:
            raise _fail(msgid, value=_as_text(value))
        parsed = sign * float(m.group(1).replace(",", "."))
    if not math.isfinite(parsed) or not -limit <= parsed <= limit:
        raise _fail(msgid, value=_as_text(value))
    return parsed


def parse_latitude(value: Any) -> float:
    return _coordinate(value, 90.0, N_("“{value}” is not a latitude: a number between −90 and 90, like 21.0285."))


def parse_longitude(value: Any) -> float:
    return _coordinate(value, 180.0,
                       N_("“{value}” is not a longitude: a number between −180 and 180, like 105.8542."))


_TELEGRAM_ID_MAX = 2**52  # Telegram: user ids fit in 52 bits


def parse_telegram_id(value: Any) -> int:
    """A Telegram user id (a positive number, not a @username)."""
    text = _as_text(value)
    telegram_id = whole_number(text, low=1, high=_TELEGRAM_ID_MAX - 1)
    if telegram_id is not None:
        return telegram_id
    raise _fail(N_("“{value}” is not a Telegram id: a number, like 123456789."), value=text)
