"""Time importing a large Anki package through POST /imports while /health is sampled.

    .venv/bin/python bench/anki_import.py [--notes 20000] [--reviews 200000]
        [--pg-url postgres://postgres@127.0.0.1:5432] [--db vocab_bench_anki]

Builds a modern package (collection.anki21b, zstd, with a dummy collection.anki2 as Anki
writes it) of `--notes` notes, each with a forward card and every fifth with a reverse card,
and `--reviews` review log rows spread over the cards (cards.data without FSRS state, so
every reviewed card's memory state is rebuilt from its log); drops and recreates the
database, starts vocab under uvicorn (one worker) on it, registers a user, posts the package,
polls the job until it ends, and meanwhile asks GET /health every 20 ms. Prints the import's
wall time (POST to done), the job's own time (created_at to finished_at), and /health's
latency percentiles during the import. Exits non-zero when the job fails or /health ever
answers anything but 200.
"""

import argparse
import asyncio
import io
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import zstandard

ROOT = Path(__file__).resolve().parent.parent
CRT = 1_791_172_800  # the collection's first day, 04:00 UTC
SCHEMA = """
CREATE TABLE col (id integer PRIMARY KEY, crt integer, mod integer, scm integer, ver integer,
  dty integer, usn integer, ls integer, conf text, models text, decks text, dconf text, tags text);
CREATE TABLE notes (id integer PRIMARY KEY, guid text, mid integer, mod integer, usn integer,
  tags text, flds text, sfld integer, csum integer, flags integer, data text);
CREATE TABLE cards (id integer PRIMARY KEY, nid integer, did integer, ord integer, mod integer,
  usn integer, type integer, queue integer, due integer, ivl integer, factor integer,
  reps integer, lapses integer, left integer, odue integer, odid integer, flags integer,
  data text);
CREATE TABLE revlog (id integer PRIMARY KEY, cid integer, usn integer, ease integer,
  ivl integer, lastIvl integer, factor integer, time integer, type integer);
CREATE TABLE notetypes (id integer PRIMARY KEY, name text, mtime_secs integer, usn integer,
  config blob);
CREATE TABLE fields (ntid integer, ord integer, name text, config blob,
  PRIMARY KEY (ntid, ord)) without rowid;
CREATE TABLE decks (id integer PRIMARY KEY, name text, mtime_secs integer, usn integer,
  common blob, kind blob);
"""
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "dor", "an", "is", "que", "bra"]


def build_package(notes: int, reviews: int, folder: Path) -> bytes:
    """A modern .apkg with these many notes and review log rows."""
    rng = random.Random(14)
    path = folder / "collection.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("INSERT INTO col VALUES (1, ?, 0, 0, 18, 0, 0, 0, '', '', '', '', '')", (CRT,))
    db.execute("INSERT INTO notetypes VALUES (1, 'Basic (and reversed card)', 0, 0, x'1a00')")
    db.executemany("INSERT INTO fields VALUES (1, ?, ?, x'')", [(0, "Front"), (1, "Back")])
    db.execute("INSERT INTO decks VALUES (1, 'Bench\x1fLarge', 0, 0, x'', x'')")
    note_rows, card_rows = [], []
    for n in range(notes):
        nid = 1_700_000_000_000 + n * 10
        word = "".join(rng.choice(SYLLABLES) for _ in range(3)) + str(n)
        meaning = " ".join("".join(rng.choice(SYLLABLES) for _ in range(2)) for _ in range(6))
        note_rows.append((nid, str(nid), 1, " bench ", f"{word}\x1f<b>{meaning}</b>"))
        for ord_ in (0, 1) if n % 5 == 0 else (0,):
            card_rows.append((nid + ord_, nid, ord_))
    db.executemany("INSERT INTO notes VALUES (?, ?, ?, 0, 0, ?, ?, '', 0, 0, '')", note_rows)
    per_card = max(reviews // len(card_rows), 1)
    revlog, cards = [], []
    at = (CRT + 5 * 3600) * 1000
    for index, (card_id, nid, ord_) in enumerate(card_rows):
        count = min(per_card + (1 if index < reviews - per_card * len(card_rows) else 0), reviews)
        ivl, day = 0, 0
        for r in range(count):
            ease = rng.choices([1, 2, 3, 4], [10, 15, 65, 10])[0]
            ivl = 1 if ease == 1 else max(1, round(max(ivl, 1) * rng.uniform(1.5, 2.5)))
            revlog.append(
                (at + index * 1000 + r * 7, card_id, ease, ivl, 2500, 4000, 1 if r else 0)
            )
            day += ivl
        cards.append(
            (card_id, nid, ord_, 2 if count else 0, 2 if count else 0, day if count else index,
             ivl if count else 0, 2500 if count else 0, count)
        )  # fmt: skip
    db.executemany(
        "INSERT INTO cards VALUES (?, ?, 1, ?, 0, 0, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, '{}')",
        cards,
    )
    db.executemany("INSERT INTO revlog VALUES (?, ?, 0, ?, ?, 0, ?, ?, ?)", revlog)
    db.commit()
    db.close()
    dummy = folder / "dummy.sqlite3"
    legacy = sqlite3.connect(dummy)
    legacy.executescript(SCHEMA)
    legacy.execute("INSERT INTO col VALUES (1, 0, 0, 0, 11, 0, 0, 0, '', '{}', '{}', '', '')")
    legacy.commit()
    legacy.close()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("meta", b"\x08\x03")
        packed = zstandard.ZstdCompressor().compress(path.read_bytes())
        archive.writestr("collection.anki21b", packed)
        archive.writestr("collection.anki2", dummy.read_bytes())
        archive.writestr("media", zstandard.ZstdCompressor().compress(b""))
    return buffer.getvalue()


async def recreate_database(pg_url: str, name: str) -> None:
    connection = await asyncpg.connect(f"{pg_url}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def sample_health(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    """GET /health every 20 ms until `stop`; the latencies in ms."""
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        r = await client.get("/health")
        latencies.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            sys.exit(f"/health answered {r.status_code}: {r.text}")
        await asyncio.sleep(0.02)
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(url: str, package: bytes) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        account = {"email": "bench@example.com", "password": "a long bench passphrase"}
        assert (await client.post("/auth/register", json=account)).status_code == 201
        r = await client.post(
            "/auth/token", data={"username": account["email"], "password": account["password"]}
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        stop = asyncio.Event()
        before = asyncio.create_task(sample_health(client, stop))
        await asyncio.sleep(2)
        stop.set()
        idle = await before
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_health(client, stop))
        started = time.perf_counter()
        upload = {"file": ("bench.apkg", package, "application/octet-stream")}
        r = await client.post("/imports", headers=headers, files=upload)
        posted = time.perf_counter() - started
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        while True:
            job = (await client.get(f"/imports/{job_id}", headers=headers)).json()
            if job["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.25)
        wall = time.perf_counter() - started
        stop.set()
        latencies = await sampler
    if job["status"] != "done":
        sys.exit(f"the import failed: {job['error']}")
    job_seconds = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
    ).total_seconds()
    print(f"package: {len(package) / 1e6:.1f} MB")
    print(f"result: {job['result']['created']} words, {job['result']['reviews_imported']} reviews, "
          f"{job['result']['skipped']} skipped, {len(job['result']['errors'])} errors")  # fmt: skip
    print(f"POST /imports answered 202 in {posted:.2f} s (upload included)")
    print(f"import: {wall:.1f} s from POST to done (job: {job_seconds:.1f} s)")
    for name, values in (("idle", idle), ("during the import", latencies)):
        print(
            f"/health {name}: {len(values)} requests, median {statistics.median(values):.1f} ms, "
            f"p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--reviews", type=int, default=200_000)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db", default="vocab_bench_anki")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        package = build_package(options.notes, options.reviews, Path(folder))
        took = time.perf_counter() - started
        print(f"built {options.notes} notes, {options.reviews} reviews in {took:.1f} s")
        asyncio.run(recreate_database(options.pg_url, options.db))
        env = {
            **os.environ,
            "DATABASE_URL": f"{options.pg_url}/{options.db}",
            "SECRET_KEY": "bench-secret-key-0123456789abcdef-not-for-production-use",
            "RATE_LIMIT_REGISTER": "off",
            "LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "uvicorn", "vocab:app", "--port", str(options.port)]
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{options.port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            asyncio.run(measure(url, package))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
