"""A local Zalo Bot Platform API (updates, webhooks, sends, failures) for tests, the demo and the playground."""

from .simulator import TEXT_EVENT, SimZaloMessage, ZaloBotSimulator

__all__ = ["SimZaloMessage", "TEXT_EVENT", "ZaloBotSimulator"]
