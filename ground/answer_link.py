"""The signed answer link's token (issue 15, DOMAIN.md §9): one donor's ask for one request, until it expires.

A donor off Telegram answers by keyword or through a short link to a one-screen page (bot.answer_page).
The link carries no login, so the token is the credential: it names her ask (the request_contact row,
which is one donor and one request), the request, and when it stops working (the request's deadline),
signed with ``[http] link_secret``. Twenty bytes in base64url, 27 characters: short enough for an SMS.
Anything altered, truncated or signed with another secret fails the check; nothing in it is personal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

_LAYOUT = struct.Struct(">III")  # ask id, request id, expiry (Unix seconds: good until 2106)
_MAC_BYTES = 8  # 64 bits: guessing online through one HTTP server never gets there
_PURPOSE = b"redreserve answer link v1:"  # a MAC made for anything else with the same secret is no token


@dataclass(frozen=True)
class LinkClaim:
    """What a valid token says: this ask of this request may be answered until ``expires_at``."""

    contact_id: int
    request_id: int
    expires_at: datetime


class BadLink(Exception):
    """``reason``: "tampered" (not a token we signed) or "expired"."""

    def __init__(self, reason: str, claim: LinkClaim | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claim = claim  # an expired token was ours: which ask it was, for the audit record


def _mac(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def sign(claim: LinkClaim, secret: str) -> str:
    if not secret:
        raise ValueError("an answer link needs a secret ([http] link_secret)")
    payload = _LAYOUT.pack(claim.contact_id, claim.request_id, int(claim.expires_at.timestamp()))
    return base64.urlsafe_b64encode(payload + _mac(payload, secret)).rstrip(b"=").decode()


def verify(token: str, secret: str, now: datetime) -> LinkClaim:
    """The claim of a token we signed that has not expired; else BadLink."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadLink("tampered") from None
    if not secret or len(raw) != _LAYOUT.size + _MAC_BYTES:
        raise BadLink("tampered")
    payload, mac = raw[:_LAYOUT.size], raw[_LAYOUT.size:]
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        raise BadLink("tampered")
    contact_id, request_id, expires = _LAYOUT.unpack(payload)
    claim = LinkClaim(contact_id, request_id, datetime.fromtimestamp(expires, timezone.utc))
    if now >= claim.expires_at:
        raise BadLink("expired", claim)
    return claim


__all__ = ["BadLink", "LinkClaim", "sign", "verify"]
