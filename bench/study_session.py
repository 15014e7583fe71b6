"""A learner's session, timed: import a 1,000-word Anki export, study through /study and
reviews, and watch /stats change, against a real `uvicorn vocab:app` process.

    .venv/bin/python bench/study_session.py [--pg-url postgres://postgres@127.0.0.1:5432]
    .venv/bin/python bench/study_session.py --sqlite

Targets (issue "Learning"): the import in under 2 s, every other request under 300 ms.
Prints a table of latencies per request kind and exits 1 when a target is missed or a
request fails. PostgreSQL: a database `vocab_session` is created and dropped again.
"""

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
IMPORT_LIMIT_S = 2.0
REQUEST_LIMIT_S = 0.3
RATINGS = ("good", "again", "hard", "good", "easy")


def anki_export(words: int) -> bytes:
    """An Anki "Notes in Plain Text" export with tags, as Anki writes it."""
    lines = ["#separator:tab", "#html:true", "#tags column:3"]
    for n in range(words):
        definition = f"meaning number {n}, with <b>bold</b> text &amp; an example"
        lines.append(f"wort{n:04d}\t{definition}\tdeck::german noun")
    return ("\n".join(lines) + "\n").encode()


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(pg_url: str, sql: str) -> None:
    """Run one statement on the server's maintenance database."""
    subprocess.run(["psql", f"{pg_url}/postgres", "-qc", sql], check=True)


def session(base: str, timings: dict[str, list[float]]) -> list[str]:
    """Play the learner; returns what went wrong."""
    problems: list[str] = []

    def call(kind: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        started = time.perf_counter()
        response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        timings[kind].append(time.perf_counter() - started)
        if response.status_code >= 400:
            problems.append(f"{kind}: {response.status_code} {response.text[:200]}")
        return response

    with httpx.Client(base_url=base, timeout=30) as client:
        email, password = "learner@example.com", secrets.token_urlsafe(12)
        call("register", "POST", "/auth/register", json={"email": email, "password": password})
        token = call("login", "POST", "/auth/token", data={"username": email, "password": password})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        before = call("GET /stats", "GET", "/stats").json()
        files = {"file": ("Deck.txt", anki_export(1000), "text/plain")}
        result = call("POST /words/import (1,000 words)", "POST", "/words/import", files=files)
        if result.json().get("created") != 1000:
            problems.append(f"import: {result.text[:200]}")
        for n in range(100):
            queue = call("GET /study", "GET", "/study", params={"limit": 1}).json()
            word = queue["items"][0]
            rating = RATINGS[n % len(RATINGS)]
            call(
                "POST /words/{id}/reviews",
                "POST",
                f"/words/{word['id']}/reviews",
                json={"rating": rating, "duration_ms": 3000},
            )
            if n % 10 == 0:
                call("GET /words?q=", "GET", "/words", params={"q": f"wort{n:02d}"})
                call("GET /words", "GET", "/words")
        after = call("GET /stats", "GET", "/stats").json()
        call("GET /words/export", "GET", "/words/export")
        if (before["words"], after["words"], after["reviews_today"]) != (0, 1000, 100):
            problems.append(f"stats did not follow the session: {before} -> {after}")
        print(f"stats before: {before}\nstats after:  {after}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--sqlite", action="store_true", help="SQLite in a temporary folder")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="vocab-session-")
    if args.sqlite:
        database_url = f"sqlite://{scratch}/vocab.sqlite3"
    else:
        psql(args.pg_url, "DROP DATABASE IF EXISTS vocab_session WITH (FORCE)")
        psql(args.pg_url, "CREATE DATABASE vocab_session")
        database_url = f"{args.pg_url}/vocab_session"
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "production",  # production settings: argon2id at OWASP's cost
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "vocab:app", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=env,
    )
    timings: dict[str, list[float]] = defaultdict(list)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        problems = session(base, timings)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.sqlite:
            psql(args.pg_url, "DROP DATABASE IF EXISTS vocab_session WITH (FORCE)")
    print(f"\n| request ({'SQLite' if args.sqlite else 'PostgreSQL'}) | n | p50 ms | max ms |")
    print("|---|---|---|---|")
    for kind, values in timings.items():
        limit = IMPORT_LIMIT_S if "import" in kind else REQUEST_LIMIT_S
        if kind not in ("register", "login") and max(values) > limit:
            problems.append(f"{kind}: {max(values) * 1000:.0f} ms > {limit * 1000:.0f} ms")
        p50 = statistics.median(values) * 1000
        print(f"| {kind} | {len(values)} | {p50:.1f} | {max(values) * 1000:.1f} |")
    print("\n" + ("\n".join(problems) if problems else "every target met"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
