"""How fast the statistics over time answer for a learner with 100,000 reviews.

    .venv/bin/python bench/stats.py --pg-url postgres://postgres@127.0.0.1:5432
    .venv/bin/python bench/stats.py                      # SQLite, in a temporary file
    .venv/bin/python bench/stats.py --reviews 20000 --requests 50

It seeds one learner in Europe/Berlin (study days from 04:00, so the year holds both DST
changes) through vocab's own models: 8,334 words with forward cards due over the coming year,
and `--reviews` reviews spread over the last 365 days (every day has some, so the streak is a
year long), then runs the app in-process (ASGI, as the tests do) and prints the p50 and p90 of
`--requests` requests to each of GET /stats/history and /stats/forecast (30 and 365 days) and
GET /stats (whose streak reads the history back, 30 days and then a year at a time). On
PostgreSQL the tables are vacuumed and analyzed after seeding. With --pg-url a database
named vocab_bench_stats (--db) is dropped and created there, and dropped again at the end
(unless --keep-db).
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
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATINGS = ("again", "hard", "good", "easy")


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


async def seed(user_id: int, reviews: int, now: datetime, rng: random.Random) -> None:
    """Words with review cards due over the next year, and reviews over the last year."""
    from models import Card, Review, Word

    cards = max(1, reviews // 12)
    created = now - timedelta(days=400)
    await Word.bulk_create(
        [
            Word(
                user_id=user_id, word=f"w{n}", word_key=f"w{n}", definition="d", created_at=created
            )
            for n in range(cards)
        ],
        batch_size=2000,
    )
    ids = await Word.filter(user_id=user_id).order_by("id").values_list("id", flat=True)
    await Card.bulk_create(
        [
            Card(
                word_id=i, user_id=user_id, direction="forward", state="review", stability=10.0,
                fsrs_difficulty=5.0, reps=12, due_at=now + timedelta(hours=rng.uniform(-48, 8760)),
                last_reviewed_at=now - timedelta(days=1),
            )
            for i in ids
        ],
        batch_size=2000,
    )  # fmt: skip
    card_ids = await Card.filter(user_id=user_id).order_by("id").values_list("id", "word_id")
    rows = []
    for n in range(reviews):
        card_id, word_id = card_ids[n % len(card_ids)]
        when = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        rows.append(
            Review(
                card_id=card_id, word_id=word_id, user_id=user_id,
                rating=rng.choices(RATINGS, weights=(12, 10, 68, 10))[0], reviewed_at=when,
                reviewed_on=when.date(), state_before="review", due_before=when,
                stability_after=10.0, difficulty_after=5.0, state_after="review", due_after=when,
            )
        )  # fmt: skip
    for first in range(0, len(rows), 5000):
        await Review.bulk_create(rows[first : first + 5000], batch_size=5000)


async def run(args: argparse.Namespace) -> None:
    import httpx
    from asgi_lifespan import LifespanManager

    import vocab

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
            settings = {"timezone": "Europe/Berlin", "day_starts_at": 4}
            assert (await client.patch("/users/me", headers=headers, json=settings)).is_success
            began = time.perf_counter()
            await seed(user_id, args.reviews, vocab.utcnow(), random.Random(13))
            print(f"seeded {args.reviews:,} reviews in {time.perf_counter() - began:.1f} s")
            if args.pg_url:
                # What autovacuum does to a table soon after a bulk load: planner statistics,
                # and the visibility map that lets the history read the index alone.
                from tortoise import connections

                await connections.get("default").execute_script("VACUUM ANALYZE reviews, cards")

            for path in (
                "/stats/history?days=30",
                "/stats/history?days=365",
                "/stats/forecast?days=30",
                "/stats/forecast?days=365",
                "/stats",
            ):
                times = []
                for _ in range(args.requests + 5):
                    sent = time.perf_counter()
                    r = await client.get(path, headers=headers)
                    times.append(time.perf_counter() - sent)
                    assert r.status_code == 200, r.text
                times = times[5:]  # warm-up
                body = r.json()
                if "items" in body:
                    key = "reviews" if "history" in path else "due"
                    what = f"{sum(day[key] for day in body['items']):,} {key}"
                else:
                    what = f"streak {body['streak_days']} days, {body['reviews_total']:,} reviews"
                deciles = statistics.quantiles(times, n=10)
                print(
                    f"GET {path}: p50 {statistics.median(times) * 1000:.1f} ms, "
                    f"p90 {deciles[8] * 1000:.1f} ms over {len(times)} requests ({what})"
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
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--pg-url", help="e.g. postgres://postgres@127.0.0.1:5432 (no database)")
    parser.add_argument("--db", default="vocab_bench_stats", help="the database to (re)create")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.pg_url:
            asyncio.run(drop_and_create(args.pg_url, args.db, create=True))
            configure(f"{args.pg_url}/{args.db}")
        else:
            configure(f"sqlite://{Path(scratch) / 'stats.sqlite3'}")
        try:
            asyncio.run(run(args))
        finally:
            if args.pg_url and not args.keep_db:
                asyncio.run(drop_and_create(args.pg_url, args.db, create=False))


if __name__ == "__main__":
    main()
