"""Concurrent writes on PostgreSQL: unique words, queued reviews, PATCHes that never undo a
review. (SQLite serialises every writer, so these would prove nothing there.)

The requests run together through one app, as many workers' requests would hit one database.
Counts are kept with `record_figure` (conftest).
"""

import asyncio
import itertools
import os

import pytest
from conftest import make_word, record_figure

from models import Card, Review, Word

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="PostgreSQL only (row locks and unique-index races): set TEST_DATABASE_URL",
    ),
]

RATINGS = ["good", "again", "hard", "easy", "good"]


def schedule_of(card: Card) -> tuple:
    return (card.state, card.due_at, card.stability, card.fsrs_difficulty, card.step)


def schedule_after(review: Review) -> tuple:
    return (
        review.state_after,
        review.due_after,
        review.stability_after,
        review.difficulty_after,
        review.step_after,
    )


async def assert_reviews_form_one_chain(word_id: int, count: int) -> Review:
    """Each review started from the schedule the one before it left (none was lost or read a
    stale schedule); returns the newest."""
    reviews = await Review.filter(word_id=word_id).order_by("reviewed_at", "id")
    assert len(reviews) == count
    for earlier, later in itertools.pairwise(reviews):
        assert (later.state_before, later.due_before, later.stability_before) == (
            earlier.state_after,
            earlier.due_after,
            earlier.stability_after,
        )
        assert later.difficulty_before == earlier.difficulty_after
        assert later.last_reviewed_before == earlier.reviewed_at
    return reviews[-1]


async def test_create_word_50_times_at_once_creates_it_once(client, auth):
    body = {"word": "Concurrency", "definition": "things happening at the same time"}
    responses = await asyncio.gather(
        *(client.post("/words", headers=auth.headers, json=body) for _ in range(50))
    )
    statuses = sorted(r.status_code for r in responses)
    record_figure("concurrency: simultaneous POST /words of one word", len(responses))
    assert statuses == [201] + [409] * 49, statuses
    conflicts = [r.json() for r in responses if r.status_code == 409]
    assert all(c == {"detail": "You already have this word in this language"} for c in conflicts)
    assert await Word.filter(user_id=auth.id).count() == 1


async def test_review_word_20_times_at_once_records_every_review(client, auth):
    word = await make_word(client, auth.headers)
    responses = await asyncio.gather(
        *(
            client.post(
                f"/words/{word['id']}/reviews",
                headers=auth.headers,
                json={"rating": RATINGS[n % len(RATINGS)]},
            )
            for n in range(20)
        )
    )
    record_figure("concurrency: simultaneous reviews of one word", len(responses))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    card = await Card.get(word_id=word["id"], direction="forward")
    assert card.reps == 20
    newest = await assert_reviews_form_one_chain(word["id"], 20)
    assert schedule_of(card) == schedule_after(newest)
    assert card.last_reviewed_at == newest.reviewed_at


async def test_update_word_during_reviews_keeps_both(client, auth):
    word = await make_word(client, auth.headers, tags=["start"], difficulty=3)
    patches = [
        *({"definition": f"definition {n}"} for n in range(8)),
        *({"tags": [f"tag{n}", "shared"]} for n in range(8)),
        *({"difficulty": 1 + n % 5} for n in range(8)),
    ]
    reviews = [{"rating": RATINGS[n % len(RATINGS)]} for n in range(12)]
    requests = []
    for n in range(max(len(patches), len(reviews))):  # interleaved
        if n < len(patches):
            requests.append(
                client.patch(f"/words/{word['id']}", headers=auth.headers, json=patches[n])
            )
        if n < len(reviews):
            requests.append(
                client.post(f"/words/{word['id']}/reviews", headers=auth.headers, json=reviews[n])
            )
    responses = await asyncio.gather(*requests)
    record_figure(
        "concurrency: simultaneous PATCHes + reviews of one word",
        f"{len(patches)} + {len(reviews)} = {len(responses)}",
    )
    assert sorted(r.status_code for r in responses) == [200] * len(patches) + [201] * len(
        reviews
    ), [r.text for r in responses]
    stored = await Word.get(id=word["id"])
    assert stored.definition in {p["definition"] for p in patches if "definition" in p}
    assert stored.tags.split() in [p["tags"] for p in patches if "tags" in p]
    assert stored.difficulty in {p["difficulty"] for p in patches if "difficulty" in p}
    card = await Card.get(word_id=word["id"], direction="forward")
    assert card.reps == len(reviews)
    newest = await assert_reviews_form_one_chain(word["id"], len(reviews))
    assert schedule_of(card) == schedule_after(newest)
