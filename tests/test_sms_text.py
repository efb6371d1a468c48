"""SMS parts (GSM-7 160/153, UCS-2 70/67) and unaccented Vietnamese (issue 15)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ground.sms_text import GSM7_BASIC, GSM7_EXTENDED, count_parts, is_gsm7, unaccented

gsm_basic = st.text(alphabet=sorted(GSM7_BASIC), max_size=700)
any_text = st.text(max_size=400)


def test_the_boundaries_of_each_encoding():
    assert [count_parts("a" * n).parts for n in (0, 1, 160, 161, 306, 307)] == [0, 1, 1, 2, 2, 3]
    assert [count_parts("ạ" * n).parts for n in (1, 70, 71, 134, 135)] == [1, 1, 2, 2, 3]
    assert count_parts("€" * 80) == count_parts("a" * 160)  # an extension character takes two septets
    assert count_parts("a" * 159 + "ạ").encoding == "ucs2"  # one diacritic makes the whole text UCS-2
    assert count_parts("😀").units == 2  # beyond the BMP: a surrogate pair


@given(gsm_basic)
def test_a_gsm_text_takes_the_fewest_parts_that_hold_it(text):
    p = count_parts(text)
    assert p.encoding == "gsm7" and p.units == len(text)
    capacity = 160 if p.parts == 1 else 153 * p.parts
    assert p.units <= capacity
    assert p.parts <= 1 or p.units > (160 if p.parts == 2 else 153 * (p.parts - 1))


@given(any_text)
def test_a_text_never_takes_fewer_parts_than_its_units_need(text):
    p = count_parts(text)
    single, multi = (160, 153) if p.encoding == "gsm7" else (70, 67)
    assert (p.parts == 0) == (text == "")
    assert p.units <= (single if p.parts == 1 else multi * p.parts)
    assert p.encoding == ("gsm7" if is_gsm7(text) else "ucs2")


@given(any_text, any_text)
def test_more_text_never_takes_fewer_parts(a, b):
    assert count_parts(a + b).parts >= count_parts(a).parts


@given(st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
               "ĐÁÀẢÃẠ 0123456789,.:", max_size=200))
def test_unaccented_vietnamese_is_gsm7_and_keeps_its_length(text):
    plain = unaccented(text)
    assert is_gsm7(plain) and len(plain) == len(text)


def test_unaccented_examples():
    assert unaccented("Đến BV Bạch Mai trước 14:30, được không?") == "Den BV Bach Mai truoc 14:30, duoc khong?"
    assert count_parts(unaccented("Có")).encoding == "gsm7"
    assert not GSM7_EXTENDED & GSM7_BASIC


# --------------------------------------------------------------------------- keyword answers

import pytest  # noqa: E402

from ground.sms_keywords import KeywordAnswer, parse_keyword_answer  # noqa: E402


@pytest.mark.parametrize("text,answer", [
    ("CO 123", KeywordAnswer(True, 123)), ("có 123", KeywordAnswer(True, 123)), ("Có", KeywordAnswer(True, None)),
    ("  co#123. ", KeywordAnswer(True, 123)), ("CO123", KeywordAnswer(True, 123)),
    ("KHONG 123", KeywordAnswer(False, 123)), ("không 7", KeywordAnswer(False, 7)),
    ("Không!", KeywordAnswer(False, None)), ("ko 5", KeywordAnswer(False, 5)), ("KHÔNG", KeywordAnswer(False, None)),
])
def test_keyword_answers_accented_or_not_any_case(text, answer):
    assert parse_keyword_answer(text) == answer


@pytest.mark.parametrize("text", ["", "CO 12 34", "COME", "có thể", "123", "yes 12", "CO abc", "KHONG CO 12", "C 12"])
def test_anything_else_is_not_an_answer(text):
    assert parse_keyword_answer(text) is None
