"""The study page's study day in a real browser (issue 13): the intervals on the rating buttons,
the counts left today, the study-day settings, the Stats charts (their numbers against the
API's) and the speaker button."""

import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from .test_cards_page import FERNWEH, HYGGE, go, learner, sign_in

try:
    from playwright.sync_api import Page, expect
except ImportError:
    if os.environ.get("E2E_REQUIRED") == "1":
        raise  # CI: a missing Playwright is a failure, not a skip
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

#: A fake of the browser's speech synthesis with a German voice only: headless Chromium has no
#: voices, and a real one would make noise. What is said is kept in `window.spoken`.
FAKE_SPEECH = """
  window.spoken = [];
  const voices = [{ lang: "de-DE", name: "Test German", default: true, localService: true }];
  Object.defineProperty(window, "speechSynthesis", { value: {
    getVoices: () => voices, speak: (u) => window.spoken.push([u.text, u.lang, u.voice.name]),
    cancel: () => {}, addEventListener: () => {},
  } });
  window.SpeechSynthesisUtterance = class { constructor(text) { this.text = text; } };
"""


def database(server) -> Path:
    return server.log.parent / "e2e.sqlite3"


def intervals(page: Page) -> list[str]:
    return page.locator(".ratings .interval").all_inner_texts()


# --- Intervals on the buttons -----------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (30, "<1m"), (60, "1m"), (600, "10m"), (3599, "60m"), (5400, "1.5h"), (86400, "1d"),
        (4 * 86400, "4d"), (29 * 86400, "29d"), (105 * 86400, "3.5mo"), (400 * 86400, "1.1y"),
    ],
)  # fmt: skip
def test_interval_is_written_as_anki_writes_it(page: Page, server, seconds, shown) -> None:
    page.goto("/")
    written = page.evaluate(
        "async (s) => (await import('/static/ui.js')).formatInterval(s)", seconds
    )
    assert written == shown


def test_rating_buttons_show_the_intervals_of_the_previews(
    page: Page, api: httpx.Client, email: str, server
) -> None:
    headers = learner(api, email, FERNWEH)
    # A learnt card, due now, that FSRS would next send months away.
    now = datetime.now(UTC)
    with sqlite3.connect(database(server)) as db:
        db.execute(
            "UPDATE cards SET state = 'review', stability = 100.0, fsrs_difficulty = 5.0,"
            " reps = 5, due_at = ?, last_reviewed_at = ?",
            (str(now - timedelta(hours=1)), str(now - timedelta(days=100))),
        )
    sign_in(page, email)
    go(page, "Study")
    page.keyboard.press("Space")

    previews = api.get("/study", headers=headers).json()["items"][0]["previews"]
    expected = [
        page.evaluate(
            "async (s) => (await import('/static/ui.js')).formatInterval(s)",
            previews[rating]["interval_seconds"],
        )
        for rating in ("again", "hard", "good", "easy")
    ]
    expect(page.locator(".ratings .interval")).to_have_text(expected)
    assert expected[0] == "10m" and expected[2].endswith("mo"), expected
    expect(page.locator(".rate.good")).to_have_text(f"Good {expected[2]} 3")


def test_new_card_buttons_show_minutes_then_days(page: Page, api: httpx.Client, email: str):
    learner(api, email, FERNWEH)
    sign_in(page, email)
    go(page, "Study")
    page.keyboard.press("Space")
    shown = page.locator(".ratings .interval")
    expect(shown).to_have_count(4)
    expect(shown.nth(0)).to_have_text("1m")
    expect(shown.nth(2)).to_have_text("10m")
    expect(shown.nth(3)).to_have_text(re.compile(r"^\d+d$"))


# --- Counts left today ------------------------------------------------------------------


def test_counts_left_today_follow_the_daily_limits(
    page: Page, api: httpx.Client, email: str
) -> None:
    headers = learner(api, email, FERNWEH, HYGGE, {"word": "Saudade", "definition": "longing"})
    assert api.patch("/users/me", json={"new_per_day": 2}, headers=headers).is_success
    sign_in(page, email)
    go(page, "Study")
    today = page.locator("#study-today")
    expect(today).to_have_text("2 new · 200 reviews left today")
    expect(page.locator("#study-left")).to_have_text("3 cards left")

    page.keyboard.press("Space")
    page.keyboard.press("3")
    expect(today).to_have_text("1 new · 200 reviews left today")
    page.keyboard.press("Space")
    page.keyboard.press("3")

    expect(today).to_have_text("0 new · 200 reviews left today")
    expect(page.get_by_role("heading", name="All done for now")).to_be_visible()
    expect(page.locator("#study-empty-text")).to_contain_text("daily limits are reached")
    queue = api.get("/study", headers=headers).json()
    assert (queue["new_left_today"], queue["items"], queue["due_total"]) == (0, [], 1)


# --- Settings ---------------------------------------------------------------------------


def test_settings_offer_the_browsers_time_zone_and_save_the_study_day(
    browser, server, api: httpx.Client, email: str
) -> None:
    headers = learner(api, email)
    context = browser.new_context(base_url=server.url, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, email)
        go(page, "Settings")
        form = page.locator("#settings-form")
        expect(form.get_by_label("Time zone")).to_have_value("Asia/Tokyo")  # the account: UTC
        expect(form.get_by_label("A new day starts at")).to_have_value("4")
        expect(form.get_by_label("New cards a day")).to_have_value("20")
        expect(form.get_by_label("Reviews a day")).to_have_value("200")

        form.get_by_label("New cards a day").fill("-3")
        form.get_by_role("button", name="Save settings").click()
        expect(form.get_by_role("alert")).to_have_text(
            "New cards a day: use a whole number from 0 to 9999."
        )
        assert api.get("/users/me", headers=headers).json()["new_per_day"] == 20

        form.get_by_label("Time zone").select_option("America/Sao_Paulo")
        form.get_by_label("A new day starts at").select_option("6")
        form.get_by_label("New cards a day").fill("5")
        form.get_by_label("Reviews a day").fill("50")
        form.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status").first).to_have_text("Settings saved.")

        me = api.get("/users/me", headers=headers).json()
        assert {
            k: me[k] for k in ("timezone", "day_starts_at", "new_per_day", "reviews_per_day")
        } == {
            "timezone": "America/Sao_Paulo",
            "day_starts_at": 6,
            "new_per_day": 5,
            "reviews_per_day": 50,
        }
        page.reload()
        go(page, "Settings")
        expect(form.get_by_label("Time zone")).to_have_value("America/Sao_Paulo")
        expect(form.get_by_label("A new day starts at")).to_have_value("6")
        assert not errors
    finally:
        context.close()


# --- Stats charts -----------------------------------------------------------------------


def seed_days(server, user_id: int) -> None:
    """Move reviews onto earlier days, and cards' due dates onto later ones, in the server's
    SQLite database (the API only reviews now)."""
    now = datetime.now(UTC)
    with sqlite3.connect(database(server)) as db:
        reviews = db.execute(
            "SELECT id FROM reviews WHERE user_id = ? ORDER BY id", (user_id,)
        ).fetchall()
        for n, (review_id,) in enumerate(reviews):
            when = now - timedelta(days=n % 9 * 3)
            db.execute(
                "UPDATE reviews SET reviewed_at = ?, rating = ? WHERE id = ?",
                (str(when), "again" if n % 4 == 0 else "good", review_id),
            )
        cards = db.execute("SELECT id FROM cards WHERE user_id = ? ORDER BY id", (user_id,))
        for n, (card_id,) in enumerate(cards.fetchall()):
            db.execute(
                "UPDATE cards SET state = 'review', stability = 5.0, fsrs_difficulty = 5.0,"
                " due_at = ? WHERE id = ?",
                (str(now + timedelta(days=n % 12 * 2, hours=1)), card_id),
            )


def test_stats_charts_show_the_apis_forecast_and_history(
    page: Page, api: httpx.Client, email: str, server, screenshots: Path
) -> None:
    words = [{"word": f"word{n}", "definition": f"meaning {n}"} for n in range(24)]
    headers = learner(api, email, *words)
    for word in api.get("/words", params={"limit": 100}, headers=headers).json()["items"]:
        for rating in ("good", "again", "good"):
            r = api.post(f"/words/{word['id']}/reviews", json={"rating": rating}, headers=headers)
            assert r.status_code == 201, r.text
    seed_days(server, api.get("/users/me", headers=headers).json()["id"])
    forecast = api.get("/stats/forecast", headers=headers).json()["items"]
    history = api.get("/stats/history", headers=headers).json()["items"]
    assert sum(day["due"] for day in forecast) == 24 and sum(d["reviews"] for d in history) == 72

    sign_in(page, email)
    go(page, "Stats")

    bars = page.locator("#forecast-chart svg g.day")
    expect(bars).to_have_count(30)
    drawn = bars.evaluate_all("(gs) => gs.map((g) => [g.dataset.date, Number(g.dataset.value)])")
    assert drawn == [[day["date"], day["due"]] for day in forecast]
    days = page.locator("#history-chart svg g.day")
    expect(days).to_have_count(30)
    drawn = days.evaluate_all(
        "(gs) => gs.map((g) => [g.dataset.date, Number(g.dataset.value), Number(g.dataset.part)])"
    )
    assert drawn == [[day["date"], day["reviews"], day["again"]] for day in history]
    again = sum(day["again"] for day in history)
    expect(page.locator("#history-summary")).to_have_text(
        f"72 reviews in 30 days, {round(100 * again / 72)}% of them “again”."
    )
    expect(page.locator("#forecast-summary")).to_have_text(
        f"24 cards due in 30 days, {forecast[0]['due']} of them today."
    )
    # Bar heights follow the numbers: the tallest bar is the day with the most reviews.
    heights = days.locator("rect.bar:not(.part)").evaluate_all(
        "(rs) => rs.map((r) => Number(r.getAttribute('height')))"
    )
    busiest = max(range(30), key=lambda n: history[n]["reviews"])
    assert heights.index(max(heights)) == busiest
    first = days.first.locator("title")
    expect(first).to_have_text(re.compile(r"^\d+ \w{3}: \d+ reviews?, \d+ again \((\d+%|–)\)$"))
    page.screenshot(path=screenshots / "stats-charts-desktop.png", full_page=True)


# --- Pronunciation ----------------------------------------------------------------------


def test_speaker_button_and_p_say_the_word_in_its_language(
    open_page, server, api: httpx.Client, email: str, screenshots: Path
) -> None:
    learner(api, email, {**FERNWEH, "reverse": True}, HYGGE)
    page = open_page(server)
    page.context.add_init_script(FAKE_SPEECH)
    sign_in(page, email)
    go(page, "Study")
    speaker = page.get_by_role("button", name="Say “Fernweh” (P)")
    expect(speaker).to_be_visible()

    speaker.click()
    page.keyboard.press("p")
    assert page.evaluate("window.spoken") == [["Fernweh", "de", "Test German"]] * 2
    page.get_by_role("button", name="Show answer").click()  # Space would press the speaker
    page.screenshot(path=screenshots / "study-intervals-desktop.png", full_page=True)
    page.keyboard.press("3")

    # The reverse card: the word is the answer, so it is said only once it shows.
    expect(page.locator("#study-prompt-label")).to_have_text("Recall the word")
    expect(page.locator("#speak")).to_be_hidden()
    page.keyboard.press("p")
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Say “Fernweh” (P)")).to_be_visible()
    page.keyboard.press("3")

    # Danish: the browser has no voice for it, so there is no button and P does nothing.
    expect(page.locator("#study-word")).to_have_text("Hygge")
    expect(page.locator("#speak")).to_be_hidden()
    page.keyboard.press("p")
    assert len(page.evaluate("window.spoken")) == 2
    assert not page.script_errors
