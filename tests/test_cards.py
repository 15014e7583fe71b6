"""Cards: both directions of a word, each scheduled on its own; suspending a word; the
retrievability of a card; undoing a card's latest review; the user's own FSRS parameters in
every review (API.md, "Cards: both directions" and "Personal scheduling").

The app's clock (`vocab.utcnow`) is frozen per test, so schedules and retrievability are exact.
"""

from datetime import datetime, timedelta
from typing import Any

import fsrs
import pytest
from conftest import START, make_word

from models import Card, Review, User, Word

NO_REVERSE = {
    "detail": [
        {
            "type": "value_error",
            "loc": ["body", "direction"],
            "msg": "This word has no reverse card (turn its `reverse` on first)",
        }
    ]
}
NOT_LATEST = {"detail": "Only the latest review of a card can be undone"}
#: FSRS-6 parameters other than the defaults (a learner who forgets faster).
OWN_PARAMETERS = [
    0.1, 0.6, 1.5, 5.0, 7.0, 0.6, 2.5, 0.01, 1.5, 0.12, 0.9, 1.8, 0.08, 0.3, 1.3, 0.4, 2.1,
    0.6, 0.15, 0.1, 0.25,
]  # fmt: skip


async def review(client, headers, word_id: int, rating: str, **extra: Any) -> dict[str, Any]:
    r = await client.post(
        f"/words/{word_id}/reviews", headers=headers, json={"rating": rating, **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def read_word(client, headers, word_id: int) -> dict[str, Any]:
    r = await client.get(f"/words/{word_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def patch_word(client, headers, word_id: int, **changes: Any) -> dict[str, Any]:
    r = await client.patch(f"/words/{word_id}", headers=headers, json=changes)
    assert r.status_code == 200, r.text
    return r.json()


async def study(client, headers, **params: Any) -> dict[str, Any]:
    r = await client.get("/study", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def stats(client, headers) -> dict[str, Any]:
    r = await client.get("/stats", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def stored_cards(word_id: int) -> dict[str, Card]:
    return {card.direction: card for card in await Card.filter(word_id=word_id)}


def schedule_columns(card: Card) -> tuple:
    return (
        card.state,
        card.step,
        card.stability,
        card.fsrs_difficulty,
        card.due_at,
        card.reps,
        card.lapses,
        card.last_reviewed_at,
        card.active,
    )


def queue(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["word"], item["direction"]) for item in page["items"]]


def fsrs_after(card: fsrs.Card, rating: fsrs.Rating, now: datetime, **options: Any) -> fsrs.Card:
    scheduler = fsrs.Scheduler(enable_fuzzing=False, **options)
    return scheduler.review_card(card, rating, review_datetime=now)[0]


# --- Both directions ---


async def test_create_word_without_reverse_has_only_a_forward_card(client, auth, clock):
    word = await make_word(client, auth.headers)

    assert (word["reverse"], word["suspended"], word["reverse_schedule"]) == (False, False, None)
    assert word["schedule"]["state"] == "new"
    assert word["schedule"]["retrievability"] is None
    cards = await stored_cards(word["id"])
    assert list(cards) == ["forward"]
    assert (cards["forward"].user_id, cards["forward"].active) == (auth.id, True)


async def test_create_word_with_reverse_has_two_new_cards(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)

    assert word["reverse"] is True
    assert word["reverse_schedule"] == word["schedule"]
    assert word["reverse_schedule"]["state"] == "new"
    cards = await stored_cards(word["id"])
    assert sorted(cards) == ["forward", "reverse"]
    assert all(card.active and card.state == "new" for card in cards.values())
    assert await read_word(client, auth.headers, word["id"]) == word


@pytest.mark.parametrize(
    ("reverse_cards", "body", "expected"),
    [
        pytest.param(True, {}, True, id="user-default-on"),
        pytest.param(True, {"reverse": None}, True, id="null-is-the-default"),
        pytest.param(True, {"reverse": False}, False, id="word-says-no"),
        pytest.param(False, {}, False, id="user-default-off"),
        pytest.param(False, {"reverse": True}, True, id="word-says-yes"),
    ],
)
async def test_create_word_reverse_defaults_to_the_users_reverse_cards(
    client, auth, clock, reverse_cards, body, expected
):
    r = await client.patch("/users/me", headers=auth.headers, json={"reverse_cards": reverse_cards})
    assert r.status_code == 200, r.text
    assert r.json()["reverse_cards"] is reverse_cards

    word = await make_word(client, auth.headers, **body)

    assert word["reverse"] is expected
    assert (word["reverse_schedule"] is not None) is expected
    assert ("reverse" in await stored_cards(word["id"])) is expected
    assert (await User.get(id=auth.id)).reverse_cards is reverse_cards


async def test_review_reverse_card_moves_only_its_own_schedule(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    clock.advance(minutes=1)

    body = await review(client, auth.headers, word["id"], "easy", direction="reverse")

    assert body["review"]["direction"] == "reverse"
    expected = fsrs_after(fsrs.Card(card_id=1, due=START), fsrs.Rating.Easy, clock.now)
    reverse = body["word"]["reverse_schedule"]
    assert (reverse["state"], reverse["reps"], reverse["due_at"]) == (
        "review",
        1,
        expected.due.isoformat().replace("+00:00", "Z"),
    )
    assert reverse["stability"] == pytest.approx(expected.stability)
    assert body["word"]["schedule"] == word["schedule"]  # the forward card is untouched
    cards = await stored_cards(word["id"])
    assert (cards["forward"].reps, cards["reverse"].reps) == (0, 1)
    stored = await Review.get(id=body["review"]["id"])
    assert (stored.card_id, stored.direction) == (cards["reverse"].id, "reverse")


async def test_review_direction_defaults_to_forward(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)

    body = await review(client, auth.headers, word["id"], "good")

    assert body["review"]["direction"] == "forward"
    assert (body["word"]["schedule"]["reps"], body["word"]["reverse_schedule"]["reps"]) == (1, 0)


async def test_review_reverse_card_of_word_without_one_is_422(client, auth, clock):
    word = await make_word(client, auth.headers)

    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": "good", "direction": "reverse"},
    )

    assert r.status_code == 422, r.text
    assert r.json() == NO_REVERSE
    assert await Review.all().count() == 0
    assert list(await stored_cards(word["id"])) == ["forward"]


@pytest.mark.parametrize("direction", ["backward", "", None, 1])
async def test_review_with_unknown_direction_is_422(client, auth, clock, direction):
    word = await make_word(client, auth.headers, reverse=True)
    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": "good", "direction": direction},
    )
    assert r.status_code == 422, r.text
    assert await Review.all().count() == 0


async def test_read_study_shows_due_cards_of_both_directions_with_their_direction(
    client, auth, clock
):
    both = await make_word(client, auth.headers, word="both", reverse=True)
    await make_word(client, auth.headers, word="forward-only")
    await review(client, auth.headers, both["id"], "again", direction="reverse")  # due in 1 min

    assert queue(await study(client, auth.headers)) == [
        ("both", "forward"),
        ("forward-only", "forward"),
    ]
    clock.advance(minutes=5)
    page = await study(client, auth.headers)

    assert queue(page) == [("both", "reverse"), ("both", "forward"), ("forward-only", "forward")]
    assert page["due_total"] == 3
    first = page["items"][0]
    assert first["reverse_schedule"]["state"] == "learning"
    assert first["schedule"]["state"] == "new"
    assert (await stats(client, auth.headers))["due"] == 3


async def test_update_word_reverse_off_keeps_the_history_but_stops_studying_it(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    reviewed = await review(client, auth.headers, word["id"], "again", direction="reverse")
    clock.advance(minutes=5)

    off = await patch_word(client, auth.headers, word["id"], reverse=False)

    assert (off["reverse"], off["reverse_schedule"]) == (False, None)
    assert queue(await study(client, auth.headers)) == [(word["word"], "forward")]
    cards = await stored_cards(word["id"])
    assert (cards["reverse"].reps, cards["reverse"].active, cards["forward"].active) == (
        1,
        False,
        True,
    )
    assert await Review.filter(word_id=word["id"], direction="reverse").count() == 1
    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": "good", "direction": "reverse"},
    )
    assert (r.status_code, r.json()) == (422, NO_REVERSE)
    assert (await stats(client, auth.headers))["by_state"]["learning"] == 0

    on = await patch_word(client, auth.headers, word["id"], reverse=True)

    assert on["reverse_schedule"] == reviewed["word"]["reverse_schedule"] | {
        "retrievability": on["reverse_schedule"]["retrievability"]
    }
    assert on["reverse_schedule"]["reps"] == 1
    assert queue(await study(client, auth.headers))[0] == (word["word"], "reverse")
    assert await Card.filter(word_id=word["id"]).count() == 2


async def test_update_word_reverse_on_adds_a_new_reverse_card(client, auth, clock):
    word = await make_word(client, auth.headers)
    await review(client, auth.headers, word["id"], "good")

    body = await patch_word(client, auth.headers, word["id"], reverse=True)

    assert body["reverse"] is True
    assert body["reverse_schedule"]["state"] == "new"
    assert body["schedule"]["reps"] == 1
    assert await read_word(client, auth.headers, word["id"]) == body
    cards = await stored_cards(word["id"])
    assert (cards["reverse"].due_at, cards["reverse"].active) == (
        (await Word.get(id=word["id"])).created_at,
        True,
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"reverse": None}, id="reverse-null"),
        pytest.param({"reverse": "true"}, id="reverse-string"),
        pytest.param({"reverse": 1}, id="reverse-number"),
        pytest.param({"suspended": None}, id="suspended-null"),
        pytest.param({"suspended": "yes"}, id="suspended-string"),
        pytest.param({"reverse_schedule": None}, id="reverse-schedule-not-writable"),
    ],
)
async def test_update_word_with_invalid_card_fields_is_422(client, auth, clock, payload):
    word = await make_word(client, auth.headers)
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json=payload)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    stored = await Word.get(id=word["id"])
    assert (stored.reverse, stored.suspended) == (False, False)


# --- Suspending ---


async def test_suspended_word_is_never_studied_nor_due(client, auth, clock):
    await make_word(client, auth.headers, word="kept")
    aside = await make_word(client, auth.headers, word="aside", reverse=True)
    await review(client, auth.headers, aside["id"], "again")
    clock.advance(minutes=5)

    body = await patch_word(client, auth.headers, aside["id"], suspended=True)

    assert body["suspended"] is True
    page = await study(client, auth.headers)
    assert (queue(page), page["due_total"]) == ([("kept", "forward")], 1)
    figures = await stats(client, auth.headers)
    assert (figures["words"], figures["due"], figures["new"]) == (2, 1, 1)
    assert figures["by_state"] == {"new": 1, "learning": 0, "review": 0, "relearning": 0}
    r = await client.get("/words", headers=auth.headers, params={"due": "true"})
    assert [item["word"] for item in r.json()["items"]] == ["kept"]
    r = await client.get("/words", headers=auth.headers, params={"due": "false"})
    assert [item["word"] for item in r.json()["items"]] == ["aside"]
    assert {card.active for card in (await stored_cards(aside["id"])).values()} == {False}

    await patch_word(client, auth.headers, aside["id"], suspended=False)

    page = await study(client, auth.headers)
    assert queue(page) == [("aside", "forward"), ("kept", "forward"), ("aside", "reverse")]
    assert page["due_total"] == 3


async def test_create_word_suspended_is_not_studied(client, auth, clock):
    word = await make_word(client, auth.headers, suspended=True, reverse=True)

    assert (word["suspended"], word["reverse"]) == (True, True)
    assert await study(client, auth.headers) == {
        "items": [],
        "due_total": 0,
        "new_left_today": 20,
        "reviews_left_today": 200,
    }
    assert {card.active for card in (await stored_cards(word["id"])).values()} == {False}


async def test_suspended_word_can_still_be_reviewed_directly(client, auth, clock):
    word = await make_word(client, auth.headers, suspended=True)
    body = await review(client, auth.headers, word["id"], "good")
    assert body["word"]["schedule"]["reps"] == 1
    assert body["word"]["suspended"] is True


# --- Retrievability ---


@pytest.mark.parametrize("days", [0, 1, 3, 30])
async def test_retrievability_follows_fsrs_forgetting_curve(client, auth, clock, days):
    word = await make_word(client, auth.headers)
    await review(client, auth.headers, word["id"], "good")
    clock.advance(minutes=10)
    body = await review(client, auth.headers, word["id"], "good")
    card = fsrs.Card(
        card_id=1,
        state=fsrs.State.Review,
        stability=body["word"]["schedule"]["stability"],
        difficulty=body["word"]["schedule"]["difficulty"],
        last_review=clock.now,
    )
    assert body["word"]["schedule"]["retrievability"] == 1.0
    clock.advance(days=days)

    schedule = (await read_word(client, auth.headers, word["id"]))["schedule"]

    expected = fsrs.Scheduler().get_card_retrievability(card, clock.now)
    assert schedule["retrievability"] == pytest.approx(expected)
    assert 0 < schedule["retrievability"] <= 1


async def test_retrievability_between_whole_days_falls_steadily(client, auth, clock):
    word = await make_word(client, auth.headers)
    await review(client, auth.headers, word["id"], "easy")
    readings = []
    for _ in range(4):
        clock.advance(hours=6)
        readings.append((await read_word(client, auth.headers, word["id"]))["schedule"])
    values = [r["retrievability"] for r in readings]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) == 4


async def test_retrievability_uses_the_users_parameters(client, auth, clock):
    word = await make_word(client, auth.headers)
    await review(client, auth.headers, word["id"], "easy")
    clock.advance(days=5)
    default = (await read_word(client, auth.headers, word["id"]))["schedule"]["retrievability"]
    await User.filter(id=auth.id).update(fsrs_parameters=OWN_PARAMETERS)

    own = (await read_word(client, auth.headers, word["id"]))["schedule"]["retrievability"]

    card = fsrs.Card(
        card_id=1,
        state=fsrs.State.Review,
        stability=(await Card.get(word_id=word["id"])).stability,
        last_review=START,
    )
    assert own == pytest.approx(
        fsrs.Scheduler(parameters=OWN_PARAMETERS).get_card_retrievability(card, clock.now)
    )
    assert own != pytest.approx(default)


# --- The user's own parameters ---


async def test_review_uses_the_users_fsrs_parameters(client, auth, clock):
    await User.filter(id=auth.id).update(fsrs_parameters=OWN_PARAMETERS)
    word = await make_word(client, auth.headers)
    clock.advance(minutes=1)

    body = await review(client, auth.headers, word["id"], "good")
    clock.advance(days=2)
    body = await review(client, auth.headers, word["id"], "good")

    expected = fsrs.Card(card_id=1, due=START)
    defaults = fsrs.Card(card_id=1, due=START)
    for when in (START + timedelta(minutes=1), clock.now):
        expected = fsrs_after(expected, fsrs.Rating.Good, when, parameters=OWN_PARAMETERS)
        defaults = fsrs_after(defaults, fsrs.Rating.Good, when)
    schedule = body["word"]["schedule"]
    assert schedule["stability"] == pytest.approx(expected.stability)
    assert schedule["difficulty"] == pytest.approx(expected.difficulty)
    assert datetime.fromisoformat(schedule["due_at"]) == expected.due
    assert expected.due != defaults.due


async def test_read_me_shows_null_fsrs_parameters_until_optimized(client, auth, clock):
    r = await client.get("/users/me", headers=auth.headers)
    assert (r.json()["fsrs_parameters"], r.json()["reverse_cards"]) == (None, False)
    await User.filter(id=auth.id).update(fsrs_parameters=OWN_PARAMETERS)
    r = await client.get("/users/me", headers=auth.headers)
    assert r.json()["fsrs_parameters"] == OWN_PARAMETERS


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"fsrs_parameters": OWN_PARAMETERS}, id="parameters-not-writable"),
        pytest.param({"reverse_cards": None}, id="reverse-cards-null"),
        pytest.param({"reverse_cards": "false"}, id="reverse-cards-string"),
    ],
)
async def test_update_me_with_invalid_study_settings_is_422(client, auth, clock, payload):
    r = await client.patch("/users/me", headers=auth.headers, json=payload)
    assert r.status_code == 422, r.text
    user = await User.get(id=auth.id)
    assert (user.reverse_cards, user.fsrs_parameters) == (False, None)


# --- Undo ---


async def test_undo_latest_review_restores_the_schedule_exactly(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    await review(client, auth.headers, word["id"], "good")
    clock.advance(days=3)
    await review(client, auth.headers, word["id"], "good")  # graduates to review
    clock.advance(days=20)
    before_body = await read_word(client, auth.headers, word["id"])
    before = schedule_columns((await stored_cards(word["id"]))["forward"])
    lapse = await review(client, auth.headers, word["id"], "again")
    assert lapse["word"]["schedule"]["lapses"] == 1

    r = await client.delete(
        f"/words/{word['id']}/reviews/{lapse['review']['id']}", headers=auth.headers
    )

    assert r.status_code == 200, r.text
    assert r.json() == before_body
    assert schedule_columns((await stored_cards(word["id"]))["forward"]) == before
    assert not await Review.exists(id=lapse["review"]["id"])
    assert await Review.filter(word_id=word["id"]).count() == 2
    assert await read_word(client, auth.headers, word["id"]) == before_body


async def test_undo_every_review_in_turn_brings_the_card_back_to_new(client, auth, clock):
    word = await make_word(client, auth.headers)
    new = schedule_columns((await stored_cards(word["id"]))["forward"])
    ids = []
    for rating in ("again", "good", "easy"):
        clock.advance(minutes=3)
        ids.append((await review(client, auth.headers, word["id"], rating))["review"]["id"])

    for review_id in reversed(ids):
        r = await client.delete(f"/words/{word['id']}/reviews/{review_id}", headers=auth.headers)
        assert r.status_code == 200, r.text

    assert r.json()["schedule"] == word["schedule"]
    assert schedule_columns((await stored_cards(word["id"]))["forward"]) == new
    assert (await stats(client, auth.headers))["reviews_total"] == 0


async def test_undo_review_that_is_not_the_latest_of_its_card_is_409(client, auth, clock):
    word = await make_word(client, auth.headers)
    first = await review(client, auth.headers, word["id"], "good")
    clock.advance(minutes=10)
    latest = await review(client, auth.headers, word["id"], "good")

    r = await client.delete(
        f"/words/{word['id']}/reviews/{first['review']['id']}", headers=auth.headers
    )

    assert (r.status_code, r.json()) == (409, NOT_LATEST)
    assert await Review.filter(word_id=word["id"]).count() == 2
    assert (await read_word(client, auth.headers, word["id"]))["schedule"] == latest["word"][
        "schedule"
    ]


async def test_undo_latest_review_of_each_card_on_its_own(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    forward = await review(client, auth.headers, word["id"], "good")
    clock.advance(minutes=1)
    reverse = await review(client, auth.headers, word["id"], "hard", direction="reverse")

    # The forward review is still its card's latest, though the word has a later one.
    r = await client.delete(
        f"/words/{word['id']}/reviews/{forward['review']['id']}", headers=auth.headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["schedule"]["state"] == "new"
    assert r.json()["reverse_schedule"] == reverse["word"]["reverse_schedule"]
    r = await client.delete(
        f"/words/{word['id']}/reviews/{reverse['review']['id']}", headers=auth.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["reverse_schedule"]["state"] == "new"


@pytest.mark.parametrize("case", ["missing-review", "review-of-another-word", "other-user"])
async def test_undo_review_that_is_not_found_is_404(client, auth, other_auth, clock, case):
    mine = await make_word(client, auth.headers, word="mine")
    other = await make_word(client, auth.headers, word="other")
    theirs = await make_word(client, other_auth.headers, word="theirs")
    my_review = (await review(client, auth.headers, other["id"], "good"))["review"]
    their_review = (await review(client, other_auth.headers, theirs["id"], "good"))["review"]
    word_id, review_id, detail = {
        "missing-review": (mine["id"], 999_999, "Review not found"),
        "review-of-another-word": (mine["id"], my_review["id"], "Review not found"),
        "other-user": (theirs["id"], their_review["id"], "Word not found"),
    }[case]

    r = await client.delete(f"/words/{word_id}/reviews/{review_id}", headers=auth.headers)

    assert (r.status_code, r.json()) == (404, {"detail": detail})
    assert await Review.all().count() == 2


async def test_undo_review_without_token_is_401(client, auth, clock):
    word = await make_word(client, auth.headers)
    done = await review(client, auth.headers, word["id"], "good")
    r = await client.delete(f"/words/{word['id']}/reviews/{done['review']['id']}")
    assert r.status_code == 401, r.text
    assert await Review.all().count() == 1


async def test_read_reviews_lists_both_directions(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    await review(client, auth.headers, word["id"], "good")
    clock.advance(minutes=1)
    await review(client, auth.headers, word["id"], "easy", direction="reverse")

    r = await client.get(f"/words/{word['id']}/reviews", headers=auth.headers)

    assert [(item["direction"], item["rating"]) for item in r.json()["items"]] == [
        ("reverse", "easy"),
        ("forward", "good"),
    ]


# --- Statistics, import, deletion ---


async def test_read_stats_counts_cards_by_state_and_words_by_difficulty(client, auth, clock):
    both = await make_word(client, auth.headers, word="both", reverse=True, difficulty=2)
    await make_word(client, auth.headers, word="one", difficulty=2)
    await make_word(client, auth.headers, word="aside", suspended=True, difficulty=5)
    await review(client, auth.headers, both["id"], "easy", direction="reverse")

    figures = await stats(client, auth.headers)

    assert (figures["words"], figures["new"], figures["due"]) == (3, 2, 2)
    assert figures["by_state"] == {"new": 2, "learning": 0, "review": 1, "relearning": 0}
    assert figures["by_difficulty"] == {"1": 0, "2": 2, "3": 0, "4": 0, "5": 1}
    assert (figures["reviews_total"], figures["reviews_today"]) == (1, 1)


async def test_import_gives_words_reverse_cards_when_the_user_wants_them(client, auth, clock):
    await client.patch("/users/me", headers=auth.headers, json={"reverse_cards": True})
    files = {"file": ("deck.csv", b"word,definition\nHaus,house\nKatze,cat\n", "text/csv")}

    r = await client.post("/words/import", headers=auth.headers, files=files)

    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2
    cards = await Card.filter(user_id=auth.id).values_list("word__word", "direction", "active")
    assert sorted(cards) == [
        ("Haus", "forward", True),
        ("Haus", "reverse", True),
        ("Katze", "forward", True),
        ("Katze", "reverse", True),
    ]
    page = await study(client, auth.headers)
    assert page["due_total"] == 4


async def test_delete_word_deletes_its_cards_and_their_reviews(client, auth, clock):
    word = await make_word(client, auth.headers, reverse=True)
    kept = await make_word(client, auth.headers, word="kept")
    await review(client, auth.headers, word["id"], "good", direction="reverse")

    r = await client.delete(f"/words/{word['id']}", headers=auth.headers)

    assert r.status_code == 204, r.text
    assert await Card.filter(word_id=word["id"]).count() == 0
    assert await Review.all().count() == 0
    assert await Card.filter(word_id=kept["id"]).count() == 1
