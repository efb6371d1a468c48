"""``redreserve playground``: the real bot in a Telegram-like web page, on the Bot API simulator."""
