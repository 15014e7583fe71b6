"""POST /users/me/optimize: FSRS parameters fitted to the learner's own reviews, applied only
when they predict that history better (API.md, "Personal scheduling").

The realistic history is simulated from a known FSRS memory model whose parameters are far
from the defaults: each card is reviewed when its true scheduler says it is due (a little
late, now and then), and recalled with the probability that true model gives at that moment.
A fit to that history has to move towards the true parameters to beat the defaults.
"""

import itertools
import math
import random
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fsrs
import fsrs_rs_python
import pytest
from conftest import make_word

import vocab
from models import Card, Rating, Review, User, Word

#: The learner's true memory: a quicker start, much longer first stabilities, faster forgetting.
TRUE_PARAMETERS = (
    0.9, 3.0, 7.5, 25.0, 6.8, 0.6, 2.2, 0.02, 1.3, 0.25, 1.1, 1.2, 0.1, 0.35, 1.9, 0.45, 2.4,
    0.7, 0.2, 0.1, 0.35,
)  # fmt: skip
DEFAULT_PARAMETERS = fsrs.scheduler.DEFAULT_PARAMETERS
START = datetime(2023, 1, 2, 8, 0, tzinfo=UTC)
RATINGS = [Rating.AGAIN, Rating.HARD, Rating.GOOD, Rating.EASY]
FSRS_RATINGS = [fsrs.Rating.Again, fsrs.Rating.Hard, fsrs.Rating.Good, fsrs.Rating.Easy]
FIELDS = {
    "applied",
    "reason",
    "reviews_used",
    "parameters",
    "log_loss_before",
    "log_loss_after",
    "rmse_before",
    "rmse_after",
}


def simulate(cards: int, days: int, seed: int = 7) -> list[list[tuple[int, datetime, Any]]]:
    """Review histories of `cards` cards over `days` days: per card, a list of (rating index,
    time, the scheduler's card before the review).

    The reviews come when vocab's default scheduler says (now and then late), as they did
    before the learner optimized; whether the learner recalls is drawn from the true memory
    model (TRUE_PARAMETERS), so the history tells how the learner really forgets."""
    rng = random.Random(seed)
    truth = fsrs.Scheduler(parameters=TRUE_PARAMETERS, enable_fuzzing=False)
    app = fsrs.Scheduler(enable_fuzzing=False)
    end = START + timedelta(days=days)
    histories = []
    for n in range(cards):
        card = memory = fsrs.Card(card_id=n + 1, due=START)
        when = START + timedelta(days=rng.randrange(days // 2), minutes=rng.randrange(600))
        history = []
        while when < end:
            if memory.last_review is None:
                rating = rng.choices(range(4), weights=(15, 10, 60, 15))[0]
            elif rng.random() < truth.get_card_retrievability(memory, when):
                rating = rng.choices(range(1, 4), weights=(15, 75, 10))[0]
            else:
                rating = 0
            history.append((rating, when, card))
            card, _ = app.review_card(card, FSRS_RATINGS[rating], review_datetime=when)
            memory, _ = truth.review_card(memory, FSRS_RATINGS[rating], review_datetime=when)
            late = timedelta(days=rng.expovariate(1 / 3)) if rng.random() < 0.3 else timedelta(0)
            when = max(card.due + late, when + timedelta(minutes=1))
        histories.append(history)
    return histories


async def store_history(user_id: int, histories: list[list[tuple[int, datetime, Any]]]) -> int:
    """Store simulated histories as the user's words, forward cards and reviews; returns how
    many reviews were stored."""
    words = [
        Word(user_id=user_id, word=f"w{n}", word_key=f"w{n}", definition="d", created_at=START)
        for n in range(len(histories))
    ]
    await Word.bulk_create(words)
    ids = await Word.filter(user_id=user_id).order_by("id").values_list("id", flat=True)
    cards = [
        Card(word_id=word_id, user_id=user_id, direction="forward", due_at=START) for word_id in ids
    ]
    await Card.bulk_create(cards)
    card_ids = await Card.filter(user_id=user_id).order_by("word_id").values_list("id", "word_id")
    reviews = []
    app = fsrs.Scheduler(enable_fuzzing=False)
    for (card_id, word_id), history in zip(card_ids, histories, strict=True):
        for rating, when, before in history:
            after, _ = app.review_card(before, FSRS_RATINGS[rating], review_datetime=when)
            reviews.append(
                Review(
                    card_id=card_id,
                    word_id=word_id,
                    user_id=user_id,
                    rating=RATINGS[rating],
                    reviewed_at=when,
                    reviewed_on=when.date(),
                    state_before="new" if before.last_review is None else "review",
                    due_before=before.due,
                    stability_after=after.stability,
                    difficulty_after=after.difficulty,
                    state_after="review",
                    due_after=after.due,
                )
            )
    await Review.bulk_create(reviews, batch_size=1000)
    return len(reviews)


def distance(parameters: Sequence[float]) -> float:
    """How far parameters are from the true ones: the mean difference, each parameter scaled
    by the range FSRS allows it."""
    bounds = zip(
        fsrs.scheduler.LOWER_BOUNDS_PARAMETERS, fsrs.scheduler.UPPER_BOUNDS_PARAMETERS, strict=True
    )
    return sum(
        abs(value - true) / (high - low)
        for value, true, (low, high) in zip(parameters, TRUE_PARAMETERS, bounds, strict=True)
    ) / len(TRUE_PARAMETERS)


#: Review histories to judge parameters by what they mean: each first rating, then two
#: reviews (forgotten or recalled) after short, middling and long gaps.
PROBES = [
    fsrs_rs_python.FSRSItem(
        [fsrs_rs_python.FSRSReview(first, 0)]
        + [fsrs_rs_python.FSRSReview(r, gap) for r, gap in zip(ratings, gaps, strict=True)]
    )
    for first in (1, 2, 3, 4)
    for ratings in itertools.product((1, 3), repeat=2)
    for gaps in ((1, 3), (3, 10), (7, 30))
]


def memory_distance(parameters: Sequence[float]) -> float:
    """How far parameters are from the true ones in what they predict: the mean difference in
    log stability they give the PROBES histories."""
    true_states = [fsrs_rs_python.FSRS(list(TRUE_PARAMETERS)).memory_state(p) for p in PROBES]
    states = [fsrs_rs_python.FSRS(list(parameters)).memory_state(p) for p in PROBES]
    return sum(
        abs(math.log(state.stability / true.stability))
        for state, true in zip(states, true_states, strict=True)
    ) / len(PROBES)


async def optimize(client, headers) -> dict[str, Any]:
    r = await client.post("/users/me/optimize", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FIELDS
    return body


async def test_optimize_realistic_history_moves_parameters_towards_the_truth(client, auth):
    stored = await store_history(auth.id, simulate(cards=800, days=300))
    assert 5_000 <= stored <= 9_000  # several thousand reviews, about 9 per card

    body = await optimize(client, auth.headers)

    assert body["applied"] is True, body
    assert "now used" in body["reason"]
    assert 0 < body["reviews_used"] <= stored
    assert len(body["parameters"]) == 21
    assert body["log_loss_after"] < body["log_loss_before"]
    assert body["rmse_after"] < body["rmse_before"]
    assert distance(body["parameters"]) < 0.8 * distance(DEFAULT_PARAMETERS)
    assert memory_distance(body["parameters"]) < 0.7 * memory_distance(DEFAULT_PARAMETERS)
    assert (await User.get(id=auth.id)).fsrs_parameters == body["parameters"]
    r = await client.get("/users/me", headers=auth.headers)
    assert r.json()["fsrs_parameters"] == body["parameters"]

    # The parameters in use now are the fitted ones: a second fit finds nothing better.
    again = await optimize(client, auth.headers)

    assert again["applied"] is False
    assert "kept" in again["reason"]
    assert again["log_loss_before"] == pytest.approx(body["log_loss_after"])
    assert (await User.get(id=auth.id)).fsrs_parameters == body["parameters"]


async def test_optimize_then_reviews_use_the_fitted_parameters(client, auth, monkeypatch):
    await store_history(auth.id, simulate(cards=120, days=120, seed=3))
    parameters = (await optimize(client, auth.headers))["parameters"]
    now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(vocab, "utcnow", lambda: now)
    word = await make_word(client, auth.headers, word="fresh")

    r = await client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "easy"}
    )

    assert r.status_code == 201, r.text
    expected, _ = fsrs.Scheduler(parameters=parameters, enable_fuzzing=False).review_card(
        fsrs.Card(card_id=1, due=now), fsrs.Rating.Easy, review_datetime=now
    )
    assert r.json()["word"]["schedule"]["stability"] == pytest.approx(expected.stability)
    assert r.json()["word"]["schedule"]["stability"] != pytest.approx(DEFAULT_PARAMETERS[3])


@pytest.mark.parametrize("reviews", [0, 1, 5])
async def test_optimize_with_a_handful_of_reviews_is_not_applied(client, auth, reviews):
    word = await make_word(client, auth.headers)
    for _ in range(reviews):
        r = await client.post(
            f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
        )
        assert r.status_code == 201, r.text

    body = await optimize(client, auth.headers)

    assert body == {
        "applied": False,
        "reason": "Too little history: 0 of your reviews came on a later day than their "
        "card's previous review, and fitting needs at least 8.",
        "reviews_used": 0,
        "parameters": None,
        "log_loss_before": None,
        "log_loss_after": None,
        "rmse_before": None,
        "rmse_after": None,
    }
    assert (await User.get(id=auth.id)).fsrs_parameters is None


async def test_optimize_runs_on_its_own_thread(client, auth, monkeypatch):
    threads = []
    optimize_on = vocab.optimize

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return optimize_on(*args)

    monkeypatch.setattr(vocab, "optimize", recording)
    await optimize(client, auth.headers)
    assert len(threads) == 1
    assert threads[0].startswith("fsrs-optimizer")
    assert threads[0] != threading.main_thread().name


async def test_optimize_without_token_is_401(client):
    r = await client.post("/users/me/optimize")
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"


# --- Training items ---


def day(n: int) -> Any:
    return (START + timedelta(days=n)).date()


def as_lists(items: list[Any]) -> list[list[tuple[int, int]]]:
    """Items as (rating, days since the review before) pairs (the binding shows them only in
    its repr: `FSRSReview { rating: 3, delta_t: 2 }`)."""
    pairs = [[re.findall(r"\d+", repr(review)) for review in item.reviews] for item in items]
    return [[(int(rating), int(gap)) for rating, gap in item] for item in pairs]


def test_training_items_one_per_later_day_with_day_gaps_as_anki_builds_them():
    history = [
        # card 1: learning steps on day 0, then days 2 and 7 (two reviews on day 7)
        (1, 10, "again", day(0)),
        (1, 11, "good", day(0)),
        (1, 13, "good", day(2)),
        (1, 16, "hard", day(7)),
        (1, 17, "good", day(7)),
        # card 2: one review only: no item
        (2, 12, "easy", day(1)),
        # card 3: reviewed on days 1 and 4
        (3, 14, "good", day(1)),
        (3, 15, "again", day(4)),
    ]

    items, reviews_used = vocab.training_items(history)

    assert as_lists(items) == [
        [(1, 0), (3, 0), (3, 2)],  # card 1 on day 2 (review 13)
        [(3, 0), (1, 3)],  # card 3 on day 4 (review 15)
        [(1, 0), (3, 0), (3, 2), (2, 5)],  # card 1 on day 7 (review 16); review 17 is no item
    ]
    assert reviews_used == 7  # card 2's single review made no item
