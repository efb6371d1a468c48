"""A local fake Telegram Bot API server ("Bot API simulator").

The real aiogram ``Bot`` talks to :class:`BotAPISimulator` over HTTP; tests,
the demo and the browser playground act as Telegram users through its
``push_*`` methods and read back what the bot did.

Modules: ``simulator`` (server, user side, readers, waiting), ``methods``
(the Bot API methods and Telegram's refusals), ``updates`` (getUpdates
queue), ``state`` (users, chats, messages, files), ``entities`` (HTML
parse_mode), ``limits`` (flood limits), ``params`` (request decoding),
``calls`` (the call log), ``errors`` (error texts).
"""

from .calls import APICall
from .errors import BotAPIError
from .limits import RateLimits
from .simulator import DEFAULT_BOT_ID, BotAPISimulator
from .state import SimFile

__all__ = ["APICall", "BotAPIError", "BotAPISimulator", "DEFAULT_BOT_ID", "RateLimits", "SimFile"]
