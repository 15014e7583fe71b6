"""How long POST /users/me/optimize takes for a learner with 100,000 reviews, and whether other
requests are held up meanwhile.

    .venv/bin/python bench/optimize.py                      # SQLite, in a temporary file
    .venv/bin/python bench/optimize.py --pg-url postgres://postgres@127.0.0.1:5432
    .venv/bin/python bench/optimize.py --reviews 20000 --rounds 1

It seeds one learner through vocab's own models (words, forward cards, and reviews spread over
a year: each card reviewed on later and later days, sometimes forgotten, some reviews on the
same day as the one before), then runs the app in-process (ASGI, as the tests do) and times
the whole request, best of `--rounds`, with the phases inside it (reading the log, building
the training items, fitting, evaluating both parameter sets), measured by calling vocab's own
functions the same way. While the request runs, one task sleeps 5 ms at a time and records
how late it wakes (how long the event loop was held), and another asks GET /health every
10 ms (on SQLite, whose one connection the log read holds, it waits for that read). With
--pg-url a database named vocab_bench_optimize is dropped and created there, and dropped again
at the end.
"""

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(database_url: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_hex(32),
        ARGON2_MEMORY_KIB="8",
        ARGON2_TIME_COST="1",
        RATE_LIMIT_LOGIN="off",
        RATE_LIMIT_REGISTER="off",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="text",
    )


RATINGS = ("again", "hard", "good", "easy")


async def seed(user_id: int, reviews: int, rng: random.Random) -> int:
    """Words, forward cards and about `reviews` reviews for one user; returns the count."""
    from models import Card, Review, Word

    cards = max(1, reviews // 12)
    start = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    words = [
        Word(user_id=user_id, word=f"w{n}", word_key=f"w{n}", definition="d", created_at=start)
        for n in range(cards)
    ]
    await Word.bulk_create(words, batch_size=2000)
    ids = await Word.filter(user_id=user_id).order_by("id").values_list("id", flat=True)
    await Card.bulk_create(
        [Card(word_id=i, user_id=user_id, direction="forward", due_at=start) for i in ids],
        batch_size=2000,
    )
    card_ids = await Card.filter(user_id=user_id).order_by("id").values_list("id", "word_id")
    rows = []
    for card_id, word_id in card_ids:
        when = start + timedelta(days=rng.randrange(120), hours=rng.uniform(0, 12))
        interval = 1.0
        for _ in range(rng.randint(6, 18)):
            rating = rng.choices(range(4), weights=(12, 10, 68, 10))[0]
            rows.append(
                Review(
                    card_id=card_id,
                    word_id=word_id,
                    user_id=user_id,
                    rating=RATINGS[rating],
                    reviewed_at=when,
                    reviewed_on=when.date(),
                    state_before="review",
                    due_before=when,
                    stability_after=interval,
                    difficulty_after=5.0,
                    state_after="review",
                    due_after=when,
                )
            )
            if rating == 0 and rng.random() < 0.5:
                when += timedelta(minutes=10)  # relearnt the same day
                interval = 1.0
            else:
                interval = min(120.0, interval * ((1.2, 1.6, 2.5, 3.5)[rating] if rating else 0.5))
                when += timedelta(days=max(1.0, interval * rng.uniform(0.8, 1.5)))
    rows = rows[:reviews]
    for first in range(0, len(rows), 5000):
        await Review.bulk_create(rows[first : first + 5000], batch_size=5000)
    return len(rows)


async def run(args: argparse.Namespace) -> None:
    import httpx
    from asgi_lifespan import LifespanManager

    import vocab
    from models import User

    async with LifespanManager(vocab.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            email, password = f"bench-{secrets.token_hex(4)}@example.com", "bench password"
            r = await client.post("/auth/register", json={"email": email, "password": password})
            user_id = r.json()["id"]
            token = (
                await client.post("/auth/token", data={"username": email, "password": password})
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            began = time.perf_counter()
            count = await seed(user_id, args.reviews, random.Random(11))
            print(f"seeded {count:,} reviews in {time.perf_counter() - began:.1f} s")

            totals, stalls = [], []
            for _ in range(args.rounds):
                await User.filter(id=user_id).update(fsrs_parameters=None)
                done = asyncio.Event()
                health: list[float] = []
                lags: list[float] = []

                async def ping(done: asyncio.Event, health: list[float]) -> None:
                    while not done.is_set():
                        sent = time.perf_counter()
                        await client.get("/health")
                        health.append(time.perf_counter() - sent)
                        await asyncio.sleep(0.01)

                async def tick(done: asyncio.Event, lags: list[float]) -> None:
                    while not done.is_set():
                        sent = time.perf_counter()
                        await asyncio.sleep(0.005)
                        lags.append(time.perf_counter() - sent - 0.005)

                pinger = asyncio.create_task(ping(done, health))
                ticker = asyncio.create_task(tick(done, lags))
                sent = time.perf_counter()
                r = await client.post("/users/me/optimize", headers=headers)
                totals.append(time.perf_counter() - sent)
                done.set()
                await pinger
                await ticker
                stalls.append((max(lags, default=0.0), max(health, default=0.0)))
                body = r.json()
                assert r.status_code == 200, r.text
            print(
                f"POST /users/me/optimize: best {min(totals) * 1000:.0f} ms, median "
                f"{statistics.median(totals) * 1000:.0f} ms over {len(totals)} rounds; "
                f"reviews_used {body['reviews_used']:,}, applied {body['applied']}, log loss "
                f"{body['log_loss_before']:.4f} -> {body['log_loss_after']:.4f}, RMSE "
                f"{body['rmse_before']:.4f} -> {body['rmse_after']:.4f}"
            )
            lag, slowest = max(stalls)
            print(
                f"meanwhile: the event loop was held for at most {lag * 1000:.0f} ms at a time; "
                f"the slowest GET /health took {slowest * 1000:.0f} ms"
            )

            # The phases, by calling the same functions the route calls.
            began = time.perf_counter()
            history = await vocab.review_log(await User.get(id=user_id))
            read = time.perf_counter() - began
            began = time.perf_counter()
            items, _ = vocab.training_items(history)
            build = time.perf_counter() - began
            import fsrs_rs_python

            model = fsrs_rs_python.FSRS(fsrs_rs_python.DEFAULT_PARAMETERS)
            began = time.perf_counter()
            fitted = model.compute_parameters(items, num_relearning_steps=1)
            fit = time.perf_counter() - began
            began = time.perf_counter()
            fsrs_rs_python.FSRS(list(vocab.DEFAULT_PARAMETERS)).evaluate(items)
            fsrs_rs_python.FSRS(vocab.within_fsrs_bounds(fitted)).evaluate(items)
            evaluate = time.perf_counter() - began
            print(
                f"phases: read the log {read * 1000:.0f} ms, {len(items):,} training items "
                f"{build * 1000:.0f} ms, fit {fit * 1000:.0f} ms, evaluate both "
                f"{evaluate * 1000:.0f} ms"
            )


async def drop_and_create(pg_url: str, name: str, create: bool) -> None:
    import asyncpg

    connection = await asyncpg.connect(f"{pg_url}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", help="e.g. postgres://postgres@127.0.0.1:5432 (no database)")
    args = parser.parse_args()
    name = "vocab_bench_optimize"
    with tempfile.TemporaryDirectory() as scratch:
        if args.pg_url:
            asyncio.run(drop_and_create(args.pg_url, name, create=True))
            configure(f"{args.pg_url}/{name}")
        else:
            configure(f"sqlite://{Path(scratch) / 'optimize.sqlite3'}")
        try:
            asyncio.run(run(args))
        finally:
            if args.pg_url:
                asyncio.run(drop_and_create(args.pg_url, name, create=False))


if __name__ == "__main__":
    main()
