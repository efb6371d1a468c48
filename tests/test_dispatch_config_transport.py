"""The documented [dispatch] section matches the defaults; the aiogram transport maps Telegram's answers."""

import tomllib
from pathlib import Path

import pytest

from dispatcher import messages as M
from dispatcher.sender import Outgoing, RetryAfter, TransientError, Unreachable
from ground.config import DispatchConfig, Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_documented_dispatch_section_states_the_defaults():
    documented = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["dispatch"]
    assert Settings(dispatch=documented).dispatch == DispatchConfig()


async def test_the_aiogram_transport_maps_telegram_errors():
    sim_mod = pytest.importorskip("redreserve.botapi_sim")
    from bot.transport import AiogramTransport

    async with sim_mod.BotAPISimulator() as sim:
        bot = sim.create_bot()
        try:
            t = AiogramTransport(bot, lambda m: (m.params.plain(), None))
            sim.push_message(501, "/start")
            msg = Outgoing(1, "k", 501, "stand_down", M.StandDown(request_id=1, reason="covered"), None, None)
            sent = await t.deliver(msg)
            assert sent.message_id
            edited = await t.deliver(Outgoing(2, "k2", 501, "declined", M.Declined(request_id=1), None,
                                            sent.message_id))
            assert edited.message_id == sent.message_id
            sim.block(501)
            with pytest.raises(Unreachable):
                await t.deliver(msg)
            sim.push_message(502, "/start")
            sim.fail_next("sendMessage", 429, retry_after=3)
            with pytest.raises(RetryAfter) as exc:
                await t.deliver(Outgoing(3, "k3", 502, "stand_down", M.StandDown(request_id=1, reason="covered"),
                                        None, None))
            assert exc.value.seconds == 3
            sim.fail_next("sendMessage", 502)
            with pytest.raises(TransientError):
                await t.deliver(Outgoing(4, "k4", 502, "stand_down", M.StandDown(request_id=1, reason="covered"),
                                        None, None))
        finally:
            await bot.session.close()
