"""The learner's study day: the settings that define it (`timezone`, `day_starts_at`), the
daily limits (`new_per_day`, `reviews_per_day`) of `/study`, the rating previews, and the
statistics over time (`/stats/forecast`, `/stats/history`), as API.md's "Account settings for
daily study", "Study queue with daily limits and previews" and "Statistics over time" say.

Every test runs on the frozen `clock` (START, noon UTC on 2024-03-10) and moves it itself.
"""

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsrs
import pytest
from conftest import START, Clock, assert_401, make_review, make_word, ts

import vocab
from models import Card, Review, State, User

DEFAULT_SETTINGS = {
    "timezone": "UTC",
    "day_starts_at": 4,
    "new_per_day": 20,
    "reviews_per_day": 200,
}


async def patch_me(client, headers, **settings: Any) -> dict[str, Any]:
    """PATCH /users/me (asserting 200) and return the user."""
    r = await client.patch("/users/me", headers=headers, json=settings)
    assert r.status_code == 200, r.text
    return r.json()


async def study(client, headers, **params: Any) -> dict[str, Any]:
    r = await client.get("/study", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def history(client, headers, days: int) -> list[dict[str, Any]]:
    r = await client.get("/stats/history", headers=headers, params={"days": days})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def forecast(client, headers, days: int) -> list[dict[str, Any]]:
    r = await client.get("/stats/forecast", headers=headers, params={"days": days})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def import_words(client, headers, count: int) -> None:
    """Import `count` words w00, w01, … in one CSV (created in that order)."""
    rows = "".join(f"w{i:02},meaning {i}\n" for i in range(count))
    r = await client.post(
        "/words/import",
        headers=headers,
        files={"file": ("words.csv", f"word,definition\n{rows}", "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == count


def words_of(queue: dict[str, Any]) -> list[str]:
    return [item["word"] for item in queue["items"]]


# --- Settings ---


async def test_new_user_has_the_default_study_settings(client, auth):
    r = await client.get("/users/me", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert {name: r.json()[name] for name in DEFAULT_SETTINGS} == DEFAULT_SETTINGS


async def test_update_me_study_settings_is_200_and_stored(client, auth):
    settings = {
        "timezone": "America/Argentina/Buenos_Aires",
        "day_starts_at": 0,
        "new_per_day": 9999,
        "reviews_per_day": 0,
    }
    body = await patch_me(client, auth.headers, **settings)

    assert body == {**auth.user, **settings}
    user = await User.get(id=auth.id)
    assert {name: getattr(user, name) for name in settings} == settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../../etc/passwd"),
        ("timezone", "/usr/share/zoneinfo/UTC"),
        ("timezone", ""),
        ("timezone", "europe/berlin"),  # IANA names are case-sensitive
        ("timezone", 1),
        ("timezone", None),
        ("day_starts_at", -1),
        ("day_starts_at", 24),
        ("day_starts_at", "4"),
        ("day_starts_at", 4.5),
        ("day_starts_at", True),
        ("day_starts_at", None),
        ("new_per_day", -1),
        ("new_per_day", 10000),
        ("new_per_day", "20"),
        ("reviews_per_day", -1),
        ("reviews_per_day", 10000),
        ("reviews_per_day", None),
    ],
)
async def test_update_me_bad_study_setting_is_422(client, auth, name, value):
    r = await client.patch("/users/me", headers=auth.headers, json={name: value})

    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    # A null is refused by the whole body's check, which names the field.
    assert error["loc"] == ["body", name] or name in error["msg"]
    user = await User.get(id=auth.id)
    assert {name: getattr(user, name) for name in DEFAULT_SETTINGS} == DEFAULT_SETTINGS


async def test_update_me_unknown_time_zone_says_why(client, auth):
    r = await client.patch("/users/me", headers=auth.headers, json={"timezone": "Europe/Bxl"})
    assert r.status_code == 422, r.text
    assert "Unknown time zone" in r.json()["detail"][0]["msg"]


async def test_changing_time_zone_changes_no_stored_data_only_the_days(client, auth, clock):
    word = await make_word(client, auth.headers)
    clock.set(datetime(2024, 3, 10, 20, 0, tzinfo=UTC))
    await make_review(client, auth.headers, word["id"], rating="good")
    reviews = await Review.all().values()
    cards = await Card.all().values()
    assert [day["reviews"] for day in await history(client, auth.headers, 2)] == [0, 1]

    # 20:00 UTC is 05:00 on 11 March in Tokyo: the review's day there has just begun.
    await patch_me(client, auth.headers, timezone="Asia/Tokyo")

    assert await history(client, auth.headers, 2) == [
        {"date": "2024-03-10", "reviews": 0, "again": 0},
        {"date": "2024-03-11", "reviews": 1, "again": 0},
    ]
    assert await Review.all().values() == reviews
    assert await Card.all().values() == cards


# --- Where a study day begins ---

#: (timezone, day_starts_at, the instant a study day begins, that day's date).
DAY_STARTS = [
    pytest.param("Pacific/Pago_Pago", 4, "2024-03-10T15:00", "2024-03-10", id="UTC-11"),
    pytest.param("America/Los_Angeles", 4, "2024-01-15T12:00", "2024-01-15", id="UTC-8"),
    pytest.param("America/St_Johns", 23, "2024-01-16T02:30", "2024-01-15", id="UTC-3:30-at-23"),
    pytest.param("UTC", 0, "2024-01-15T00:00", "2024-01-15", id="UTC-midnight"),
    pytest.param("UTC", 4, "2024-01-15T04:00", "2024-01-15", id="UTC-default"),
    pytest.param("Asia/Kolkata", 0, "2024-01-14T18:30", "2024-01-15", id="UTC+5:30"),
    pytest.param("Asia/Tokyo", 4, "2024-01-14T19:00", "2024-01-15", id="UTC+9"),
    pytest.param("Pacific/Chatham", 4, "2024-06-14T15:15", "2024-06-15", id="UTC+12:45"),
    pytest.param("Pacific/Kiritimati", 4, "2024-01-14T14:00", "2024-01-15", id="UTC+14"),
    # Berlin's clocks go from 02:00 CET to 03:00 CEST on 31 March 2024: that study day is
    # 23 hours long, and an hour that never happened begins its day when the clocks jump.
    pytest.param("Europe/Berlin", 4, "2024-03-30T03:00", "2024-03-30", id="Berlin-before-DST"),
    pytest.param("Europe/Berlin", 4, "2024-03-31T02:00", "2024-03-31", id="Berlin-DST-day"),
    pytest.param("Europe/Berlin", 2, "2024-03-31T01:00", "2024-03-31", id="Berlin-skipped-hour"),
    pytest.param("Europe/Berlin", 4, "2024-10-27T03:00", "2024-10-27", id="Berlin-DST-ends"),
]


@pytest.mark.parametrize(("zone", "hour", "start", "day"), DAY_STARTS)
async def test_study_day_begins_at_day_starts_at_in_the_time_zone(
    client, auth, clock: Clock, zone, hour, start, day
):
    begins = datetime.fromisoformat(start).replace(tzinfo=UTC)
    clock.set(begins - timedelta(days=3))
    await patch_me(client, auth.headers, timezone=zone, day_starts_at=hour)
    word = await make_word(client, auth.headers)

    # The last review is 22 hours in: within even a day that DST shortens to 23 hours.
    for when in (begins - timedelta(seconds=1), begins, begins + timedelta(hours=22)):
        clock.set(when)
        await make_review(client, auth.headers, word["id"], rating="again")

    previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    assert await history(client, auth.headers, 2) == [
        {"date": previous, "reviews": 1, "again": 1},
        {"date": day, "reviews": 2, "again": 2},
    ]
    r = await client.get("/stats", headers=auth.headers)
    assert (r.json()["reviews_today"], r.json()["streak_days"]) == (2, 2)
    assert await Review.filter(user_id=auth.id).count() == 3


async def test_streak_counts_study_days_not_utc_days(client, auth, clock):
    await patch_me(client, auth.headers, timezone="Asia/Tokyo")
    word = await make_word(client, auth.headers)
    # Both on Tokyo's study day of 10 March (from 19:00 UTC on the 9th), on two UTC days.
    for when in (datetime(2024, 3, 9, 20, 0, tzinfo=UTC), START):
        clock.set(when)
        await make_review(client, auth.headers, word["id"], rating="again")

    r = await client.get("/stats", headers=auth.headers)

    assert r.status_code == 200, r.text
    assert (r.json()["streak_days"], r.json()["reviews_today"]) == (1, 2)


async def test_streak_longer_than_one_window_is_counted_whole(client, auth, clock):
    clock.set(START - timedelta(days=500))
    word = await make_word(client, auth.headers)
    for days_ago in range(400, 0, -1):  # 400 days in a row, ending yesterday: three reads
        clock.set(START - timedelta(days=days_ago))
        await make_review(client, auth.headers, word["id"], rating="again")
    clock.set(START)

    r = await client.get("/stats", headers=auth.headers)

    assert (r.json()["streak_days"], r.json()["reviews_today"]) == (400, 0)


# --- Daily limits ---


async def test_new_per_day_shows_three_new_cards_today_and_three_more_the_next_day(
    client, auth, clock
):
    await patch_me(client, auth.headers, new_per_day=3)
    await import_words(client, auth.headers, 50)

    today = await study(client, auth.headers)
    assert words_of(today) == ["w00", "w01", "w02"]
    assert (today["new_left_today"], today["due_total"]) == (3, 50)

    for item in today["items"]:
        await make_review(client, auth.headers, item["id"], rating="good")  # due in 10 minutes
    done = await study(client, auth.headers)
    assert (words_of(done), done["new_left_today"], done["due_total"]) == ([], 0, 47)

    # The next study day begins at 04:00 UTC on 11 March: not a minute before.
    clock.set(datetime(2024, 3, 11, 3, 59, tzinfo=UTC))
    late = await study(client, auth.headers)
    assert (words_of(late), late["new_left_today"]) == (["w00", "w01", "w02"], 0)
    clock.set(datetime(2024, 3, 11, 4, 0, tzinfo=UTC))
    tomorrow = await study(client, auth.headers)
    assert words_of(tomorrow) == ["w00", "w01", "w02", "w03", "w04", "w05"]
    assert [item["direction"] for item in tomorrow["items"]] == ["forward"] * 6
    assert (tomorrow["new_left_today"], tomorrow["reviews_left_today"]) == (3, 200)
    assert await Card.filter(user_id=auth.id, state=State.NEW).count() == 47


async def test_reviews_per_day_stops_reviews_but_not_new_cards(client, auth, clock):
    await patch_me(client, auth.headers, reviews_per_day=2, new_per_day=1)
    words = [await make_word(client, auth.headers, word=f"w{i}") for i in range(5)]
    for word in words[:3]:
        await make_review(client, auth.headers, word["id"], rating="again")  # due in 1 minute
    clock.advance(minutes=5)

    queue = await study(client, auth.headers)
    # Two of the three due cards; the three first reviews used more than the one new card.
    assert words_of(queue) == ["w0", "w1"]
    assert (queue["new_left_today"], queue["reviews_left_today"]) == (0, 2)
    await patch_me(client, auth.headers, new_per_day=4)
    queue = await study(client, auth.headers)
    assert words_of(queue) == ["w0", "w1", "w3"]  # raising the limit lets one more in
    assert (queue["new_left_today"], queue["reviews_left_today"]) == (1, 2)

    for word in words[:2]:
        await make_review(client, auth.headers, word["id"], rating="good")
    queue = await study(client, auth.headers)
    assert words_of(queue) == ["w3"]
    assert (queue["reviews_left_today"], queue["due_total"]) == (0, 3)
    assert await Review.filter(user_id=auth.id).exclude(state_before=State.NEW).count() == 2


async def test_undone_first_review_gives_the_new_card_back(client, auth, clock):
    await patch_me(client, auth.headers, new_per_day=1)
    first = await make_word(client, auth.headers, word="first")
    await make_word(client, auth.headers, word="second")
    body = await make_review(client, auth.headers, first["id"], rating="easy")
    assert (await study(client, auth.headers))["new_left_today"] == 0

    r = await client.delete(
        f"/words/{first['id']}/reviews/{body['review']['id']}", headers=auth.headers
    )

    assert r.status_code == 200, r.text
    queue = await study(client, auth.headers)
    assert (words_of(queue), queue["new_left_today"]) == (["first"], 1)
    assert await Review.filter(user_id=auth.id).count() == 0


# --- Previews ---


async def card_in_state(client, auth, clock: Clock, state: str) -> dict[str, Any]:
    """A word whose forward card is in `state` and due now."""
    word = await make_word(client, auth.headers, reverse=True)
    if state == "learning":
        await make_review(client, auth.headers, word["id"], rating="good")
        clock.advance(minutes=10)
    elif state in ("review", "relearning"):
        await make_review(client, auth.headers, word["id"], rating="easy")
        clock.advance(days=20)
        if state == "relearning":
            await make_review(client, auth.headers, word["id"], rating="again")
            clock.advance(minutes=10)
    return word


@pytest.mark.parametrize("rating", ["again", "hard", "good", "easy"])
@pytest.mark.parametrize("state", ["new", "learning", "review", "relearning"])
async def test_rating_lands_exactly_on_its_preview(client, auth, clock, state, rating):
    word = await card_in_state(client, auth, clock, state)
    queue = await study(client, auth.headers)
    item = next(i for i in queue["items"] if i["direction"] == "forward")
    assert item["schedule"]["state"] == state
    preview = item["previews"][rating]

    body = await make_review(client, auth.headers, word["id"], rating=rating)

    assert ts(body["word"]["schedule"]["due_at"]) == ts(preview["due_at"])
    assert preview["interval_seconds"] == round((ts(preview["due_at"]) - clock.now).total_seconds())
    card = await Card.get(word_id=word["id"], direction="forward")
    assert card.due_at == ts(preview["due_at"])


def test_fsrs_cards_copy_the_quick_way_and_schedule_as_fsrs_own_cards_do():
    fields = {
        "card_id": 7,
        "state": fsrs.State.Review,
        "step": None,
        "stability": 3.5,
        "difficulty": 6.1,
        "due": START,
        "last_review": START - timedelta(days=3),
    }
    card, plain = vocab.FsrsCard(**fields), fsrs.Card(**fields)
    copied = copy.copy(card)
    assert type(copied) is vocab.FsrsCard and copied is not card
    assert vars(copied) == vars(copy.copy(plain)) == vars(plain)
    rules = vocab.scheduler(0.9)
    for rating in fsrs.Rating:
        ours, _ = rules.review_card(card, rating, review_datetime=START)
        theirs, _ = rules.review_card(plain, rating, review_datetime=START)
        assert vars(ours) == vars(theirs)
    assert vars(card) == vars(plain)  # reviewing changed a copy, not the card


async def test_reverse_card_previews_are_its_own(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    await make_review(client, auth.headers, word["id"], rating="easy")  # forward card only
    queue = await study(client, auth.headers)
    reverse = next(i for i in queue["items"] if i["direction"] == "reverse")
    assert reverse["reverse_schedule"]["state"] == "new"

    body = await make_review(client, auth.headers, word["id"], rating="good", direction="reverse")

    assert ts(body["word"]["reverse_schedule"]["due_at"]) == ts(
        reverse["previews"]["good"]["due_at"]
    )
    assert reverse["previews"]["again"]["interval_seconds"] == 60  # FSRS' first learning step
    assert reverse["previews"]["good"]["interval_seconds"] == 600
    assert await Review.filter(word_id=word["id"], direction="reverse").count() == 1


async def test_previews_use_the_users_desired_retention(client, auth, clock):
    await make_word(client, auth.headers)
    easy_90 = (await study(client, auth.headers))["items"][0]["previews"]["easy"]
    await patch_me(client, auth.headers, desired_retention=0.97)
    easy_97 = (await study(client, auth.headers))["items"][0]["previews"]["easy"]
    assert easy_97["interval_seconds"] < easy_90["interval_seconds"]


# --- Forecast ---


async def set_due(word_id: int, due_at: datetime) -> None:
    """Make the word's forward card a review card due at `due_at`."""
    await Card.filter(word_id=word_id, direction="forward").update(
        state=State.REVIEW, due_at=due_at, stability=10.0, fsrs_difficulty=5.0, reps=1,
        last_reviewed_at=due_at - timedelta(days=10),
    )  # fmt: skip


async def test_forecast_counts_due_cards_per_study_day_in_the_time_zone(client, auth, clock):
    # In Tokyo at START (21:00 on 10 March) today began at 19:00 UTC on the 9th, and the 11th
    # begins at 19:00 UTC on the 10th.
    await patch_me(client, auth.headers, timezone="Asia/Tokyo")
    dues = {
        "overdue": datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        "later-today": datetime(2024, 3, 10, 18, 59, tzinfo=UTC),
        "tomorrow": datetime(2024, 3, 10, 19, 0, tzinfo=UTC),
        "13th": datetime(2024, 3, 13, 10, 0, tzinfo=UTC),
        "far": datetime(2024, 4, 20, 10, 0, tzinfo=UTC),
        "suspended": datetime(2024, 3, 10, 10, 0, tzinfo=UTC),
    }
    for name, due_at in dues.items():
        word = await make_word(client, auth.headers, word=name, suspended=name == "suspended")
        await set_due(word["id"], due_at)
    await make_word(client, auth.headers, word="new")  # new cards are no forecast

    assert await forecast(client, auth.headers, 5) == [
        {"date": "2024-03-10", "due": 2},
        {"date": "2024-03-11", "due": 1},
        {"date": "2024-03-12", "due": 0},
        {"date": "2024-03-13", "due": 1},
        {"date": "2024-03-14", "due": 0},
    ]
    month = await forecast(client, auth.headers, 30)
    assert (len(month), month[-1]["date"], sum(day["due"] for day in month)) == (
        30,
        "2024-04-08",
        4,
    )
    assert sum(day["due"] for day in await forecast(client, auth.headers, 365)) == 5
    assert await Card.filter(user_id=auth.id, active=True, state=State.REVIEW).count() == 5


async def test_forecast_default_is_30_days_from_today(client, auth, clock):
    r = await client.get("/stats/forecast", headers=auth.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [items[0], items[-1], len(items)] == [
        {"date": "2024-03-10", "due": 0},
        {"date": "2024-04-08", "due": 0},
        30,
    ]


# --- History ---


async def test_history_counts_reviews_and_agains_per_study_day_oldest_first(client, auth, clock):
    await patch_me(client, auth.headers, timezone="America/Los_Angeles", day_starts_at=0)
    word = await make_word(client, auth.headers)
    # Los Angeles is on PDT (UTC-7) from 10 March 2024: its days begin at 07:00 UTC, and the
    # 10th began at 08:00 UTC (still PST at midnight).
    reviews = [
        (datetime(2024, 3, 8, 7, 59, tzinfo=UTC), "again"),  # the 7th: outside 3 days
        (datetime(2024, 3, 8, 8, 0, tzinfo=UTC), "good"),  # the 8th
        (datetime(2024, 3, 9, 7, 0, tzinfo=UTC), "again"),  # the 8th
        (datetime(2024, 3, 10, 7, 59, tzinfo=UTC), "again"),  # the 9th
        (datetime(2024, 3, 10, 8, 0, tzinfo=UTC), "hard"),  # the 10th
    ]
    for when, rating in reviews:
        clock.set(when)
        await make_review(client, auth.headers, word["id"], rating=rating)
    clock.set(START)

    assert await history(client, auth.headers, 3) == [
        {"date": "2024-03-08", "reviews": 2, "again": 1},
        {"date": "2024-03-09", "reviews": 1, "again": 1},
        {"date": "2024-03-10", "reviews": 1, "again": 0},
    ]
    month = await history(client, auth.headers, 30)
    assert (len(month), month[0]["date"], sum(day["reviews"] for day in month)) == (
        30,
        "2024-02-10",
        5,
    )
    assert await Review.filter(user_id=auth.id).count() == 5


async def test_history_leaves_out_other_users_reviews(client, auth, other_auth, clock):
    word = await make_word(client, other_auth.headers)
    await make_review(client, other_auth.headers, word["id"], rating="again")
    assert await history(client, auth.headers, 1) == [
        {"date": "2024-03-10", "reviews": 0, "again": 0}
    ]
    assert await history(client, other_auth.headers, 1) == [
        {"date": "2024-03-10", "reviews": 1, "again": 1}
    ]


@pytest.mark.parametrize("path", ["/stats/forecast", "/stats/history"])
@pytest.mark.parametrize("days", ["0", "366", "-1", "x", "1.5"])
async def test_stats_over_time_with_bad_days_is_422(client, auth, path, days):
    r = await client.get(path, headers=auth.headers, params={"days": days})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "days"]


@pytest.mark.parametrize("path", ["/stats/forecast", "/stats/history"])
async def test_stats_over_time_without_token_is_401(client, path):
    assert_401(await client.get(path))
