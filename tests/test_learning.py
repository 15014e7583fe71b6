"""Learning: reviews scheduled by FSRS, a word's review history, the study queue and the
statistics, as the README's "Studying" section and the OpenAPI schema (`/docs`) describe them.

Every test runs on a controllable clock (`clock`): the app reads the time through
`vocab.utcnow`, so due dates, reviews and statistics are exact and no test sleeps. Expected
schedules are computed independently with the `fsrs` package for the same card and time.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import fsrs
import pytest
from conftest import START, WORD_NOT_FOUND, Clock, assert_401, make_review, make_word, ts

from models import Card, Review

#: Noon UTC on an ordinary day; tests move the clock from here.
RATINGS = {
    "again": fsrs.Rating.Again,
    "hard": fsrs.Rating.Hard,
    "good": fsrs.Rating.Good,
    "easy": fsrs.Rating.Easy,
}
STATE_NAMES = {
    fsrs.State.Learning: "learning",
    fsrs.State.Review: "review",
    fsrs.State.Relearning: "relearning",
}
EMPTY_BY_STATE = {"new": 0, "learning": 0, "review": 0, "relearning": 0}
EMPTY_BY_DIFFICULTY = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}


def new_card(created: datetime) -> fsrs.Card:
    """A word that was never reviewed, as FSRS sees it: a learning card at its first step."""
    return fsrs.Card(card_id=1, state=fsrs.State.Learning, step=0, due=created)


def fsrs_review(card: fsrs.Card, rating: str, now: datetime, retention: float = 0.9) -> fsrs.Card:
    """What FSRS (no fuzzing) makes of `card` after `rating` at `now`."""
    scheduler = fsrs.Scheduler(desired_retention=retention, enable_fuzzing=False)
    after, _ = scheduler.review_card(card, RATINGS[rating], review_datetime=now)
    return after


def parsed_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    """A word's schedule from the API with its timestamps parsed."""
    return {
        **schedule,
        "due_at": ts(schedule["due_at"]),
        "last_reviewed_at": ts(schedule["last_reviewed_at"]),
    }


def expected_schedule(
    card: fsrs.Card, *, reps: int, lapses: int, now: datetime | None = None
) -> dict[str, Any]:
    """The schedule the API should show for an FSRS card at `now` (default: the moment of its
    last review, when recall is certain)."""
    return {
        "state": STATE_NAMES[card.state],
        "due_at": card.due,
        "stability": pytest.approx(card.stability),
        "difficulty": pytest.approx(card.difficulty),
        "retrievability": pytest.approx(retrievability(card, now or card.last_review)),
        "reps": reps,
        "lapses": lapses,
        "last_reviewed_at": card.last_review,
    }


def retrievability(card: fsrs.Card, now: datetime) -> float:
    """FSRS-6's forgetting curve with the default parameters, over fractional days."""
    decay = -fsrs.scheduler.DEFAULT_PARAMETERS[20]
    factor = 0.9 ** (1 / decay) - 1
    days = (now - card.last_review).total_seconds() / 86400
    return (1 + factor * days / card.stability) ** decay


async def assert_stored_schedule(word_id: int, card: fsrs.Card, *, reps: int, lapses: int) -> None:
    """The word's forward card holds the FSRS card's schedule."""
    stored = await Card.get(word_id=word_id, direction="forward")
    assert {
        "state": stored.state,
        "due_at": stored.due_at,
        "stability": stored.stability,
        "difficulty": stored.fsrs_difficulty,
        "reps": stored.reps,
        "lapses": stored.lapses,
        "last_reviewed_at": stored.last_reviewed_at,
    } == without_retrievability(expected_schedule(card, reps=reps, lapses=lapses))


def without_retrievability(schedule: dict[str, Any]) -> dict[str, Any]:
    """A schedule less what is computed when read (the database does not store it)."""
    return {key: value for key, value in schedule.items() if key != "retrievability"}


async def review_at(client, headers, clock: Clock, when: datetime, word_id: int, rating: str):
    """Set the clock, then review."""
    clock.set(when)
    return await make_review(client, headers, word_id, rating=rating)


async def read_stats(client, headers) -> dict[str, Any]:
    r = await client.get("/stats", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def read_study(client, headers, **params: Any) -> dict[str, Any]:
    r = await client.get("/study", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def words_of(page: dict[str, Any]) -> list[str]:
    return [item["word"] for item in page["items"]]


# --- Reviews ---


@pytest.mark.parametrize("rating", ["again", "hard", "good", "easy"])
async def test_review_new_word_schedules_it_like_fsrs(client, auth, clock, rating):
    word = await make_word(client, auth.headers)
    clock.advance(minutes=5)

    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": rating, "duration_ms": 4200},
    )

    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"review", "word"}
    expected = fsrs_review(new_card(START), rating, clock.now)
    assert {**body["review"], "reviewed_at": ts(body["review"]["reviewed_at"])} == {
        "id": body["review"]["id"],
        "direction": "forward",
        "rating": rating,
        "reviewed_at": clock.now,
        "duration_ms": 4200,
    }
    assert body["word"]["id"] == word["id"]
    assert body["word"]["word"] == word["word"]
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(
        expected, reps=1, lapses=0
    )
    await assert_stored_schedule(word["id"], expected, reps=1, lapses=0)
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.json() == body["word"]
    stored = await Review.get(id=body["review"]["id"])
    assert (
        stored.word_id,
        stored.user_id,
        stored.rating,
        stored.reviewed_at,
        stored.duration_ms,
    ) == (word["id"], auth.id, rating, clock.now, 4200)


async def test_review_sequence_good_good_again_follows_fsrs(client, auth, clock):
    word = await make_word(client, auth.headers)
    card = new_card(START)

    body = await make_review(client, auth.headers, word["id"], rating="good")
    card = fsrs_review(card, "good", clock.now)
    assert card.state == fsrs.State.Learning  # still learning after the first good
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(card, reps=1, lapses=0)

    clock.advance(days=3)
    body = await make_review(client, auth.headers, word["id"], rating="good")
    card = fsrs_review(card, "good", clock.now)
    assert card.state == fsrs.State.Review  # graduated
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(card, reps=2, lapses=0)

    clock.set(card.due)
    body = await make_review(client, auth.headers, word["id"], rating="again")
    card = fsrs_review(card, "again", clock.now)
    assert card.state == fsrs.State.Relearning  # a lapse
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(card, reps=3, lapses=1)
    await assert_stored_schedule(word["id"], card, reps=3, lapses=1)
    assert await Review.filter(word_id=word["id"]).count() == 3


async def test_review_again_while_learning_or_relearning_is_no_lapse(client, auth, clock):
    word = await make_word(client, auth.headers)
    await make_review(client, auth.headers, word["id"], rating="again")  # learning
    await review_at(client, auth.headers, clock, START + timedelta(minutes=5), word["id"], "easy")
    clock.advance(days=30)
    # review -> relearning
    body = await make_review(client, auth.headers, word["id"], rating="again")
    assert body["word"]["schedule"]["state"] == "relearning"
    clock.advance(minutes=1)
    body = await make_review(client, auth.headers, word["id"], rating="again")  # still relearning

    assert body["word"]["schedule"]["state"] == "relearning"
    assert (body["word"]["schedule"]["reps"], body["word"]["schedule"]["lapses"]) == (4, 1)
    stored = await Card.get(word_id=word["id"], direction="forward")
    assert (stored.reps, stored.lapses) == (4, 1)


async def test_review_uses_the_users_desired_retention(client, auth, clock):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": 0.8})
    assert r.status_code == 200, r.text
    word = await make_word(client, auth.headers)
    clock.advance(minutes=1)

    body = await make_review(client, auth.headers, word["id"], rating="easy")

    at_80 = fsrs_review(new_card(START), "easy", clock.now, retention=0.8)
    at_90 = fsrs_review(new_card(START), "easy", clock.now, retention=0.9)
    assert at_80.due != at_90.due  # the retention matters for this review
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(at_80, reps=1, lapses=0)
    await assert_stored_schedule(word["id"], at_80, reps=1, lapses=0)


async def test_review_word_not_due_yet_is_201(client, auth, clock):
    word = await make_word(client, auth.headers)
    card = fsrs_review(new_card(START), "easy", START)
    await make_review(client, auth.headers, word["id"], rating="easy")
    clock.advance(hours=1)
    assert clock.now < card.due

    body = await make_review(client, auth.headers, word["id"], rating="good")

    card = fsrs_review(card, "good", clock.now)
    assert parsed_schedule(body["word"]["schedule"]) == expected_schedule(card, reps=2, lapses=0)
    await assert_stored_schedule(word["id"], card, reps=2, lapses=0)


async def test_review_without_duration_stores_null(client, auth, clock):
    word = await make_word(client, auth.headers)
    body = await make_review(client, auth.headers, word["id"], rating="good")
    assert body["review"]["duration_ms"] is None
    assert (await Review.get(id=body["review"]["id"])).duration_ms is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"rating": "meh"}, id="rating-unknown"),
        pytest.param({}, id="rating-missing"),
        pytest.param({"rating": None}, id="rating-null"),
        pytest.param({"rating": "good", "duration_ms": -1}, id="duration-negative"),
        pytest.param({"rating": "good", "duration_ms": "x"}, id="duration-not-a-number"),
        pytest.param({"rating": "good", "extra": 1}, id="extra-field"),
    ],
)
async def test_review_with_invalid_payload_is_422(client, auth, clock, payload):
    word = await make_word(client, auth.headers)

    r = await client.post(f"/words/{word['id']}/reviews", headers=auth.headers, json=payload)

    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert await Review.all().count() == 0
    stored = await Card.get(word_id=word["id"], direction="forward")
    assert (stored.state, stored.reps, stored.last_reviewed_at) == ("new", 0, None)


async def test_review_word_of_other_user_is_404(client, auth, other_auth, clock):
    theirs = await make_word(client, other_auth.headers)

    r = await client.post(
        f"/words/{theirs['id']}/reviews", headers=auth.headers, json={"rating": "good"}
    )

    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND
    assert await Review.filter(word_id=theirs["id"]).count() == 0
    stored = await Card.get(word_id=theirs["id"], direction="forward")
    assert (stored.state, stored.reps) == ("new", 0)


async def test_review_missing_word_is_404(client, auth, clock):
    r = await client.post("/words/999999/reviews", headers=auth.headers, json={"rating": "good"})
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND
    assert await Review.all().count() == 0


async def test_review_without_token_is_401(client, auth, clock):
    word = await make_word(client, auth.headers)
    r = await client.post(f"/words/{word['id']}/reviews", json={"rating": "good"})
    assert_401(r)
    assert await Review.all().count() == 0


# --- A word's reviews ---


async def test_read_reviews_newest_first_with_total(client, auth, clock):
    word = await make_word(client, auth.headers)
    made = []
    for minutes, rating in [(0, "again"), (2, "hard"), (15, "good")]:
        clock.set(START + timedelta(minutes=minutes))
        made.append((await make_review(client, auth.headers, word["id"], rating=rating))["review"])

    r = await client.get(f"/words/{word['id']}/reviews", headers=auth.headers)

    assert r.status_code == 200, r.text
    assert r.json() == {"items": made[::-1], "total": 3, "limit": 50, "offset": 0}


async def test_read_reviews_pages_with_limit_and_offset(client, auth, clock):
    word = await make_word(client, auth.headers)
    ids = []
    for minutes in range(5):
        clock.set(START + timedelta(minutes=minutes))
        body = await make_review(client, auth.headers, word["id"], rating="again")
        ids.append(body["review"]["id"])

    r = await client.get(
        f"/words/{word['id']}/reviews", headers=auth.headers, params={"limit": 2, "offset": 1}
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert [item["id"] for item in body["items"]] == [ids[3], ids[2]]
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)


async def test_read_reviews_of_word_never_reviewed_is_empty(client, auth, clock):
    word = await make_word(client, auth.headers)
    r = await client.get(f"/words/{word['id']}/reviews", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_read_reviews_of_other_users_word_is_404(client, auth, other_auth, clock):
    theirs = await make_word(client, other_auth.headers)
    await make_review(client, other_auth.headers, theirs["id"], rating="good")

    r = await client.get(f"/words/{theirs['id']}/reviews", headers=auth.headers)

    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND


async def test_read_reviews_of_missing_word_is_404(client, auth, clock):
    r = await client.get("/words/999999/reviews", headers=auth.headers)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND


async def test_delete_word_deletes_its_reviews(client, auth, clock):
    word = await make_word(client, auth.headers, word="gone")
    kept = await make_word(client, auth.headers, word="kept")
    await make_review(client, auth.headers, word["id"], rating="good")
    await make_review(client, auth.headers, word["id"], rating="good")
    await make_review(client, auth.headers, kept["id"], rating="good")

    r = await client.delete(f"/words/{word['id']}", headers=auth.headers)

    assert r.status_code == 204, r.text
    assert await Review.filter(word_id=word["id"]).count() == 0
    assert await Review.filter(word_id=kept["id"]).count() == 1


async def test_delete_user_deletes_their_reviews(client, auth, other_auth, clock):
    mine = await make_word(client, auth.headers)
    theirs = await make_word(client, other_auth.headers)
    await make_review(client, auth.headers, mine["id"], rating="good")
    await make_review(client, other_auth.headers, theirs["id"], rating="good")

    r = await client.delete("/users/me", headers=auth.headers)

    assert r.status_code == 204, r.text
    assert await Review.filter(user_id=auth.id).count() == 0
    assert await Review.filter(word_id=mine["id"]).count() == 0
    assert await Review.filter(user_id=other_auth.id).count() == 1


# --- Study queue ---


async def test_read_study_lists_overdue_words_then_new_words(client, auth, other_auth, clock):
    ids = {}
    for name in ["new-old", "new-young", "due-soon", "due-sooner", "not-due"]:
        ids[name] = (await make_word(client, auth.headers, word=name))["id"]
    await make_word(client, other_auth.headers, word="theirs")
    await make_review(client, auth.headers, ids["due-soon"], rating="good")  # due in 10 minutes
    await make_review(client, auth.headers, ids["due-sooner"], rating="again")  # due in 1 minute
    await make_review(client, auth.headers, ids["not-due"], rating="easy")  # due in days
    clock.advance(minutes=20)

    study = await read_study(client, auth.headers)

    assert words_of(study) == ["due-sooner", "due-soon", "new-old", "new-young"]
    assert study["due_total"] == 4
    assert study["items"][0]["schedule"]["state"] == "learning"
    assert study["items"][2]["schedule"]["state"] == "new"


async def test_read_study_leaves_out_reviewed_words_not_due_yet(client, auth, clock):
    word = await make_word(client, auth.headers)
    await make_review(client, auth.headers, word["id"], rating="good")  # due in 10 minutes
    clock.advance(minutes=9)
    assert await read_study(client, auth.headers) == {
        "items": [],
        "due_total": 0,
        "new_left_today": 19,
        "reviews_left_today": 200,
    }

    clock.advance(minutes=1)
    study = await read_study(client, auth.headers)
    assert words_of(study) == [word["word"]]
    assert study["due_total"] == 1


@pytest.mark.parametrize(("limit", "expected"), [(1, ["due"]), (2, ["due", "new-1"])])
async def test_read_study_limit_cuts_the_list_not_the_total(client, auth, clock, limit, expected):
    due = await make_word(client, auth.headers, word="due")
    await make_word(client, auth.headers, word="new-1")
    await make_word(client, auth.headers, word="new-2")
    await make_review(client, auth.headers, due["id"], rating="again")
    clock.advance(minutes=2)

    study = await read_study(client, auth.headers, limit=limit)

    assert words_of(study) == expected
    assert study["due_total"] == 3


async def test_read_study_returns_20_words_by_default(client, auth, clock):
    r = await client.patch("/users/me", headers=auth.headers, json={"new_per_day": 100})
    assert r.status_code == 200, r.text
    for i in range(25):
        await make_word(client, auth.headers, word=f"w{i:02}")

    study = await read_study(client, auth.headers)

    assert words_of(study) == [f"w{i:02}" for i in range(20)]
    assert study["due_total"] == 25
    assert len((await read_study(client, auth.headers, limit=100))["items"]) == 25


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x"])
async def test_read_study_with_invalid_limit_is_422(client, auth, clock, limit):
    r = await client.get("/study", headers=auth.headers, params={"limit": limit})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)


async def test_read_study_without_token_is_401(client):
    r = await client.get("/study")
    assert_401(r)


# --- Statistics ---


async def test_read_stats_of_new_account_is_all_zero(client, auth, clock):
    assert await read_stats(client, auth.headers) == {
        "words": 0,
        "new": 0,
        "due": 0,
        "reviews_today": 0,
        "reviews_total": 0,
        "retention_30d": None,
        "streak_days": 0,
        "by_state": EMPTY_BY_STATE,
        "by_difficulty": EMPTY_BY_DIFFICULTY,
    }


async def test_read_stats_of_a_history(client, auth, clock):
    clock.set(START - timedelta(days=50))
    ids, cards = {}, {}
    for name, difficulty in [
        ("old-lapse", 1),
        ("recalled", 1),
        ("forgot", 4),
        ("hard", 5),
        ("fresh", 5),
        ("untouched", 2),
    ]:
        ids[name] = (await make_word(client, auth.headers, word=name, difficulty=difficulty))["id"]
        cards[name] = new_card(clock.now)
    history = [
        (START - timedelta(days=40), "old-lapse", "easy"),  # was new: not counted
        (START - timedelta(days=35), "old-lapse", "again"),  # older than 30 days: ignored
        (START - timedelta(days=10), "recalled", "easy"),
        (START - timedelta(days=10), "forgot", "easy"),
        (START - timedelta(days=5), "recalled", "good"),  # in review: recalled
        (START - timedelta(days=4), "forgot", "again"),  # in review: forgotten
        (START - timedelta(days=3), "forgot", "good"),  # relearning: not counted
        (START - timedelta(days=2), "hard", "easy"),
        (START - timedelta(days=1), "hard", "hard"),  # in review: recalled
        (START - timedelta(hours=1), "fresh", "good"),
        (START, "fresh", "again"),
    ]
    for when, name, rating in history:
        await review_at(client, auth.headers, clock, when, ids[name], rating)
        cards[name] = fsrs_review(cards[name], rating, when)
    clock.set(START + timedelta(minutes=5))
    reviewed = [card for name, card in cards.items() if name != "untouched"]
    due_reviewed = sum(card.due <= clock.now for card in reviewed)

    stats = await read_stats(client, auth.headers)

    assert stats == {
        "words": 6,
        "new": 1,
        "due": 1 + due_reviewed,
        "reviews_today": 2,
        "reviews_total": 11,
        "retention_30d": pytest.approx(2 / 3),
        "streak_days": 6,  # 5, 4, 3, 2 and 1 days ago, and today
        "by_state": {"new": 1, "learning": 1, "review": 3, "relearning": 1},
        "by_difficulty": {"1": 2, "2": 1, "3": 0, "4": 1, "5": 2},
    }
    assert due_reviewed >= 2  # at least the relearning word and the word just forgotten
    assert stats["due"] == (await read_study(client, auth.headers))["due_total"]


async def test_read_stats_due_equals_study_due_total(client, auth, clock):
    words = [(await make_word(client, auth.headers, word=f"w{i}"))["id"] for i in range(4)]
    await make_review(client, auth.headers, words[0], rating="again")  # due in a minute
    await make_review(client, auth.headers, words[1], rating="easy")  # due in days
    clock.advance(minutes=5)

    stats = await read_stats(client, auth.headers)
    study = await read_study(client, auth.headers)

    assert stats["due"] == study["due_total"] == 3
    assert (stats["words"], stats["new"]) == (4, 2)
    assert stats["by_state"] == {"new": 2, "learning": 1, "review": 1, "relearning": 0}
    assert stats["by_difficulty"] == {**EMPTY_BY_DIFFICULTY, "3": 4}


async def test_read_stats_retention_is_null_without_reviews_in_review_state(client, auth, clock):
    word = await make_word(client, auth.headers)
    await make_review(client, auth.headers, word["id"], rating="good")
    clock.advance(minutes=10)
    await make_review(client, auth.headers, word["id"], rating="again")

    stats = await read_stats(client, auth.headers)

    assert stats["retention_30d"] is None
    assert (stats["reviews_total"], stats["reviews_today"]) == (2, 2)


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [pytest.param(29, 0.0, id="29-days-counts"), pytest.param(31, None, id="31-days-ignored")],
)
async def test_read_stats_retention_covers_the_last_30_days(
    client, auth, clock, days_ago, expected
):
    clock.set(START - timedelta(days=50))
    word = await make_word(client, auth.headers)
    await review_at(client, auth.headers, clock, START - timedelta(days=40), word["id"], "easy")
    await review_at(
        client, auth.headers, clock, START - timedelta(days=days_ago), word["id"], "again"
    )
    clock.set(START)

    stats = await read_stats(client, auth.headers)

    assert stats["retention_30d"] == expected
    assert stats["reviews_total"] == 2


async def test_read_stats_streak_crosses_the_day_start(client, auth, clock):
    word = await make_word(client, auth.headers)
    day_1 = datetime(2024, 3, 10, 3, 59, tzinfo=UTC)  # a study day starts at 4:00 by default
    await review_at(client, auth.headers, clock, day_1, word["id"], "again")
    await review_at(client, auth.headers, clock, day_1 + timedelta(minutes=2), word["id"], "again")

    stats = await read_stats(client, auth.headers)

    assert (stats["streak_days"], stats["reviews_today"], stats["reviews_total"]) == (2, 1, 2)


async def test_read_stats_streak_ending_yesterday_counts(client, auth, clock):
    clock.set(START - timedelta(days=10))
    word = await make_word(client, auth.headers)
    for days_ago in (3, 2, 1):
        await review_at(
            client, auth.headers, clock, START - timedelta(days=days_ago), word["id"], "again"
        )
    clock.set(START)

    stats = await read_stats(client, auth.headers)

    assert (stats["streak_days"], stats["reviews_today"]) == (3, 0)


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [
        pytest.param([4, 3, 1, 0], 2, id="gap-before-yesterday"),
        pytest.param([3, 2], 0, id="last-review-two-days-ago"),
        pytest.param([0, 0, 0], 1, id="many-reviews-today"),
        pytest.param([], 0, id="no-reviews"),
    ],
)
async def test_read_stats_streak_is_broken_by_a_gap(client, auth, clock, days_ago, expected):
    clock.set(START - timedelta(days=10))
    word = await make_word(client, auth.headers)
    for n, ago in enumerate(days_ago):
        when = START - timedelta(days=ago) + timedelta(minutes=n)
        await review_at(client, auth.headers, clock, when, word["id"], "again")
    clock.set(START + timedelta(hours=1))

    assert (await read_stats(client, auth.headers))["streak_days"] == expected


async def test_read_stats_ignores_other_users(client, auth, other_auth, clock):
    clock.set(START - timedelta(days=10))
    await make_word(client, auth.headers, difficulty=2)
    theirs = await make_word(client, other_auth.headers, difficulty=5)
    await review_at(
        client, other_auth.headers, clock, START - timedelta(days=2), theirs["id"], "easy"
    )
    await review_at(
        client, other_auth.headers, clock, START - timedelta(days=1), theirs["id"], "good"
    )
    await review_at(client, other_auth.headers, clock, START, theirs["id"], "good")

    stats = await read_stats(client, auth.headers)

    assert stats == {
        "words": 1,
        "new": 1,
        "due": 1,
        "reviews_today": 0,
        "reviews_total": 0,
        "retention_30d": None,
        "streak_days": 0,
        "by_state": {**EMPTY_BY_STATE, "new": 1},
        "by_difficulty": {**EMPTY_BY_DIFFICULTY, "2": 1},
    }
    theirs_stats = await read_stats(client, other_auth.headers)
    assert (theirs_stats["reviews_total"], theirs_stats["streak_days"]) == (3, 3)
    assert theirs_stats["retention_30d"] == 1.0


async def test_read_stats_without_token_is_401(client):
    r = await client.get("/stats")
    assert_401(r)
