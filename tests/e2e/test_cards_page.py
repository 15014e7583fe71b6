"""The study page's cards in a real browser (issue 12): reverse cards, undo, suspend, the word
editor's switches, and the settings view with "Optimize my schedule"."""

import os
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:
    if os.environ.get("E2E_REQUIRED") == "1":
        raise  # CI: a missing Playwright is a failure, not a skip
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
FERNWEH = {"word": "Fernweh", "definition": "longing for faraway places", "language": "de"}
HYGGE = {"word": "Hygge", "definition": "a cosy, contented mood", "language": "da"}


def learner(api: httpx.Client, email: str, *words: dict) -> dict[str, str]:
    """Register a learner with these words through the API; returns their auth header."""
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD}).is_success
    tokens = api.post("/auth/token", data={"username": email, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for word in words:
        r = api.post("/words", json=word, headers=headers)
        assert r.status_code == 201, r.text
    return headers


def sign_in(page: Page, email: str) -> None:
    page.goto("/")
    form = page.locator("#signin-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()


def go(page: Page, link: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=link, level=1)).to_be_visible()


def status(page: Page):
    return page.get_by_role("status").first


def only_word(api: httpx.Client, headers: dict[str, str], word: str) -> dict:
    items = api.get("/words", params={"q": word}, headers=headers).json()["items"]
    assert len(items) == 1, items
    return items[0]


def test_reverse_card_shows_the_definition_and_asks_for_the_word(
    page: Page, api: httpx.Client, email: str, screenshots: Path
) -> None:
    headers = learner(api, email, {**FERNWEH, "reverse": True})
    sign_in(page, email)
    go(page, "Study")
    card = page.locator("#study-card")

    # The forward card first: the word, then its meaning.
    expect(page.locator("#study-left")).to_have_text("2 cards left")
    expect(page.locator("#study-prompt-label")).to_have_text("Recall the meaning")
    expect(page.locator("#study-word")).to_have_text("Fernweh")
    page.keyboard.press("Space")
    expect(page.locator("#study-definition")).to_have_text(FERNWEH["definition"])
    page.keyboard.press("3")
    expect(status(page)).to_contain_text("“Fernweh”: Good.")

    # Then the reverse card: the meaning, then the word.
    expect(page.locator("#study-left")).to_have_text("1 card left")
    expect(card).to_have_attribute("data-direction", "reverse")
    expect(page.locator("#study-prompt-label")).to_have_text("Recall the word")
    expect(page.locator("#study-prompt-definition")).to_have_text(FERNWEH["definition"])
    expect(page.locator("#study-word")).to_be_hidden()
    expect(page.locator("#study-meta")).to_contain_text("reverse")
    expect(page.locator("#study-answer-word")).to_be_hidden()
    page.keyboard.press("Space")
    expect(page.locator("#study-answer-word")).to_have_text("Fernweh")
    expect(page.locator("#study-definition")).to_be_hidden()
    page.screenshot(path=screenshots / "study-reverse-desktop.png")
    page.get_by_role("button", name="Easy").click()
    expect(page.get_by_role("heading", name="All done for now")).to_be_visible()

    word = only_word(api, headers, "Fernweh")
    reviews = api.get(f"/words/{word['id']}/reviews", headers=headers).json()["items"]
    assert [(r["direction"], r["rating"]) for r in reviews] == [
        ("reverse", "easy"),
        ("forward", "good"),
    ]
    assert (word["schedule"]["reps"], word["reverse_schedule"]["reps"]) == (1, 1)


def test_undo_takes_back_the_last_rating(page: Page, api: httpx.Client, email: str) -> None:
    headers = learner(api, email, FERNWEH)
    sign_in(page, email)
    go(page, "Study")
    undo = page.get_by_role("button", name="Undo last rating")
    expect(undo).to_be_hidden()
    expect(page.locator("#study-word")).to_have_text("Fernweh")
    page.keyboard.press("Space")
    page.keyboard.press("1")  # again: back in a minute, so not due now
    expect(page.get_by_role("heading", name="All done for now")).to_be_visible()
    expect(undo).to_be_visible()
    assert only_word(api, headers, "Fernweh")["schedule"]["reps"] == 1

    page.keyboard.press("u")

    expect(status(page)).to_have_text("Undid “Fernweh”: Again.")
    expect(page.locator("#study-left")).to_have_text("1 card left")
    expect(page.locator("#study-word")).to_have_text("Fernweh")
    expect(undo).to_be_hidden()
    word = only_word(api, headers, "Fernweh")
    assert (word["schedule"]["state"], word["schedule"]["reps"]) == ("new", 0)
    assert api.get("/stats", headers=headers).json()["reviews_total"] == 0

    # The button does the same.
    page.keyboard.press("Space")
    page.keyboard.press("4")
    expect(undo).to_be_visible()
    undo.click()
    expect(status(page)).to_have_text("Undid “Fernweh”: Easy.")
    assert api.get("/stats", headers=headers).json()["reviews_total"] == 0


def test_suspend_sets_the_word_aside_until_the_editor_brings_it_back(
    page: Page, api: httpx.Client, email: str
) -> None:
    headers = learner(api, email, FERNWEH, HYGGE)
    sign_in(page, email)
    go(page, "Study")
    expect(page.locator("#study-left")).to_have_text("2 cards left")
    expect(page.locator("#study-word")).to_have_text("Fernweh")

    page.get_by_role("button", name="Suspend this word").click()

    expect(status(page)).to_contain_text("Suspended “Fernweh”.")
    expect(page.locator("#study-left")).to_have_text("1 card left")
    expect(page.locator("#study-word")).to_have_text("Hygge")
    assert only_word(api, headers, "Fernweh")["suspended"] is True

    go(page, "Words")
    fernweh = page.locator(".word-item", has=page.get_by_role("heading", name="Fernweh"))
    expect(fernweh).to_contain_text("Suspended")
    page.get_by_role("button", name="Edit Fernweh").click()
    dialog = page.get_by_role("dialog", name="Edit “Fernweh”")
    suspended = dialog.get_by_label("Suspended (set aside, not studied)")
    expect(suspended).to_be_checked()
    suspended.uncheck()
    dialog.get_by_role("button", name="Save changes").click()
    expect(status(page)).to_have_text("Saved “Fernweh”.")
    assert only_word(api, headers, "Fernweh")["suspended"] is False
    go(page, "Study")
    expect(page.locator("#study-left")).to_have_text("2 cards left")


def test_word_editor_turns_the_reverse_card_on_and_off(
    page: Page, api: httpx.Client, email: str
) -> None:
    headers = learner(api, email)
    sign_in(page, email)
    page.get_by_role("button", name="Add a word").click()
    dialog = page.get_by_role("dialog", name="Add a word")
    dialog.get_by_label("Word", exact=True).fill("Hygge")
    dialog.get_by_label("Definition").fill(HYGGE["definition"])
    reverse = dialog.get_by_label("Study it in reverse too")
    expect(reverse).not_to_be_checked()  # the account's default
    reverse.check()
    dialog.get_by_role("button", name="Add word").click()
    expect(status(page)).to_have_text("Added “Hygge”.")
    word = only_word(api, headers, "Hygge")
    assert word["reverse"] is True
    assert word["reverse_schedule"]["state"] == "new"
    hygge = page.locator(".word-item", has=page.get_by_role("heading", name="Hygge"))
    expect(hygge).to_contain_text("Both ways")

    page.get_by_role("button", name="Edit Hygge").click()
    dialog = page.get_by_role("dialog", name="Edit “Hygge”")
    expect(dialog.get_by_label("Study it in reverse too")).to_be_checked()
    dialog.get_by_label("Study it in reverse too").uncheck()
    dialog.get_by_role("button", name="Save changes").click()
    expect(status(page)).to_have_text("Saved “Hygge”.")
    word = only_word(api, headers, "Hygge")
    assert (word["reverse"], word["reverse_schedule"]) == (False, None)


def test_settings_save_retention_and_reverse_cards_by_default(
    page: Page, api: httpx.Client, email: str, screenshots: Path
) -> None:
    headers = learner(api, email)
    sign_in(page, email)
    go(page, "Settings")
    form = page.locator("#settings-form")
    retention = form.get_by_label("Desired retention")
    expect(retention).to_have_value("0.90")
    expect(form.get_by_label("Study new words in reverse too")).not_to_be_checked()

    retention.fill("1.5")
    form.get_by_role("button", name="Save settings").click()
    expect(form.get_by_role("alert")).to_have_text(
        "Desired retention: use a number from 0.70 to 0.99."
    )
    retention.fill("0.85")
    form.get_by_label("Study new words in reverse too").check()
    form.get_by_role("button", name="Save settings").click()

    expect(status(page)).to_have_text("Settings saved.")
    me = api.get("/users/me", headers=headers).json()
    assert (me["desired_retention"], me["reverse_cards"]) == (0.85, True)
    page.screenshot(path=screenshots / "settings-desktop.png", full_page=True)
    go(page, "Words")
    page.get_by_role("button", name="Add a word").click()
    dialog = page.get_by_role("dialog", name="Add a word")
    expect(dialog.get_by_label("Study it in reverse too")).to_be_checked()
    page.keyboard.press("Escape")
    page.reload()
    go(page, "Settings")
    expect(retention).to_have_value("0.85")


def seed_history(database: Path, user_id: int, days: int = 120, seed: int = 5) -> int:
    """Reviews on earlier days for each of the user's cards, written straight into the
    server's SQLite database (the API only reviews now); returns how many."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    rows = []
    with sqlite3.connect(database) as db:
        cards = db.execute(
            "SELECT id, word_id FROM cards WHERE user_id = ? ORDER BY id", (user_id,)
        ).fetchall()
        for card_id, word_id in cards:
            when, interval = start + timedelta(days=rng.randrange(20)), 1.0
            while when < start + timedelta(days=days):
                rating = rng.choices(("again", "hard", "good", "easy"), (15, 10, 65, 10))[0]
                at = str(when)
                rows.append(
                    (card_id, word_id, user_id, rating, at, when.date().isoformat(), at, at)
                )
                interval = 1.0 if rating == "again" else interval * rng.uniform(1.5, 3.0)
                when += timedelta(days=interval)
        db.executemany(
            "INSERT INTO reviews (card_id, direction, word_id, user_id, rating, reviewed_at,"
            " reviewed_on, state_before, due_before, state_after, stability_after,"
            " difficulty_after, due_after) VALUES (?, 'forward', ?, ?, ?, ?, ?, 'review', ?,"
            " 'review', 1.0, 5.0, ?)",
            rows,
        )
    return len(rows)


def test_optimize_my_schedule_shows_the_figures(
    page: Page, api: httpx.Client, email: str, server
) -> None:
    words = [{"word": f"word{n}", "definition": f"meaning {n}"} for n in range(40)]
    headers = learner(api, email, *words)
    user_id = api.get("/users/me", headers=headers).json()["id"]
    sign_in(page, email)
    go(page, "Settings")
    expect(page.locator("#fsrs-parameters-state")).to_contain_text("standard parameters")
    optimize = page.get_by_role("button", name="Optimize my schedule")

    optimize.click()  # no history yet

    result = page.locator("#optimize-result")
    expect(result.get_by_role("heading")).to_have_text("Parameters kept")
    expect(page.locator("#optimize-reason")).to_contain_text("Too little history")
    expect(result.locator("dt")).to_have_text(["Reviews used"])

    reviews = seed_history(server.log.parent / "e2e.sqlite3", user_id)
    assert reviews > 200
    optimize.click()

    expect(result.get_by_role("heading")).to_have_text("New parameters applied")
    expect(result.locator("dt")).to_have_text(
        ["Reviews used", "Log loss (lower is better)", "RMSE (lower is better)"]
    )
    for figure in (result.locator("dd").nth(1), result.locator("dd").nth(2)):
        expect(figure).to_have_text(re.compile(r"^\d\.\d{4} → \d\.\d{4}$"))
        before, after = (float(x) for x in figure.inner_text().split(" → "))
        assert after < before
    expect(result.locator("dd").first).to_have_text(f"{reviews:,}")
    me = api.get("/users/me", headers=headers).json()
    assert me["fsrs_parameters"] is not None and len(me["fsrs_parameters"]) == 21
    expect(page.locator("#fsrs-parameters-state")).to_contain_text("fitted to your own history")
