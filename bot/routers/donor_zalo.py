"""Linking a donor's Zalo chat, from Telegram: ``/me zalo`` for herself, a member card's button for a lead.

The code is shown once, here, and sent by her to the club's Zalo bot (bot.zalo_inbox); only its hash is
stored (dispatcher.channel_links). A lead's code is for a member who is not on Telegram at all: the
lead passes it on in person or by phone. Linking and unlinking are audited there.
"""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import DonorCb
from bot.inplace import edit_text
from bot.routing import RouterTemplate
from bot.texts import escape
from dispatcher.channel_links import agreed_channels, channel_of, issue_code, unlink
from ground.clock import Clock
from ground.config import Settings
from ground.link_codes import format_code
from models.directory import Roles
from models.tables import Channel, Donor

router = RouterTemplate("donor_zalo")
router.callback_query.filter(F.message.chat.type == "private")

ZALO = Channel.zalo.value
CHANNEL_NAMES = {Channel.telegram.value: "Telegram", Channel.zalo.value: "Zalo", Channel.sms.value: "SMS"}


def code_text(code: str, settings: Settings) -> str:
    bot = settings.zalo.bot_name
    hours = settings.zalo.link_code_hours
    where = (_("Send it to the Zalo bot {bot} within {hours} hour; it works once.",
               "Send it to the Zalo bot {bot} within {hours} hours; it works once.", hours)
             .format(bot=f"<b>{escape(bot)}</b>", hours=hours) if bot else
             _("Send it to your club's Zalo bot within {hours} hour; it works once.",
               "Send it to your club's Zalo bot within {hours} hours; it works once.", hours).format(hours=hours))
    return "\n".join([_("Zalo code: <code>{code}</code>").format(code=format_code(code)), where,
                      _("Then reply DONG Y there to agree to receive emergency blood requests on Zalo.")])


async def zalo_view(session: AsyncSession, donor: Donor, clock: Clock, settings: Settings,
                    *, new_code: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    """Her Zalo link as she sees it; with ``new_code``, a fresh code to link (another) Zalo chat."""
    if not settings.zalo.enabled:
        return _("Zalo is not set up for this bot yet."), None
    assert donor.id is not None  # a row read from the database
    ch = await channel_of(session, donor.id, ZALO)
    lines = [_("💬 Zalo: linked, emergency calls on.") if ch is not None and ch.consent_at is not None
             else _("💬 Zalo: linked; reply DONG Y in Zalo to agree to calls there.") if ch is not None
             else _("💬 Zalo: not linked.")]
    if new_code or ch is None:
        code = await issue_code(session, donor.id, ZALO, now=clock(), hours=settings.zalo.link_code_hours,
                                created_by=None)
        await session.commit()
        lines += ["", code_text(code, settings)]
    builder = InlineKeyboardBuilder()
    if ch is not None:
        builder.button(text=_("🔗 New code"), callback_data=DonorCb(action="zalo_code"))
        builder.button(text=_("✂️ Unlink Zalo"), callback_data=DonorCb(action="zalo_unlink"))
    return "\n".join(lines), builder.as_markup() if ch is not None else None


async def show_zalo(message: Message, session: AsyncSession, donor: Donor, clock: Clock, settings: Settings) -> None:
    text, markup = await zalo_view(session, donor, clock, settings, new_code=False)
    await message.answer(text, reply_markup=markup)


@router.callback_query(DonorCb.filter(F.action.in_({"zalo_code", "zalo_unlink"})))
async def zalo_action(query: CallbackQuery, callback_data: DonorCb, session: AsyncSession, roles: Roles,
                      clock: Clock, settings: Settings) -> None:
    donor = await session.get(Donor, roles.donor_id) if roles.donor_id else None
    if donor is None or donor.id is None:
        await query.answer(_("You are not registered as a donor yet. Send /start to register."), show_alert=True)
        return
    if callback_data.action == "zalo_unlink":
        if await unlink(session, donor.id, ZALO, actor=query.from_user.id, now=clock()):
            await session.commit()
            await query.answer(_("Zalo unlinked: no more calls there."))
        else:
            await query.answer(_("Zalo was not linked."))
        text, markup = "\n".join([_("💬 Zalo: not linked."), _("Send /me zalo to link it again.")]), None
    else:
        await query.answer()
        text, markup = await zalo_view(session, donor, clock, settings, new_code=True)
    await edit_text(query.message, text, reply_markup=markup)


# --- for a lead's member card (bot/routers/lead_members.py) ------------------------------------


async def channels_line(session: AsyncSession, donor: Donor) -> str:
    """The channels a member agreed to be called on, Telegram first (its consent is on her record:
    donors who registered since the channel table came have no Telegram row), then hers in her order."""
    assert donor.id is not None  # a row read from the database
    telegram = Channel.telegram.value
    agreed = [c for c in (await agreed_channels(session, [donor.id]))[donor.id] if c != telegram]
    if donor.telegram_id is not None and donor.consent_contact_at is not None:
        agreed.insert(0, telegram)
    return _("Channels: {v}").format(v=", ".join(CHANNEL_NAMES.get(c, c) for c in agreed) or "—")


async def lead_code_text(session: AsyncSession, donor: Donor, lead_id: int, clock: Clock, settings: Settings) -> str:
    """A code a lead gives a member to link her Zalo; the lead's id is in the audit record."""
    assert donor.id is not None  # a row read from the database
    code = await issue_code(session, donor.id, ZALO, now=clock(), hours=settings.zalo.link_code_hours,
                            created_by=lead_id)
    await session.commit()
    return "\n".join([_("Zalo code for {name}. Give it to them in person or by phone:").format(
        name=f"<b>{escape(donor.full_name)}</b>"), code_text(code, settings)])


__all__ = ["CHANNEL_NAMES", "channels_line", "lead_code_text", "show_zalo", "zalo_view"]
