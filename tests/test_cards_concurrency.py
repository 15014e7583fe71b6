"""Concurrent reviews and undos of one card on PostgreSQL: the card's row lock queues them, so
the review log stays one unbroken chain and the card holds the schedule its latest review
left (or its first one, when every review was undone). SQLite serialises every writer, so
this would prove nothing there."""

import asyncio
import itertools
import os

import pytest
from conftest import make_word

from models import Card, Review, Word

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="PostgreSQL only (row locks): set TEST_DATABASE_URL",
    ),
]
RATINGS = ["good", "again", "hard", "easy"]


def schedule(card: Card) -> tuple:
    return (card.state, card.step, card.stability, card.fsrs_difficulty, card.due_at)


async def assert_card_matches_its_log(card_id: int, new_card: tuple) -> list[Review]:
    """Each remaining review started from the schedule the one before it left, the first from
    the new card, and the card holds what the last one left; returns the reviews."""
    reviews = await Review.filter(card_id=card_id).order_by("id")
    card = await Card.get(id=card_id)
    expected_start = new_card
    for review in reviews:
        assert (
            review.state_before,
            review.step_before,
            review.stability_before,
            review.difficulty_before,
            review.due_before,
        ) == expected_start
        expected_start = (
            review.state_after,
            review.step_after,
            review.stability_after,
            review.difficulty_after,
            review.due_after,
        )
    for earlier, later in itertools.pairwise(reviews):
        assert later.last_reviewed_before == earlier.reviewed_at
    assert schedule(card) == expected_start
    assert card.reps == len(reviews)
    return reviews


async def test_undo_one_review_20_times_at_once_undoes_it_once(client, auth):
    word = await make_word(client, auth.headers)
    new = schedule(await Card.get(word_id=word["id"]))
    first = await client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
    )
    latest = await client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "easy"}
    )
    url = f"/words/{word['id']}/reviews/{latest.json()['review']['id']}"

    responses = await asyncio.gather(*(client.delete(url, headers=auth.headers) for _ in range(20)))

    assert sorted(r.status_code for r in responses) == [200] + [404] * 19
    card = await Card.get(word_id=word["id"])
    reviews = await assert_card_matches_its_log(card.id, new)
    assert [r.id for r in reviews] == [first.json()["review"]["id"]]


async def test_reviews_and_undos_of_one_card_at_once_keep_it_consistent(client, auth):
    word = await make_word(client, auth.headers, reverse=True)
    cards = {card.direction: card for card in await Card.filter(word_id=word["id"])}
    new_forward = schedule(cards["forward"])
    made = []
    for n in range(6):
        r = await client.post(
            f"/words/{word['id']}/reviews",
            headers=auth.headers,
            json={"rating": RATINGS[n % 4], "direction": ["forward", "reverse"][n % 2]},
        )
        made.append(r.json()["review"]["id"])
    # Undo every earlier review while new ones arrive, of both cards, interleaved.
    requests = []
    for n, review_id in enumerate(reversed(made)):
        requests.append(
            client.delete(f"/words/{word['id']}/reviews/{review_id}", headers=auth.headers)
        )
        requests.append(
            client.post(
                f"/words/{word['id']}/reviews",
                headers=auth.headers,
                json={"rating": RATINGS[n % 4], "direction": "forward"},
            )
        )

    responses = await asyncio.gather(*requests)

    statuses = [r.status_code for r in responses]
    assert set(statuses[1::2]) == {201}, [r.text for r in responses]
    assert set(statuses[::2]) <= {200, 409}, [r.text for r in responses]
    undone = {made[-1 - n] for n, status in enumerate(statuses[::2]) if status == 200}
    remaining = set(await Review.filter(word_id=word["id"]).values_list("id", flat=True))
    assert not undone & remaining
    assert len(remaining) == len(made) - len(undone) + 6
    await assert_card_matches_its_log(cards["forward"].id, new_forward)
    await assert_card_matches_its_log(cards["reverse"].id, schedule(cards["reverse"]))


async def test_toggles_reviews_and_a_delete_of_one_word_at_once_never_deadlock(client, auth):
    word = await make_word(client, auth.headers, reverse=True)
    url = f"/words/{word['id']}"
    requests = []
    for n in range(12):
        requests.append(
            client.patch(
                url, headers=auth.headers, json={"reverse": n % 2 == 1, "suspended": n % 3 == 0}
            )
        )
        requests.append(
            client.post(
                f"{url}/reviews",
                headers=auth.headers,
                json={"rating": "good", "direction": ["forward", "reverse"][n % 2]},
            )
        )
    toggled = await asyncio.gather(*requests)
    assert {r.status_code for r in toggled[::2]} == {200}, [r.text for r in toggled]
    assert {r.status_code for r in toggled[1::2]} <= {201, 422}, [r.text for r in toggled]
    stored = await Word.get(id=word["id"])
    cards = {card.direction: card.active for card in await Card.filter(word_id=word["id"])}
    assert cards == {
        "forward": not stored.suspended,
        "reverse": stored.reverse and not stored.suspended,
    }

    finale = await asyncio.gather(
        *(
            client.post(f"{url}/reviews", headers=auth.headers, json={"rating": "easy"})
            for _ in range(5)
        ),
        client.delete(url, headers=auth.headers),
        *(client.patch(url, headers=auth.headers, json={"suspended": True}) for _ in range(3)),
    )
    assert {r.status_code for r in finale} <= {201, 204, 200, 404}, [r.text for r in finale]
    assert [r.status_code for r in finale].count(204) == 1
    assert await Card.filter(word_id=word["id"]).count() == 0
