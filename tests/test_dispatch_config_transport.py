"""The documented [dispatch] section matches the defaults; the aiogram transport maps Telegram's answers."""

import tomllib
from pathlib import Path

import pytest

from dispatcher.messages import Kind, render_plain
from dispatcher.sender import Outgoing, RetryAfter, TransientError, Unreachable
from ground.config import DispatchConfig, Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_documented_dispatch_section_states_the_defaults():
    documented = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["dispatch"]
    assert Settings(dispatch=documented).dispatch == DispatchConfig()


def test_every_intent_has_a_plain_english_rendering():
    params = {"request_id": 1, "hospital": "BV", "abo": "O", "rh": "-", "component": "red_cells", "units": 2,
              "deadline_local": "10:00 10/03/2026", "distance_km": 4.2, "travel_min": 12, "asked": 9,
              "next_wave_min": 20, "name": "An", "phone": "+84912345678", "confirmed": 1, "target": 4,
              "call_list": [{"name": "Bình", "phone": "+84900000000", "type": "O-"}], "state": "covered",
              "donated": 1, "donors": [{"name": "An", "state": "donated"}], "volume_ml": 350,
              "next_date": "10/06/2026", "minutes": 40, "minutes_left": 30, "contact_id": 3,
              # reminders (dispatcher.eligible_again, dispatcher.lead_digest)
              "count": 3, "club": "CLB", "week": "2026-W49", "members": 8, "eligible": [["O", "-", 2]],
              "eligible_total": 2, "paused": 1, "unreachable": 0, "radius_km": 100.0, "days": 7,
              "requests": [["O", "-", 1, 1]], "requests_total": 1, "covered_total": 1,
              "until": "10/04/2026", "time": "10:05"}  # deferred, board_moved (issue 9)
    for kind in Kind:
        assert render_plain(kind.value, params)


async def test_the_aiogram_transport_maps_telegram_errors():
    sim_mod = pytest.importorskip("redreserve.botapi_sim")
    from bot.transport import AiogramTransport

    async with sim_mod.BotAPISimulator() as sim:
        bot = sim.create_bot()
        try:
            t = AiogramTransport(bot, lambda m: (render_plain(m.kind, m.params), None))
            sim.push_message(501, "/start")
            msg = Outgoing(1, "k", 501, "stand_down", {"request_id": 1}, None, None)
            sent = await t.deliver(msg)
            assert sent.message_id
            edited = await t.deliver(Outgoing(2, "k2", 501, "declined", {"request_id": 1}, None, sent.message_id))
            assert edited.message_id == sent.message_id
            sim.block(501)
            with pytest.raises(Unreachable):
                await t.deliver(msg)
            sim.push_message(502, "/start")
            sim.fail_next("sendMessage", 429, retry_after=3)
            with pytest.raises(RetryAfter) as exc:
                await t.deliver(Outgoing(3, "k3", 502, "stand_down", {}, None, None))
            assert exc.value.seconds == 3
            sim.fail_next("sendMessage", 502)
            with pytest.raises(TransientError):
                await t.deliver(Outgoing(4, "k4", 502, "stand_down", {}, None, None))
        finally:
            await bot.session.close()
