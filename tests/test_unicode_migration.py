"""The unicode_text migration on words stored under the old rules, on the suite's database
engine (a database of its own: SQLite in a temporary folder, or a fresh PostgreSQL database next
to TEST_DATABASE_URL's, dropped afterwards).

A first process migrates up to the migration before unicode_text and stores words as the old
code did (case-folded keys, text as sent); then `python vocab.py migrate` applies the rest, the
way a deployment does. The test reads the rows back and compares them with vocab's own rules.
"""

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import asyncpg
import pytest

import vocab

ROOT = Path(__file__).resolve().parent.parent
TEST_URL = os.environ.get("TEST_DATABASE_URL") or "sqlite://:memory:"
DIALECT = "sqlite" if TEST_URL.startswith("sqlite") else "postgres"
NFD_CAFE = unicodedata.normalize("NFD", "Café")

#: Words as the old code stored them: (word, definition, example, language, tags column).
OLD_WORDS = [
    (NFD_CAFE, "a coffee house\r\nwhere one sits", None, "fr", " lieu "),
    ("café", "coffee", "Un café, s'il vous plaît.", "fr", " boisson "),
    ("hello\u200b", "a greeting", "\u200b", "", " "),
    ("hello", "a greeting again", None, "", " "),
    ("Maße", "measurements", None, "de", " a\x1fb ÜBUNG "),
    ("x\u202ey", "a word with a right-to-left override inside", None, "", " "),
]
#: The old duplicate key: case-folded, not normalised.
OLD_KEYS = [word.casefold() for word, *_ in OLD_WORDS]

SETUP = """
import asyncio, json, sys
from pathlib import Path
from aerich import Command
from tortoise import Tortoise, connections, timezone
import vocab

async def main(location, words):
    await Tortoise.init(config=vocab.TORTOISE_ORM)
    command = Command(tortoise_config=vocab.TORTOISE_ORM, app="models", location=location)
    await command.init()
    await command.upgrade(run_in_transaction=True)
    db = connections.get("default")
    mark = "?" if vocab.DIALECT == "sqlite" else "$"
    def params(n):
        return ", ".join("?" if mark == "?" else f"${i}" for i in range(1, n + 1))
    await db.execute_query(
        f'INSERT INTO "users" ("email", "password_hash", "desired_retention", "created_at", '
        f'"word_count") VALUES ({params(5)})',
        ["old@example.com", "x", 0.9, timezone.now(), len(words)],
    )
    for word, key, definition, example, language, tags in words:
        await db.execute_query(
            f'INSERT INTO "words" ("user_id", "word", "word_key", "definition", "example", '
            f'"language", "difficulty", "tags", "created_at", "updated_at") '
            f'VALUES ({params(10)})',
            [1, word, key, definition, example, language, 3, tags, timezone.now(),
             timezone.now()],
        )
    await Tortoise.close_connections()

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


@pytest.fixture
def database_url(tmp_path):
    """A database of the suite's engine that nothing else uses."""
    if DIALECT == "sqlite":
        yield f"sqlite://{tmp_path}/old.sqlite3"
        return
    name = f"vocab_migration_{secrets.token_hex(4)}"
    server = TEST_URL.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(f"{server}/postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_hex(32),
        "ARGON2_MEMORY_KIB": "8",
        "ARGON2_TIME_COST": "1",
        "LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


async def stored_rows(url: str) -> list[dict]:
    columns = "id, word, word_key, word_fold, definition, definition_fold, example, tags, tags_key"
    if DIALECT == "sqlite":
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(f"SELECT {columns} FROM words ORDER BY id")]
    connection = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await connection.fetch(f"SELECT {columns} FROM words ORDER BY id")]
    finally:
        await connection.close()


async def test_migration_normalises_old_words_and_keeps_the_ones_that_now_collide(
    database_url, tmp_path
):
    before = tmp_path / "before" / "models"
    before.mkdir(parents=True)
    for migration in sorted((ROOT / "migrations" / DIALECT / "models").glob("[0-9]*_*.py")):
        if "unicode_text" in migration.name:
            break
        shutil.copy(migration, before)
    old = [
        [word, key, definition, example, language, tags]
        for (word, definition, example, language, tags), key in zip(
            OLD_WORDS, OLD_KEYS, strict=True
        )
    ]
    run(["-c", SETUP, str(before.parent), json.dumps(old)], database_url)

    done = run(["vocab.py", "migrate"], database_url)

    assert "unicode_text" in done.stdout
    log = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    warnings = [entry["message"] for entry in log if entry["level"] == "WARNING"]
    assert warnings == [
        "user 1: words 1, 2 are now one word, 'Café' (language 'fr'); all are kept, the later "
        "ones with a disambiguated key",
        "user 1: words 3, 4 are now one word, 'hello' (language None); all are kept, the later "
        "ones with a disambiguated key",
    ]
    rows = await stored_rows(database_url)
    assert [(r["word"], r["word_key"]) for r in rows] == [
        ("Café", "café"),
        ("café", "café\x1f2"),
        ("hello", "hello"),
        ("hello", "hello\x1f4"),
        ("Maße", "maße"),
        ("x\u202ey", "x\u202ey"),  # kept as it was: the API would refuse it now
    ]
    assert rows[0]["definition"] == "a coffee house\nwhere one sits"
    assert rows[2]["example"] is None  # only an invisible character
    assert [vocab.tags_from_column(r["tags"]) for r in rows] == [
        ["lieu"],
        ["boisson"],
        [],
        [],
        ["a", "b", "ÜBUNG"],
        [],
    ]
    for row in rows:  # the search keys are exactly what vocab computes for new words
        assert row["word_fold"] == vocab.search_key(row["word"])
        assert row["definition_fold"] == vocab.search_key(row["definition"])
        assert row["tags_key"] == vocab.tags_key_to_column(vocab.tags_from_column(row["tags"]))
    assert rows[4]["word_fold"] == "masse"
    assert rows[4]["tags_key"] == " a b übung "

    again = run(["vocab.py", "migrate"], database_url)
    assert "nothing (up to date)" in again.stdout
