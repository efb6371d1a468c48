"""The playground in a real headless Chromium: a new donor registers, a nurse posts, the donor comes.

Playwright for Python drives Debian's /usr/bin/chromium (`.ci/run` installs it when
missing); without a Chromium or without Playwright the test is skipped, saying why.
A screenshot of the nurse's chat is saved in test-output/ at the repository root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import Donor
from redreserve.playground.server import running_playground

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
expect = playwright_api.expect

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
# Flags for a root user in a sandbox with no network: no crash reporter, no Google services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP = 15_000  # ms; the bot keeps Telegram's 1 message/s per chat, so a few replies take seconds


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture
async def page(tmp_path):
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)")
    async with playwright_api.async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except playwright_api.Error as exc:
            pytest.skip(f"Chromium at {executable} does not start: {str(exc).splitlines()[0]}")
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(STEP)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        await browser.close()
        assert not errors, f"the page raised: {errors}"


def persona(page, role: str, nth: int = 0):
    return page.locator(f'.persona[data-role="{role}"]').nth(nth)


def last_bot_message(page):
    return page.locator(".msg.bot").last


async def tap(page, label: str) -> None:
    """Tap the inline button with this label in the newest bot message that has it."""
    await page.locator(".msg.bot .ikb button", has_text=label).last.click()


async def say(page, text: str) -> None:
    await page.fill("#composer-text", text)
    await page.press("#composer-text", "Enter")
    await expect(page.locator(".msg.me").last).to_contain_text(text)


async def test_register_post_answer_and_the_nurse_sees_who_is_coming(page, tmp_path):
    async with running_playground(port=0, db_path=tmp_path / "playground.db") as pg:
        await page.goto(pg.url)
        await expect(page.locator(".persona")).to_have_count(len(pg.personas))

        # A new visitor registers as a donor, in English, sharing phone and location with the buttons.
        await persona(page, "visitor").click()
        await expect(page.locator("#chat-name")).to_have_text(pg.persona("visitor").name)
        await say(page, "/start")
        await tap(page, "English")
        for label in ("Keep my profile", "Contact me in emergencies", "Use my location"):
            await tap(page, label)
            await expect(page.locator(".msg.bot .ikb button", has_text="☑ " + label)).to_have_count(1)
        await tap(page, "Continue")
        await page.locator('#reply-keyboard button[data-kind="contact"]').click()
        await expect(page.locator(".msg.me").last).to_contain_text(pg.persona("visitor").phone)
        await expect(last_bot_message(page)).to_contain_text("full name")
        await say(page, "Nguyễn Thị Lan")
        await tap(page, "O−")
        await tap(page, "Female")
        await expect(last_bot_message(page)).to_contain_text("date of birth")
        await say(page, "15/05/1990")
        await expect(last_bot_message(page)).to_contain_text("weight")
        await say(page, "58")
        await page.locator('#reply-keyboard button[data-kind="location"]').click()
        await expect(page.locator("#location-dialog")).to_be_visible()
        await page.locator("#map").click()  # the middle of the Hải Phòng view: a few km from the hospital
        await page.click("#loc-send")
        await expect(page.locator(".msg.me").last.locator(".pin-card")).to_have_count(1)
        await tap(page, "never")
        await tap(page, "Hải Phòng")
        await tap(page, "Confirm")
        await expect(last_bot_message(page)).to_contain_text("Thank you, Nguyễn Thị Lan")
        async with pg.sessionmaker() as s:
            donor = (await s.exec(select(Donor).where(Donor.telegram_id == pg.persona("visitor").user_id))).one()
        assert (donor.abo, donor.rh) == ("O", "-") and abs(donor.lat - 20.85) < 0.1

        # Markup typed by a person is shown as text and never runs.
        await say(page, "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 1\">")
        assert await page.evaluate("window.__pwned") is None
        await expect(page.locator(".msg.me").last).to_contain_text("<script>window.__pwned = 1</script>")

        # The nurse posts a request and confirms it with one tap.
        await persona(page, "staff").click()
        await say(page, "/urgent O- 2")
        await expect(last_bot_message(page).locator(".ikb button")).to_have_count(2)
        confirmation_id = await last_bot_message(page).get_attribute("data-message-id")
        confirmation = page.locator(f'.msg[data-message-id="{confirmation_id}"]')
        await confirmation.locator(".ikb button").first.click()
        await expect(last_bot_message(page)).to_contain_text("#1")

        # The new donor gets the call (an unread badge first) and answers "available".
        await expect(persona(page, "visitor").locator(".badge")).to_be_visible()
        await persona(page, "visitor").click()
        call = page.locator(".msg.bot", has_text="Hữu nghị Việt Tiệp").last
        await call.locator(".ikb button").first.click()
        await expect(page.locator("#toast")).to_contain_text("Thank you")
        await expect(page.locator(".msg.bot .pin-card")).to_contain_text("Việt Tiệp")  # where to go, as a pin

        # The club lead sends a roster file with the 📎 button; the bot checks it before importing.
        await persona(page, "lead").click()
        await page.set_input_files("#file-input", files=[{
            "name": "roster.csv", "mimeType": "text/csv",
            "buffer": "name,phone,blood_type\nTrần Văn An,0912 345 678,O-\n".encode()}])
        await expect(page.locator(".msg.me").last).to_contain_text("roster.csv")
        await expect(page.locator(".msg.bot", has_text="roster.csv").locator(".ikb button")).to_have_count(2)

        # The nurse's chat now names who is coming.
        await persona(page, "staff").click()
        await expect(page.locator("#messages")).to_contain_text("Nguyễn Thị Lan")
        # The confirmation was edited in place into the live board, which names her.
        await expect(confirmation.locator(".meta")).to_contain_text("edited")
        await expect(confirmation).to_contain_text("Nguyễn Thị Lan")
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "playground-staff.png"), full_page=True)
        await page.screenshot(path=str(tmp_path / "playground-staff.png"), full_page=True)


async def test_at_phone_width_nothing_spills_sideways_and_a_nurse_can_post(page, tmp_path):
    await page.set_viewport_size({"width": 390, "height": 844})
    async with running_playground(port=0, db_path=tmp_path / "playground.db") as pg:
        await page.goto(pg.url)
        await expect(page.locator(".persona")).to_have_count(len(pg.personas))
        await persona(page, "staff").click()
        await say(page, "/urgent O- 2")
        await expect(last_bot_message(page).locator(".ikb button")).to_have_count(2)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        for locator in (page.locator("#composer-text"), page.locator("#send"),
                        last_bot_message(page).locator(".ikb button").first):
            box = await locator.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        await last_bot_message(page).locator(".ikb button").first.click()
        await expect(last_bot_message(page)).to_contain_text("#1")
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "playground-390px.png"))
