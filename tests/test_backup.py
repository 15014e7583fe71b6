"""`python vocab.py backup FILE`: a SQLite database copied with SQLite's online backup API while
the server keeps running, and restored by putting the copy in the database's place.

The app runs as real uvicorn processes on database files (the suite's own app is in memory);
PostgreSQL is backed up with pg_dump, which `.ci/containers.sh` proves through compose.
"""

import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, Server, uvicorn_process

pytestmark = pytest.mark.process

PASSWORD = "correct horse battery staple"
SECRET_KEY = "backup-" + "Qx7p" * 16


def vocab_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """`python vocab.py ARGS...` with DATABASE_URL, as an operator would run it."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY}
    return subprocess.run(
        [sys.executable, "vocab.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def without_retrievability(page: dict[str, Any]) -> dict[str, Any]:
    """A page of words without the recall probabilities, which move with the clock."""
    for word in page["items"]:
        for schedule in (word["schedule"], word["reverse_schedule"]):
            if schedule is not None:
                schedule.pop("retrievability")
    return page


def serve(tmp_path: Path, database: Path) -> AbstractContextManager[Server]:
    """uvicorn on this SQLite file, with the signing key that the restored server uses too."""
    return uvicorn_process(tmp_path, DATABASE_URL=f"sqlite://{database}", SECRET_KEY=SECRET_KEY)


def table_rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(query).fetchall()


async def test_backup_while_serving_restores_words_reviews_and_sign_ins(tmp_path):
    live, backup = tmp_path / "live.sqlite3", tmp_path / "backups" / "vocab-backup.sqlite3"
    backup.parent.mkdir()
    with serve(tmp_path, live) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            r = await http.post(
                "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
            )
            assert r.status_code == 201, r.text
            r = await http.post(
                "/auth/token", data={"username": "ada@example.com", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            words = []
            for word, definition in [("Fernweh", "longing for far-off places"), ("hygge", "cosy")]:
                r = await http.post(
                    "/words", headers=headers, json={"word": word, "definition": definition}
                )
                assert r.status_code == 201, r.text
                words.append(r.json())
            r = await http.post(
                f"/words/{words[0]['id']}/reviews", headers=headers, json={"rating": "good"}
            )
            assert r.status_code == 201, r.text
            review = r.json()["review"]
            r = await http.get("/words", headers=headers, params={"sort": "word"})
            assert r.status_code == 200, r.text
            before = without_retrievability(r.json())

            done = vocab_cli("backup", str(backup), database_url=f"sqlite://{live}")

            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == f"backed up {live} to {backup}"
            # Written after the backup: not in it.
            r = await http.post(
                "/words", headers=headers, json={"word": "later", "definition": "after it"}
            )
            assert r.status_code == 201, r.text

    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name]  # no draft left
    assert table_rows(backup, "PRAGMA integrity_check") == [("ok",)]
    assert table_rows(backup, "SELECT word FROM words ORDER BY id") == [("Fernweh",), ("hygge",)]

    # Restore: the copy becomes the database of a new server (here in a fresh place, as after
    # losing the old disk; in place, stop the server and remove the -wal and -shm files first).
    restored = tmp_path / "restored" / "vocab.sqlite3"
    restored.parent.mkdir()
    restored.write_bytes(backup.read_bytes())
    with serve(tmp_path, restored) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            # The access token issued before the backup still works: same key, same user.
            r = await http.get("/words", headers=headers, params={"sort": "word"})
            assert r.status_code == 200, r.text
            assert without_retrievability(r.json()) == before
            assert [w["word"] for w in before["items"]] == ["Fernweh", "hygge"]
            r = await http.get(f"/words/{words[0]['id']}/reviews", headers=headers)
            assert r.status_code == 200, r.text
            assert r.json() == {"items": [review], "total": 1, "limit": 50, "offset": 0}
            r = await http.post(
                "/auth/token", data={"username": "ada@example.com", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                "/auth/token", data={"username": "ada@example.com", "password": "not it at all"}
            )
            assert r.status_code == 401, r.text
    # Nothing applied twice: the restored migration history is complete.
    assert table_rows(restored, "SELECT version FROM aerich") == table_rows(
        live, "SELECT version FROM aerich"
    )


def test_backup_to_existing_file_is_refused_and_leaves_it_alone(tmp_path):
    live = tmp_path / "live.sqlite3"
    assert vocab_cli("migrate", database_url=f"sqlite://{live}").returncode == 0
    existing = tmp_path / "vocab-backup.sqlite3"
    existing.write_text("an older backup")

    done = vocab_cli("backup", str(existing), database_url=f"sqlite://{live}")

    assert done.returncode == 1
    assert done.stderr.strip() == f"{existing} already exists; choose a new file name"
    assert existing.read_text() == "an older backup"


def test_backup_of_missing_database_is_refused_and_creates_nothing(tmp_path):
    done = vocab_cli(
        "backup", str(tmp_path / "copy.sqlite3"), database_url=f"sqlite://{tmp_path}/none.db"
    )

    assert done.returncode == 1
    assert done.stderr.strip() == f"no SQLite database at {tmp_path}/none.db"
    assert list(tmp_path.iterdir()) == []


def test_backup_of_postgres_database_points_to_pg_dump(tmp_path):
    # Refused before any connection: nothing needs to listen at this address.
    done = vocab_cli(
        "backup", str(tmp_path / "copy.sqlite3"), database_url="postgres://u:p@127.0.0.1:9/db"
    )

    assert done.returncode == 1
    assert "pg_dump" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["backup"], ["backup", "a", "b"], ["restore", "x"], []])
def test_command_line_with_unknown_arguments_prints_usage(tmp_path, args):
    done = vocab_cli(*args, database_url=f"sqlite://{tmp_path}/vocab.sqlite3")

    assert done.returncode == 1
    assert done.stderr.strip() == "usage: python vocab.py migrate | python vocab.py backup FILE"
