"""Seed the benchmark database through vocab's own models (run by bench/run.py).

Run with DATABASE_URL (and vocab's other settings) in the environment, from the repository root:
`python bench/seed.py --profile full --out seed.json`. The schema must already be migrated
(`python vocab.py migrate`). Everything goes through `models` with `Tortoise.init(config=
vocab.TORTOISE_ORM)` and `bulk_create`; passwords are hashed by `vocab.hash_password` at the
configured (production) argon2 cost; review histories are replayed with vocab's own FSRS
scheduler, so every word's schedule is the one its reviews produce.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import Tortoise, connections  # noqa: E402

import vocab  # noqa: E402
from models import Card, Direction, Rating, Review, State, User, Word  # noqa: E402

PASSWORD = "bench: correct horse battery staple"

#: How much data each profile makes. `reviews` go to the main user's oldest words.
PROFILES: dict[str, dict[str, int]] = {
    "full": {
        "main": 10_000,
        "others": 99,
        "others_words": 100_000,
        "big": 100_000,
        "small": 1_000,
        "writer": 2_000,
        "reviews": 50_000,
    },
    "smoke": {
        "main": 1_000,
        "others": 9,
        "others_words": 2_000,
        "big": 2_000,
        "small": 200,
        "writer": 200,
        "reviews": 2_000,
    },
}

#: The users who sign in during the benchmark (each gets its own production-cost hash).
LOGIN_USERS = {
    "main": "bench-main@example.com",
    "big": "bench-big@example.com",
    "small": "bench-small@example.com",
    "writer": "bench-writer@example.com",
}

#: The `q` the search benchmark uses: a definition word that ~2 % of definitions contain.
SEARCH_TERM = "harbo"


def split_words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SYLLABLES = split_words(
    "ka ri to me lu sa ne po vi da ren tal mor ish gen bel fra sto quin dor ve la mi su "
    "ter pal cor nix bra gle thu wen zo fel har vy ost lem cri dun ga pe ru lo tia ber mas "
    "sel kin aur vos fen gru lit nor pra tev ul yar zem che sha"
)
# "harbo" appears in definitions only: no syllable pair makes it.
DEFINITION_WORDS = split_words(
    "a an the of to in on for with without about under over between after before during "
    "person place thing feeling state act quality kind sort piece part group amount way "
    "small large old new quick slow bright dark quiet loud warm cold soft hard gentle "
    "sudden careful strange common rare formal informal polite rude happy sad tired eager "
    "to walk run speak write read think feel make take give hold keep leave find lose "
    "open close move turn carry build break grow fall rise wait hope believe remember "
    "house street garden river mountain city village market school office kitchen table "
    "window door road bridge forest field sea sky rain snow wind light sound voice word "
    "story letter book song game meal bread water fire stone metal cloth paper money time "
    "day night morning evening year season journey friend family child teacher worker "
    "someone something especially usually often rarely suddenly slowly used when that "
    "which who someone's very quite rather too also only even still"
)
RARE_WORDS = ("harbour", "harbor")  # carry SEARCH_TERM
TAGS = split_words("noun verb adj adv phrase idiom a1 a2 b1 b2 c1 c2 travel food work home nature")
LANGUAGES = ("en", "en", "de", "fr", "es", "it", "pt-BR", "")


def make_word(rng: random.Random, taken: set[tuple[str, str]], language: str) -> str:
    """A pronounceable made-up word that this user does not have yet in this language."""
    while True:
        text = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if language == "de" or rng.random() < 0.05:
            text = text.capitalize()
        if rng.random() < 0.03:
            text += " " + "".join(rng.choice(SYLLABLES) for _ in range(2))  # a phrase
        key = (vocab.word_key(text), language)
        if key not in taken:
            taken.add(key)
            return text


def make_definition(rng: random.Random) -> str:
    """English-looking prose of 60–200 characters."""
    target = rng.randint(60, 200)
    parts: list[str] = []
    length = 0
    while length < target:
        token = rng.choice(RARE_WORDS) if rng.random() < 0.0017 else rng.choice(DEFINITION_WORDS)
        if length + len(token) + 1 > 200:
            break
        parts.append(token)
        length += len(token) + 1
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def word_row(rng: random.Random, user_id: int, created_at: datetime, taken: set) -> dict[str, Any]:
    """The columns of one new word, normalised the way the API stores them."""
    language = rng.choice(LANGUAGES)
    text = make_word(rng, taken, language)
    tags = rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3, 4)))
    fields = vocab.word_fields(
        {
            "word": text,
            "definition": make_definition(rng),
            "example": (
                f"She mentioned the {text.lower()} {rng.choice(('twice', 'again', 'today'))}."
                if rng.random() < 0.5
                else None
            ),
            "language": language or None,
            "difficulty": rng.randint(1, 5),
            "tags": tags,
        }
    )
    fields["reverse"] = False
    return {"user_id": user_id, "created_at": created_at, **fields}


RATINGS = (Rating.AGAIN, Rating.HARD, Rating.GOOD, Rating.EASY)
RATING_WEIGHTS = (5, 10, 75, 10)


def replay_reviews(
    rng: random.Random, card: Card, retention: float, now: datetime
) -> list[dict[str, Any]]:
    """Review a word's forward card (unsaved) as a learner would, from its creation until now:
    each review a little after the card fell due. Updates the card's schedule with vocab's own
    FSRS code and returns the review rows (without word_id and card_id)."""
    reviews: list[dict[str, Any]] = []
    card.id = 1  # card_of's card_id (fsrs sleeps a millisecond to invent one when it is None)
    # fsrs wants datetime.UTC itself (Tortoise may hand back an equal ZoneInfo("UTC")).
    at = card.due_at.astimezone(UTC) + timedelta(minutes=rng.uniform(1, 3 * 24 * 60))
    rules = vocab.scheduler(retention)
    while at < now:
        rating = rng.choices(RATINGS, RATING_WEIGHTS)[0]
        before = vocab.card_of(card)
        after, _ = rules.review_card(before, vocab.FSRS_RATING[rating], review_datetime=at)
        reviews.append(
            {
                "rating": rating,
                "direction": Direction.FORWARD,
                "reviewed_at": at,
                "reviewed_on": at.date(),
                "duration_ms": rng.randint(1_500, 15_000),
                "state_before": card.state,
                "step_before": card.step,
                "stability_before": card.stability,
                "difficulty_before": card.fsrs_difficulty,
                "due_before": card.due_at,
                "last_reviewed_before": card.last_reviewed_at,
                "state_after": vocab.STATE_OF_FSRS[after.state],
                "step_after": after.step,
                "stability_after": after.stability,
                "difficulty_after": after.difficulty,
                "due_after": after.due,
            }
        )
        if rating == Rating.AGAIN and card.state == State.REVIEW:
            card.lapses += 1
        card.reps += 1
        card.state = vocab.STATE_OF_FSRS[after.state]
        card.step = after.step
        card.stability = after.stability
        card.fsrs_difficulty = after.difficulty
        card.due_at = after.due
        card.last_reviewed_at = at
        interval = (after.due - at).total_seconds()
        # Most reviews within hours of the due time, some days or weeks late.
        late = rng.uniform(0, 6 * 3600) if rng.random() < 0.7 else rng.uniform(0, 0.3 * interval)
        at = after.due + timedelta(seconds=late)
    card.id = None  # type: ignore[assignment]  # the database gives the real one
    return reviews


async def gather_limited(coroutines: list, limit: int = 4) -> None:
    """Run coroutines with at most `limit` at once (the pool has room for them)."""
    semaphore = asyncio.Semaphore(limit)

    async def run(coroutine: Any) -> None:
        async with semaphore:
            await coroutine

    await asyncio.gather(*(run(c) for c in coroutines))


async def seed(profile: dict[str, int], rng: random.Random) -> dict[str, Any]:
    """Create users, words and reviews; returns what the benchmark needs to know."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    now = vocab.utcnow().astimezone(UTC)

    # Users: production-cost hashes for those who sign in, one shared hash for the others.
    hashes = {name: await vocab.hash_password(PASSWORD) for name in LOGIN_USERS}
    shared_hash = await vocab.hash_password(PASSWORD)
    users = [User(email=email, password_hash=hashes[name]) for name, email in LOGIN_USERS.items()]
    users += [
        User(email=f"bench-other-{n:03d}@example.com", password_hash=shared_hash)
        for n in range(1, profile["others"] + 1)
    ]
    await User.bulk_create(users, batch_size=1000)
    ids = dict(
        await User.filter(email__startswith="bench-").values_list("email", "id")  # type: ignore
    )
    user_ids = {name: ids[email] for name, email in LOGIN_USERS.items()}
    other_ids = [ids[u.email] for u in users[len(LOGIN_USERS) :]]
    timings["users_s"] = time.perf_counter() - started

    # Words: (user, creation time) for everyone, inserted in creation order so that rows of
    # different users interleave on disk as they would in a real table.
    mark = time.perf_counter()
    span = timedelta(days=730).total_seconds()
    plan: list[tuple[datetime, int]] = []
    for name in ("main", "big", "small", "writer"):
        plan += [
            (now - timedelta(seconds=rng.uniform(3600, span)), user_ids[name])
            for _ in range(profile[name])
        ]
    plan += [
        (now - timedelta(seconds=rng.uniform(3600, span)), other_ids[n % len(other_ids)])
        for n in range(profile["others_words"])
    ]
    plan.sort()
    taken: dict[int, set] = {uid: set() for uid in ids.values()}
    rows = [word_row(rng, uid, created, taken[uid]) for created, uid in plan]
    timings["words_generate_s"] = time.perf_counter() - mark

    # The main user's oldest words are reviewed until the target number of reviews is reached;
    # the newest stay new, as with a learner who has not studied the latest additions yet.
    mark = time.perf_counter()
    main_words: dict[tuple[str, str], tuple[Card, list[dict[str, Any]]]] = {}
    words: list[Word] = []
    review_count = 0
    for row in rows:
        word = Word(**row)
        if row["user_id"] == user_ids["main"] and review_count < profile["reviews"]:
            card = Card(direction=Direction.FORWARD, due_at=word.created_at, active=True)
            history = replay_reviews(rng, card, 0.9, now)
            main_words[(word.word_key, word.language)] = (card, history)
            review_count += len(history)
        words.append(word)
    timings["reviews_replay_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    batch = 5_000
    await gather_limited(
        [
            Word.bulk_create(words[i : i + batch], batch_size=batch)
            for i in range(0, len(words), batch)
        ]
    )
    # Bulk inserts bypass the API, so set each user's word count (the API keeps it in step).
    per_user = Counter(word.user_id for word in words)
    await gather_limited([User.filter(id=uid).update(word_count=n) for uid, n in per_user.items()])
    # Every word's forward card: new and due since the word was added, or as replayed.
    stored = await Word.all().values_list("id", "user_id", "created_at", "word_key", "language")
    cards = []
    for word_id, user_id, created_at, key, language in stored:
        replayed = main_words.get((key, language)) if user_id == user_ids["main"] else None
        card = replayed[0] if replayed else Card(direction=Direction.FORWARD, due_at=created_at)
        card.id = None  # type: ignore[assignment]  # the database gives the real one
        card.word_id, card.user_id, card.active = word_id, user_id, True
        cards.append(card)
    await gather_limited(
        [
            Card.bulk_create(cards[i : i + batch], batch_size=batch)
            for i in range(0, len(cards), batch)
        ]
    )
    timings["words_insert_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    keys = await Card.filter(user_id=user_ids["main"]).values_list(
        "id", "word_id", "word__word_key", "word__language"
    )
    card_ids = {(key, language): (card_id, word_id) for card_id, word_id, key, language in keys}
    review_rows = [
        {
            "card_id": card_ids[key][0],
            "word_id": card_ids[key][1],
            "user_id": user_ids["main"],
            **review,
        }
        for key, (_, history) in main_words.items()
        for review in history
    ]
    review_rows.sort(key=lambda r: r["reviewed_at"])
    reviews = [Review(**r) for r in review_rows]
    await gather_limited(
        [
            Review.bulk_create(reviews[i : i + batch], batch_size=batch)
            for i in range(0, len(reviews), batch)
        ]
    )
    timings["reviews_insert_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    await connections.get("default").execute_script("VACUUM ANALYZE")
    timings["vacuum_analyze_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started

    counts = {
        "users": await User.all().count(),
        "words": await Word.all().count(),
        "cards": await Card.all().count(),
        "reviews": await Review.all().count(),
    }
    for name, uid in user_ids.items():
        counts[f"words_{name}"] = await Word.filter(user_id=uid).count()
    counts["due_main"] = await vocab.due_cards(user_ids["main"], now).count()
    counts["reviewed_main"] = len(main_words)
    return {
        "password": PASSWORD,
        "users": {name: {"id": uid, "email": LOGIN_USERS[name]} for name, uid in user_ids.items()},
        "search_term": SEARCH_TERM,
        "counts": counts,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--seed", type=int, default=20261126, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="where to write the summary")
    args = parser.parse_args()
    await Tortoise.init(config=vocab.TORTOISE_ORM)
    try:
        result = await seed(PROFILES[args.profile], random.Random(args.seed))
    finally:
        await Tortoise.close_connections()
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result["counts"]), json.dumps(result["timings"]))


if __name__ == "__main__":
    asyncio.run(main())
