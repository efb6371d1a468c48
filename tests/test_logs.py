"""Logs: readable or JSON lines with time, level and the update/request they belong to; no secret in full."""

from __future__ import annotations

import io
import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from ground.logs import log_context, logging_to_stderr, redact

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def _lines(fmt: str, emit, secrets=()) -> list[str]:
    out = io.StringIO()
    with logging_to_stderr("INFO", fmt, secrets, stream=out):
        emit()
    return out.getvalue().splitlines()


def test_a_token_in_a_url_is_redacted_and_the_bot_id_kept():
    assert redact(f"POST https://api.telegram.org/bot{TOKEN}/getMe") == \
        "POST https://api.telegram.org/bot7012345678:[redacted]/getMe"


def test_phone_numbers_keep_only_their_last_three_digits_in_every_common_form():
    assert redact("+84912345678") == "+••••••••678"
    assert redact("gọi 0912 345 678 hoặc 84912345678.") == "gọi •••••••678 hoặc ••••••••678."
    assert redact("0912-345-678") == "•••••••678"


def test_ids_dates_and_durations_are_left_alone():
    text = "update 123456789 chat -1001234567890 user 7000000003 at 2026-11-22 10:00 took 0.0123456789 s"
    assert redact(text) == text


@given(st.from_regex(r"0[35789]\d{8}", fullmatch=True), st.sampled_from(["", " ", "-"]))
def test_no_vietnamese_mobile_survives_in_full(number, sep):
    written = sep.join([number[:4], number[4:7], number[7:]])
    assert number not in redact(f"donor {written} said yes").replace(sep, "")


def test_text_lines_carry_time_level_logger_and_the_update_and_request_ids():
    def emit():
        with log_context(update_id=42):
            with log_context(request_id=7):
                logging.getLogger("aiogram.event").info("Update id=42 is handled by %s", "donor 0912345678")
        logging.getLogger("apscheduler.scheduler").info("Scheduler started")

    first, second = _lines("text", emit)
    assert first.endswith("INFO aiogram.event: Update id=42 is handled by donor •••••••678 [update=42 request=7]")
    assert first[:4].isdigit() and "+00:00" in first.split(" ")[0]
    assert second.endswith("INFO apscheduler.scheduler: Scheduler started")


def test_json_lines_have_the_fields_and_a_redacted_traceback():
    def emit():
        with log_context(update_id=5, request_id=3):
            try:
                raise RuntimeError(f"getMe failed for /bot{TOKEN}/getMe")
            except RuntimeError:
                logging.getLogger("redreserve.run").exception("start failed with secret %s", "hunter2-secret")

    (line,) = _lines("json", emit, secrets=["hunter2-secret"])
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "redreserve.run"
    assert entry["message"] == "start failed with secret [redacted]"
    assert (entry["update_id"], entry["request_id"]) == (5, 3)
    assert "RuntimeError" in entry["exc"] and TOKEN not in line and "7012345678:[redacted]" in entry["exc"]
    assert entry["time"].endswith("+00:00")


def test_lines_below_the_level_are_left_out_and_the_handler_is_removed_afterwards():
    root = logging.getLogger()
    before = list(root.handlers)
    lines = _lines("text", lambda: logging.getLogger("aiogram").debug("noise"))
    assert lines == [] and root.handlers == before
