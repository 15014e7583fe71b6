"""The cards migration, on a database made by the migrations before it: every word's schedule
becomes its forward card and every review that card's, with nothing lost or changed.

The database is built by applying the migrations that precede the cards migration (copied to a
scratch folder), filled with users, words in every state and their reviews through plain SQL
in that older schema, then upgraded with the rest. Aerich runs in a child process (it keeps
class-level state, and the app under test holds Tortoise's global context). On SQLite a
temporary file; on PostgreSQL a scratch database next to TEST_DATABASE_URL's, dropped after.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent
DIALECT = "postgres" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
UPGRADE = """
import asyncio, json, sys
from aerich import Command
from tortoise import Tortoise
import vocab

async def upgrade(location):
    command = Command(tortoise_config=vocab.TORTOISE_ORM, app="models", location=location)
    await command.init()
    try:
        print(json.dumps(await command.upgrade(run_in_transaction=True)))
    finally:
        await Tortoise.close_connections()

asyncio.run(upgrade(sys.argv[1]))
"""
T0 = datetime(2024, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)

USER_COLUMNS = ("id", "email", "password_hash", "desired_retention", "created_at", "word_count")
WORD_COLUMNS = (
    "id", "user_id", "word", "word_key", "definition", "example", "language", "difficulty",
    "tags", "created_at", "updated_at",
)  # fmt: skip
SCHEDULE_COLUMNS = (
    "state", "due_at", "stability", "fsrs_difficulty", "step", "reps", "lapses",
    "last_reviewed_at",
)  # fmt: skip
REVIEW_COLUMNS = (
    "id", "word_id", "user_id", "rating", "reviewed_at", "reviewed_on", "duration_ms",
    "state_before", "step_before", "stability_before", "difficulty_before", "due_before",
    "last_reviewed_before", "state_after", "step_after", "stability_after", "difficulty_after",
    "due_after",
)  # fmt: skip


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


USERS = [
    (1, "ada@example.com", "$argon2id$x", 0.9, at(days=-30), 3),
    (2, "bob@example.com", "$argon2id$y", 0.85, at(days=-20), 2),
]
#: Words with their schedules: new, learning, review (with a lapse), relearning, review.
WORDS = [
    (10, 1, "Haus", "haus", "house", "Das Haus.", "de", 2, " noun a1 ", at(days=-29), at(days=-1)),
    (11, 1, "run", "run", "to move fast", None, "en", 3, " ", at(days=-28), at(days=-28)),
    (12, 1, "saudade", "saudade", "longing", None, "", 5, " ", at(days=-27), at(days=-2)),
    (13, 2, "Katze", "katze", "cat", None, "de", 1, " noun ", at(days=-19), at(days=-3)),
    (14, 2, "chat", "chat", "cat", "Le chat.", "fr", 4, " ", at(days=-18), at(days=-4)),
]
SCHEDULES = {
    10: ("new", at(days=-29), None, None, None, 0, 0, None),
    11: ("learning", at(minutes=10), 2.3065, 2.118103970459016, 1, 1, 0, at()),
    12: ("review", at(days=12), 15.734201, 5.98223, None, 4, 1, at(days=-2)),
    13: ("relearning", at(minutes=-50), 1.0137, 7.8, 0, 3, 1, at(hours=-1)),
    14: ("review", at(days=3), 3.173, 5.28, None, 2, 0, at(days=-4)),
}
REVIEWS = [
    # id, word, user, rating, at, on, ms; before: state, step, S, D, due, last; after: ...
    (100, 11, 1, "good", at(), at().date(), 4200,
     "new", None, None, None, at(days=-28), None,
     "learning", 1, 2.3065, 2.118103970459016, at(minutes=10)),
    (101, 12, 1, "easy", at(days=-20), date(2024, 2, 19), None,
     "new", None, None, None, at(days=-27), None,
     "review", None, 8.2956, 1.0, at(days=-12)),
    (102, 12, 1, "again", at(days=-10), date(2024, 2, 29), 9000,
     "review", None, 8.2956, 1.0, at(days=-12), at(days=-20),
     "relearning", 0, 1.9, 4.5, at(days=-10, minutes=10)),
    (103, 12, 1, "good", at(days=-10, minutes=12), date(2024, 2, 29), 3000,
     "relearning", 0, 1.9, 4.5, at(days=-10, minutes=10), at(days=-10),
     "review", None, 2.5, 4.4, at(days=-8)),
    (104, 12, 1, "good", at(days=-2), date(2024, 3, 8), 2500,
     "review", None, 2.5, 4.4, at(days=-8), at(days=-10, minutes=12),
     "review", None, 15.734201, 5.98223, at(days=12)),
    (105, 13, 2, "again", at(hours=-1), at(hours=-1).date(), 1,
     "review", None, 4.0, 7.1, at(hours=-2), at(days=-5),
     "relearning", 0, 1.0137, 7.8, at(minutes=-50)),
    (106, 14, 2, "good", at(days=-4), date(2024, 3, 6), 86_400_000,
     "learning", 0, 2.3065, 5.28, at(days=-4), at(days=-5),
     "review", None, 3.173, 5.28, at(days=3)),
]  # fmt: skip


def split_migrations(dialect: str) -> tuple[list[Path], list[Path]]:
    """The dialect's migration files before the cards migration, and the cards migration
    (later ones are other migrations' tests)."""
    files = sorted(
        (ROOT / "migrations" / dialect / "models").glob("[0-9]*_*.py"),
        key=lambda path: int(path.name.split("_", 1)[0]),
    )
    cards = next(i for i, path in enumerate(files) if path.stem.endswith("_cards"))
    return files[:cards], files[cards : cards + 1]


def upgrade(location: Path, url: str) -> list[str]:
    """Apply the migrations in `location` to the database at `url` (in a child process)."""
    env = {**os.environ, "DATABASE_URL": url, "MIGRATE_ON_START": "false"}
    child = subprocess.run(
        [sys.executable, "-c", UPGRADE, str(location)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


class Database:
    """Plain SQL on the scratch database, in the dialect's placeholders and value types."""

    def __init__(self, url: str, path: Path | None = None) -> None:
        self.url = url
        self.path = path

    def value(self, value: Any) -> Any:
        """A value as this driver takes and gives it (SQLite keeps timestamps as text)."""
        if self.path is not None and isinstance(value, datetime):
            return str(value)
        if self.path is not None and isinstance(value, date):
            return value.isoformat()
        return value

    def flag(self, value: bool) -> Any:
        return int(value) if self.path is not None else value

    async def run(self, sql: str, rows: Sequence[Sequence[Any]] = ((),)) -> list[tuple]:
        """Run a statement once per parameter row; returns the rows of the last run."""
        if self.path is not None:
            with sqlite3.connect(self.path) as connection:
                result: list[tuple] = []
                for row in rows:
                    result = connection.execute(sql, [self.value(v) for v in row]).fetchall()
                return result
        connection = await asyncpg.connect(self.url)
        try:
            numbered = to_numbered(sql)
            result = []
            for row in rows:
                result = [tuple(r) for r in await connection.fetch(numbered, *row)]
            return result
        finally:
            await connection.close()

    async def columns(self, table: str) -> set[str]:
        """The names of a table's columns."""
        if self.path is not None:
            return {row[1] for row in await self.run(f'PRAGMA table_info("{table}")')}
        sql = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        return {row[0] for row in await self.run(sql, [(table,)])}

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        await self.run(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
        if self.path is None and "id" in columns:  # as if the ids had come from the sequence
            await self.run(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(\"id\")) "
                f'FROM "{table}"'
            )

    async def select(self, table: str, columns: Sequence[str], order: str) -> list[tuple]:
        names = ", ".join(f'"{c}"' for c in columns)
        return await self.run(f'SELECT {names} FROM "{table}" ORDER BY {order}')


def to_numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`, ..."""
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty scratch database of the suite's dialect."""
    if DIALECT == "sqlite":
        path = tmp_path / "migrate.sqlite3"
        yield Database(f"sqlite://{path}", path)
        return
    base = urlsplit(os.environ["TEST_DATABASE_URL"])
    name = f"{base.path.lstrip('/')}_cards_migration"
    admin = await asyncpg.connect(os.environ["TEST_DATABASE_URL"])
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield Database(urlunsplit(base._replace(path=f"/{name}")))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def as_stored(db: Database, rows: Sequence[Sequence[Any]]) -> list[tuple]:
    """Rows as the driver reads them back."""
    return [tuple(db.value(v) for v in row) for row in rows]


async def test_migrate_to_cards_moves_every_schedule_and_review_to_the_forward_card(
    database: Database, tmp_path: Path
) -> None:
    db = database
    before, rest = split_migrations(DIALECT)
    location = tmp_path / DIALECT
    (location / "models").mkdir(parents=True)
    for path in before:
        shutil.copy(path, location / "models")
    assert upgrade(location, db.url) == [path.name for path in before]
    await db.insert("users", USER_COLUMNS, USERS)
    words = [word + SCHEDULES[word[0]] for word in WORDS]
    await db.insert("words", WORD_COLUMNS + SCHEDULE_COLUMNS, words)
    await db.insert("reviews", REVIEW_COLUMNS, REVIEWS)
    stored_users = await db.select("users", USER_COLUMNS, '"id"')
    stored_words = await db.select("words", WORD_COLUMNS, '"id"')
    stored_schedules = await db.select("words", ("id", *SCHEDULE_COLUMNS), '"id"')
    stored_reviews = await db.select("reviews", REVIEW_COLUMNS, '"id"')
    assert stored_words == as_stored(db, WORDS)  # the older schema took every row as given
    assert len(stored_reviews) == len(REVIEWS)

    for path in rest:
        shutil.copy(path, location / "models")
    assert upgrade(location, db.url) == [path.name for path in rest]

    # Words and users keep every column, and gain the new settings at their defaults.
    assert await db.select("words", (*WORD_COLUMNS, "reverse", "suspended"), '"id"') == [
        (*word, db.flag(False), db.flag(False)) for word in stored_words
    ]
    assert await db.select(
        "users", (*USER_COLUMNS, "reverse_cards", "fsrs_parameters"), '"id"'
    ) == [(*user, db.flag(False), None) for user in stored_users]
    # One forward card per word, studied, holding the word's schedule exactly.
    cards = await db.select(
        "cards", ("word_id", "user_id", "direction", "active", *SCHEDULE_COLUMNS), '"word_id"'
    )
    owners = {word[0]: word[1] for word in stored_words}
    assert cards == [
        (word_id, owners[word_id], "forward", db.flag(True), *schedule)
        for word_id, *schedule in stored_schedules
    ]
    # Every review, unchanged, now belongs to its word's forward card.
    card_ids = dict(await db.select("cards", ("word_id", "id"), '"id"'))
    assert await db.select("reviews", (*REVIEW_COLUMNS, "direction", "card_id"), '"id"') == [
        (*review, "forward", card_ids[review[1]]) for review in stored_reviews
    ]
    # New rows take ids after the old ones, and the word's schedule columns are gone.
    await db.insert(
        "reviews",
        [column for column in REVIEW_COLUMNS if column != "id"] + ["direction", "card_id"],
        [(*REVIEWS[0][1:], "forward", card_ids[11])],
    )
    assert (await db.run('SELECT MAX("id") FROM "reviews"'))[0][0] == 107
    assert await db.columns("words") == {*WORD_COLUMNS, "reverse", "suspended"}
