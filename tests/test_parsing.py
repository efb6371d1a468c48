"""The parsers people's typing and club spreadsheets go through."""

from __future__ import annotations

from datetime import date, datetime

import phonenumbers
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ground.parsing import (
    MINUS,
    ParseError,
    _parse_phone_slow,
    format_blood_type,
    format_date,
    format_phone,
    parse_birth_date,
    parse_blood_type,
    parse_count,
    parse_date,
    parse_latitude,
    parse_longitude,
    parse_name,
    parse_past_date,
    parse_phone,
    parse_sex,
    parse_telegram_id,
    parse_weight,
    quoted,
    whole_number,
)

TODAY = date(2026, 5, 9)
TYPES = [(abo, rh) for abo in ("O", "A", "B", "AB") for rh in ("+", "-")]


def msgid(exc: pytest.ExceptionInfo[ParseError]) -> str:
    return exc.value.text.msgid


# --- blood types ------------------------------------------------------------------

@pytest.mark.parametrize("typed, expected", [
    ("O-", ("O", "-")), ("O+", ("O", "+")), ("o −", ("O", "-")), ("AB Rh-", ("AB", "-")),
    ("AB Rh(D)-", ("AB", "-")), ("O Rh(D) âm", ("O", "-")), ("B dương", ("B", "+")),
    ("A Rh+", ("A", "+")), ("Rh âm O", ("O", "-")), ("O neg", ("O", "-")), ("A pos", ("A", "+")),
    ("AB positive", ("AB", "+")), ("ＡＢ　＋", ("AB", "+")), ("  b   duong ", ("B", "+")),
    ("o am", ("O", "-")), ("Nhóm máu O Rh dương tính", ("O", "+")), ("0+", ("O", "+")),
    ("O (Rh−)", ("O", "-")), ("ORh-", ("O", "-")), ("A – ", ("A", "-")),
])
def test_blood_types_are_read_the_way_people_write_them(typed, expected):
    assert parse_blood_type(typed) == expected


def test_a_blood_type_without_its_rh_is_refused_saying_the_rh_is_missing():
    with pytest.raises(ParseError) as exc:
        parse_blood_type("O")
    assert "no Rh" in msgid(exc)
    assert exc.value.text.params["value"] == "O"


@pytest.mark.parametrize("typed", ["C+", "", "   ", "A B +", "O+ A+", "Rh+", "O+-", "blood", "12"])
def test_what_is_not_a_blood_type_is_refused(typed):
    with pytest.raises(ParseError):
        parse_blood_type(typed)


def test_blood_types_are_shown_with_a_true_minus_sign():
    assert format_blood_type("O", "-") == f"O{MINUS}"
    assert format_blood_type("AB", "+", rh_word=True) == "AB Rh+"
    assert format_blood_type("B", "-", rh_word=True) == f"B Rh{MINUS}"


@given(st.sampled_from(TYPES), st.booleans(), st.sampled_from(["", " ", "  "]), st.booleans())
def test_every_formatted_blood_type_parses_back(blood, rh_word, pad, lower):
    text = pad + format_blood_type(*blood, rh_word=rh_word) + pad
    assert parse_blood_type(text.lower() if lower else text) == blood


@given(st.sampled_from(TYPES), st.sampled_from(["{abo}{rh}", "{abo} {rh}", "{abo} Rh{rh}", "{abo} Rh(D){rh}",
                                                "Rh{rh} {abo}", "nhóm {abo} Rh {rh}"]),
       st.sampled_from(["symbol", "vi", "vi-plain", "en"]))
def test_every_spelling_of_every_type_agrees(blood, shape, words):
    abo, rh = blood
    sign = {"symbol": {"+": "+", "-": MINUS}, "vi": {"+": "dương", "-": "âm"},
            "vi-plain": {"+": "duong", "-": "am"}, "en": {"+": "positive", "-": "negative"}}[words][rh]
    if words != "symbol":
        shape = shape.replace("{rh}", " {rh}")
    assert parse_blood_type(shape.format(abo=abo, rh=sign)) == blood


# --- phones -----------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["0912 345 678", "+84 912345678", "84-912-345-678",
                                   "(+84) 912.345.678", "0912345678", "+84 (0) 912 345 678", 912345678])
def test_a_vietnamese_mobile_in_any_common_form_becomes_e164(typed):
    assert parse_phone(typed) == "+84912345678"


def test_unparseable_invalid_and_landline_numbers_get_different_messages():
    messages = set()
    for typed in ("call me", "0912", "024 3826 2345"):
        with pytest.raises(ParseError) as exc:
            parse_phone(typed)
        messages.add(msgid(exc))
    assert len(messages) == 3


def test_a_foreign_mobile_given_with_its_country_code_is_fine():
    assert parse_phone("+44 7911 123456") == "+447911123456"


def test_an_empty_phone_is_refused():
    with pytest.raises(ParseError):
        parse_phone("  ")


# Mobile prefixes of the Vietnamese numbering plan (without the leading 0).
VN_PREFIXES = ["32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78", "79",
               "81", "82", "83", "84", "85", "86", "88", "90", "91", "93", "94", "96", "97", "98"]


@st.composite
def vn_mobiles(draw) -> str:
    national = draw(st.sampled_from(VN_PREFIXES)) + draw(st.text("0123456789", min_size=7, max_size=7))
    number = phonenumbers.parse("+84" + national)
    assume(phonenumbers.is_valid_number(number)
           and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE)
    return national


@given(vn_mobiles(), st.sampled_from([
    "0{n}", "0{a} {b} {c}", "0{a}.{b}.{c}", "0{a}-{b}-{c}", "+84{n}", "+84 {a} {b} {c}", "84{n}",
    "(+84) {a}.{b}.{c}", "+84-{a}-{b}-{c}", " 0{a} {b}{c} ", "0{a}\u00a0{b}\u00a0{c}", "{n}",
]))
def test_every_valid_vn_mobile_in_any_common_form_normalises_to_the_same_e164(national, shape):
    a, b, c = national[:3], national[3:6], national[6:]
    assert parse_phone(shape.format(n=national, a=a, b=b, c=c)) == "+84" + national


@given(vn_mobiles())
def test_a_stored_vn_mobile_is_shown_the_vietnamese_way_and_reads_back_the_same(national):
    shown = format_phone("+84" + national)
    assert shown == f"0{national[:3]} {national[3:6]} {national[6:]}"  # 0938 990 608
    assert parse_phone(shown) == "+84" + national  # what a lead copies back is the same number


@pytest.mark.parametrize("stored, shown", [
    ("+842253846550", "0225 3846 550"),  # a Hải Phòng landline, the way hospitals print it
    ("+842438693731", "024 3869 3731"),  # Hà Nội: a two-digit area code
    ("+66812345678", "+66 81 234 5678"),  # another country's keeps its code, to be dialled from Vietnam
    ("not a number", "not a number"),  # shown as stored, never dropped
    ("", ""),
])
def test_phones_are_shown_in_the_national_format(stored, shown):
    assert format_phone(stored) == shown


def _outcome(fn, text):
    try:
        return fn(text)
    except ParseError as exc:
        return exc.text.msgid


@settings(max_examples=400)
@given(st.one_of(
    st.from_regex(r"\A(\+84|0|84|0084|\+1|\+44)?[ .\-]?[0-9]{6,11}\Z"),
    st.text("0123456789 +-.()", max_size=16),
))
@example("1900 1234")  # premium rate
@example("1800 1234")  # toll free
@example("0672 123 456")  # voip
@example("0121 012 345")
def test_the_fast_path_for_ordinary_numbers_agrees_with_phonenumbers(text):
    assert _outcome(parse_phone, text) == _outcome(lambda t: _parse_phone_slow(t.strip(), "VN"), text.strip()) \
        or not text.strip()


# --- dates ------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["25/12/1990", "25-12-1990", "25.12.1990", "1990-12-25",
                                   datetime(1990, 12, 25, 0, 0), date(1990, 12, 25), "25 / 12 / 1990",
                                   "1990-12-25 00:00:00"])
def test_dates_are_read_in_vietnamese_order_iso_and_from_spreadsheet_cells(typed):
    assert parse_date(typed, today=TODAY) == date(1990, 12, 25)


def test_single_digit_days_and_months_are_fine():
    assert parse_date("1/2/1990", today=TODAY) == date(1990, 2, 1)


@pytest.mark.parametrize("typed", ["31/02/1990", "1/2/90", "12/25", "yesterday", "", "25/12/1990/1"])
def test_what_is_not_a_calendar_day_is_refused(typed):
    with pytest.raises(ParseError):
        parse_date(typed, today=TODAY)


def test_a_bare_birth_year_is_taken_as_31_december_so_no_minor_looks_18():
    assert parse_birth_date("2008", today=TODAY) == date(2008, 12, 31)
    assert parse_birth_date(1990, today=TODAY) == date(1990, 12, 31)


def test_a_birth_date_in_the_future_or_over_120_years_ago_is_refused():
    for typed in ("10/05/2026", "2027", "01/01/1900", "1890"):
        with pytest.raises(ParseError):
            parse_birth_date(typed, today=TODAY)
    assert parse_birth_date("09/05/2026", today=TODAY) == TODAY


def test_a_last_donation_in_the_future_is_refused_with_its_own_message():
    assert parse_past_date("09/05/2026", today=TODAY) == TODAY
    with pytest.raises(ParseError) as exc:
        parse_past_date("10/05/2026", today=TODAY)
    assert "future" in msgid(exc)
    assert exc.value.text.params["date"] == "10/05/2026"


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2070, 12, 31)))
def test_dates_round_trip_through_dd_mm_yyyy(day):
    assert parse_date(format_date(day), today=TODAY) == day
    assert parse_date(f"{day.day}/{day.month}/{day.year}", today=TODAY) == day
    assert parse_date(day.isoformat(), today=TODAY) == day


# --- the rest ---------------------------------------------------------------------

@pytest.mark.parametrize("typed, expected", [
    ("M", "M"), ("F", "F"), ("Male", "M"), ("female", "F"), ("Nam", "M"), ("nam", "M"),
    ("Nữ", "F"), ("nữ", "F"), ("Nu", "F"), ("NỮ", "F"),
])
def test_sex(typed, expected):
    assert parse_sex(typed) == expected


def test_an_unknown_sex_is_refused():
    with pytest.raises(ParseError):
        parse_sex("x")


@pytest.mark.parametrize("typed, expected", [("55", 55.0), ("55,5", 55.5), ("55 kg", 55.0), ("55.5kg", 55.5),
                                             (60, 60.0), (48.5, 48.5), ("42 KG", 42.0)])
def test_weight(typed, expected):
    assert parse_weight(typed) == expected


@pytest.mark.parametrize("typed", ["19", "251", "heavy", "", "-50", "nan", float("inf")])
def test_an_implausible_weight_is_refused(typed):
    with pytest.raises(ParseError):
        parse_weight(typed)


def test_donation_count():
    assert parse_count("12") == 12
    assert parse_count("12 lần") == 12
    assert parse_count(0) == 0
    assert parse_count(3.0) == 3
    for typed in ("501", "-1", "2.5", 2.5, "many"):
        with pytest.raises(ParseError):
            parse_count(typed)


def test_names_coordinates_and_telegram_ids():
    assert parse_name("  Nguyễn   Thị  Lan ") == "Nguyễn Thị Lan"
    assert parse_latitude("21,0285") == 21.0285
    assert parse_longitude(-105.5) == -105.5
    assert parse_telegram_id("123456789") == 123456789
    assert parse_telegram_id(123456789.0) == 123456789
    for fn, typed in ((parse_name, "12345"), (parse_name, ""), (parse_latitude, "91"),
                      (parse_longitude, "east"), (parse_telegram_id, "@lan"), (parse_telegram_id, "-100123")):
        with pytest.raises(ParseError):
            fn(typed)


PARSERS = [
    parse_blood_type, parse_phone, parse_sex, parse_weight, parse_count, parse_name,
    parse_latitude, parse_longitude, parse_telegram_id,
    lambda v: parse_date(v, today=TODAY), lambda v: parse_birth_date(v, today=TODAY),
    lambda v: parse_past_date(v, today=TODAY),
]


@settings(max_examples=300)
@given(st.sampled_from(range(len(PARSERS))), st.one_of(
    st.text(), st.text("0123456789/.-+ ,kgRhOAB"), st.integers(), st.floats(), st.none(), st.booleans(),
    st.dates(), st.datetimes(),
))
def test_garbage_never_raises_anything_but_a_parse_error(which, value):
    try:
        PARSERS[which](value)
    except ParseError as exc:
        assert exc.text.msgid
        exc.text.render()  # every message formats with the parameters it was given


@pytest.mark.parametrize("region", ["US", "DE", "FR", "TH", "GB"])
@settings(max_examples=300)
@given(text=st.from_regex(r"\A(\+\d{1,2}|0|1)?[ .\-]?[0-9]{6,11}\Z"))
def test_the_fast_path_agrees_with_phonenumbers_in_other_regions_too(region, text):
    assert _outcome(lambda t: parse_phone(t, region), text.strip()) == \
        _outcome(lambda t: _parse_phone_slow(t, region), text.strip())


# --- whole numbers from people and buttons (issue 10) ----------------------------------

@pytest.mark.parametrize("typed", ["¹", "②", "٣", "１２", "12a", "-1", "+1", "1.0", "1_000", "", " ",
                                   "99999999999999999999"])
def test_a_number_is_ascii_digits_in_range_and_nothing_else(typed):
    assert whole_number(typed) is None


@given(st.integers(min_value=0, max_value=2**31 - 1), st.sampled_from(["", " ", "\n"]))
def test_every_id_a_database_holds_is_read_back(number, pad):
    assert whole_number(f"{pad}{number}{pad}") == number


@settings(max_examples=300)
@given(st.text(), st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**12))
def test_whole_number_never_raises_and_stays_in_its_bounds(text, low, span):
    number = whole_number(text, low=low, high=low + span)
    assert number is None or low <= number <= low + span


@given(st.text(min_size=0, max_size=5000))
def test_a_quote_is_short_and_keeps_a_short_value_whole(text):
    assert len(quoted(text)) <= 60
    assert len(text) > 60 or quoted(text) == text


def test_a_parse_error_never_quotes_a_whole_message_back():
    with pytest.raises(ParseError) as err:
        parse_weight("x" * 4096)
    assert len(err.value.text.render()) < 200


@given(st.integers(2000, 2026), st.integers(1, 12), st.sampled_from(["{m}/{y}", "{m:02d}/{y}", "{m}-{y}", "{y}-{m:02d}",
                                                                       " {m:02d} / {y} "]))
def test_a_month_in_any_common_form_is_its_first_day(year, month, shape):
    from ground.parsing import parse_month
    assume((year, month) <= (2026, 12))
    assert parse_month(shape.format(m=month, y=year), today=date(2026, 12, 4)) == date(year, month, 1)


@pytest.mark.parametrize("typed", ["13/2026", "0/2026", "11/1999", "11", "November", "11/20266", "", "１/２０２７"])
def test_a_month_that_is_not_one_or_is_still_to_come_is_refused(typed):
    from ground.parsing import parse_month
    with pytest.raises(ParseError):
        parse_month(typed, today=date(2026, 12, 4))
