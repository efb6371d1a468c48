"""Messages to a donor as SMS (issue 15): Vietnamese by default, the short code, at most 2 parts for a call."""

from __future__ import annotations

import pytest

from bot.i18n import make_i18n
from bot.sms_render import SMS_RENDERERS, render_sms
from dispatcher import messages as M
from dispatcher.sender import Outgoing
from ground.config import SmsConfig
from ground.sms_text import count_parts, is_gsm7

I18N = make_i18n("vi")
TO_A_DONOR = {M.Call, M.Confirmed, M.Venue, M.Declined, M.Withdrew, M.StandDown, M.Donated, M.Deferred,
              M.EligibleAgain}


def call(hospital="BV Bạch Mai", **kw):
    args = dict(request_id=123, token="abc", hospital=hospital, address="78 Giải Phóng", abo="O", rh="-",
                component="red_cells", units=2, urgency="critical", deadline="2026-03-10T07:30:00+00:00",
                deadline_local="14:30 10/03/2026", distance_km=3.2, travel_min=12, note="", late=False,
                arrive_local=None)
    return M.Call(**{**args, **kw})


def sms(params, locale="vi", **cfg):
    return render_sms(Outgoing(1, "k", 1, params.kind, params, locale, None), I18N, "vi", SmsConfig(**cfg))


def test_every_kind_that_reaches_a_donor_has_an_sms_rendering_and_no_other_kind_has_one():
    assert set(SMS_RENDERERS) == TO_A_DONOR


def test_a_call_is_vietnamese_with_the_short_code_in_at_most_two_parts():
    text = sms(call())
    assert text == ("Cần máu gấp: BV Bạch Mai cần O- khối hồng cầu trước 14:30 10/03. "
                    "Bạn đến được không? Nhắn CO 123 hoặc KHONG 123")
    assert count_parts(text).encoding == "ucs2" and count_parts(text).parts == 2


@pytest.mark.parametrize("late", [False, True])
def test_a_long_hospital_name_is_shortened_never_the_code_or_the_time(late):
    name = "Bệnh viện Hữu nghị Việt Đức cơ sở 2, khoa Cấp cứu ngoại khoa, tầng 3 nhà B"
    text = sms(call(hospital=name, late=late, arrive_local="15:10 10/03/2026" if late else None))
    assert count_parts(text).parts <= 2
    assert "CO 123" in text and "KHONG 123" in text and "14:30 10/03" in text and "…" in text
    assert ("khoảng 15:10." in text) == late


def test_unaccented_sms_is_gsm7_and_fits_one_part():
    text = sms(call(), unaccented=True)
    assert text == ("Can mau gap: BV Bach Mai can O- khoi hong cau truoc 14:30 10/03. "
                    "Ban den duoc khong? Nhan CO 123 hoac KHONG 123")
    assert is_gsm7(text) and count_parts(text).parts == 1


def test_english_for_a_donor_who_chose_it_and_the_other_kinds_say_their_code():
    assert sms(call(), locale="en").endswith("Can you come? Reply CO 123 or KHONG 123")
    assert sms(M.StandDown(request_id=123, reason="covered")) == \
        "Yêu cầu máu 123: bạn không cần đến nữa. Cảm ơn bạn!"
    confirmed = M.Confirmed(request_id=123, hospital="BV Bạch Mai", address="78 Giải Phóng", hospital_phone=None,
                            lat=21.0, lon=105.8, deadline="2026-03-10T07:30:00+00:00",
                            deadline_local="14:30 10/03/2026", token="abc", late=False, arrive_local=None)
    assert "KHONG 123" in sms(confirmed) and count_parts(sms(confirmed)).parts <= 2


def test_a_kind_not_for_a_donor_is_not_sent_by_sms():
    assert sms(M.Board(request_id=1)) is None
