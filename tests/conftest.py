"""Shared fixtures and factories: a fresh app and an empty database per test, an auth helper,
word and review factories, forged tokens, and the app in a real uvicorn process.

The suite runs on SQLite (default, in memory) and on PostgreSQL: set TEST_DATABASE_URL to an
existing, disposable database, e.g. postgres://postgres@127.0.0.1:5432/vocab_test.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import OctKey
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from tortoise import Tortoise, connections

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef-not-for-production-use-01234567"
ALLOWED_ORIGIN = "http://allowed.example"
#: The settings of every app the suite starts, in this process or as a uvicorn process (which
#: inherits the environment). Cheap hashes: the suite registers hundreds of users (production
#: mode refuses these values); rate limits off (tests switch them on one at a time).
TEST_SETTINGS = {
    "DATABASE_URL": os.environ.get("TEST_DATABASE_URL") or "sqlite://:memory:",
    "ENVIRONMENT": "development",
    "SECRET_KEY": TEST_SECRET_KEY,
    "ARGON2_MEMORY_KIB": "8",
    "ARGON2_TIME_COST": "1",
    "ARGON2_PARALLELISM": "1",
    "RATE_LIMIT_LOGIN": "off",
    "RATE_LIMIT_LOGIN_CLIENT": "off",
    "RATE_LIMIT_LOGIN_ACCOUNT": "off",
    "RATE_LIMIT_REGISTER": "off",
    "RATE_LIMIT_STORAGE": "memory://",
    "CORS_ORIGINS": ALLOWED_ORIGIN,
}
os.environ.update(TEST_SETTINGS)

import vocab  # noqa: E402 (vocab reads its settings when it is imported)

assert len(TEST_SECRET_KEY) == 64

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PASSWORD = "correct horse battery staple"
#: Figures worth a human look (timings, counts under load), one `name: value` line each.
FIGURES = Path("/tmp/hardening-figures.txt")
WORD_NOT_FOUND = {"detail": "Word not found"}
BAD_CREDENTIALS = {"detail": "Could not validate credentials"}
BAD_REFRESH = {"detail": "Invalid refresh token"}


def record_figure(name: str, value: object) -> None:
    """Keep one `name: value` line in FIGURES (replacing an older value)."""
    lines = FIGURES.read_text().splitlines() if FIGURES.exists() else []
    lines = [line for line in lines if not line.startswith(f"{name}:")] + [f"{name}: {value}"]
    FIGURES.write_text("\n".join(sorted(lines)) + "\n")


def ts(value: str | None) -> datetime | None:
    """Parse an API timestamp (None stays None), insisting on a UTC offset."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, value
    return parsed


def assert_401(r: httpx.Response, body: dict[str, str] = BAD_CREDENTIALS) -> None:
    """A 401 with this body and the `WWW-Authenticate: Bearer` the contract asks for."""
    assert r.status_code == 401, r.text
    assert r.json() == body
    assert r.headers["WWW-Authenticate"] == "Bearer"


# --- The app in this process, and its users ---


async def empty_database() -> None:
    """Truncate every model table (PostgreSQL keeps data between app start-ups, SQLite does not)."""
    tables = [
        model._meta.db_table
        for model in Tortoise.apps["models"].values()
        if model._meta.db_table != "aerich"
    ]
    quoted = ", ".join(f'"{table}"' for table in tables)
    await connections.get("default").execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to a freshly started app with an empty database."""
    async with LifespanManager(vocab.app) as manager:
        if os.environ.get("TEST_DATABASE_URL"):
            await empty_database()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


class Auth:
    """One user of the API: register, log in, and send authenticated requests."""

    def __init__(self, client: httpx.AsyncClient, *, email: str, password: str = DEFAULT_PASSWORD):
        self.client = client
        self.email = email
        self.password = password
        self.user: dict[str, Any] | None = None
        self.access_token: str | None = None
        self.refresh_token: str | None = None

    async def register(
        self, *, email: str | None = None, password: str | None = None
    ) -> httpx.Response:
        """POST /auth/register; remembers the user on success."""
        r = await self.client.post(
            "/auth/register",
            json={"email": email or self.email, "password": password or self.password},
        )
        if r.status_code == 201:
            self.user = r.json()
        return r

    async def login(
        self, *, email: str | None = None, password: str | None = None
    ) -> httpx.Response:
        """POST /auth/token (OAuth2 password form); remembers the token pair on success."""
        r = await self.client.post(
            "/auth/token",
            data={"username": email or self.email, "password": password or self.password},
        )
        if r.status_code == 200:
            self.access_token = r.json()["access_token"]
            self.refresh_token = r.json()["refresh_token"]
        return r

    async def setup(self) -> "Auth":
        """Register and log in, asserting both succeed."""
        r = await self.register()
        assert r.status_code == 201, r.text
        r = await self.login()
        assert r.status_code == 200, r.text
        return self

    @property
    def id(self) -> int:
        assert self.user is not None, "register first"
        return self.user["id"]

    @property
    def headers(self) -> dict[str, str]:
        assert self.access_token is not None, "log in first"
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> Auth:
    """A registered, logged-in user."""
    return await Auth(client, email="alice@example.com").setup()


@pytest.fixture
async def other_auth(client: httpx.AsyncClient) -> Auth:
    """A second registered, logged-in user."""
    return await Auth(client, email="bob@example.com").setup()


async def make_word(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    word: str = "serendipity",
    definition: str = "finding something good without looking for it",
    **overrides: Any,
) -> dict[str, Any]:
    """Create a word through the API (asserting 201) and return its body."""
    r = await client.post(
        "/words", headers=headers, json={"word": word, "definition": definition, **overrides}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def make_review(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    word_id: int,
    *,
    rating: str = "good",
    **fields: Any,
) -> dict[str, Any]:
    """Review a word through the API (asserting 201) and return the body, `{review, word}`."""
    r = await client.post(
        f"/words/{word_id}/reviews", headers=headers, json={"rating": rating, **fields}
    )
    assert r.status_code == 201, r.text
    return r.json()


# --- Forged tokens ---


def make_token(claims: dict[str, Any], *, key: str = TEST_SECRET_KEY) -> str:
    """Sign claims with HS256, the way the app does (with the suite's SECRET_KEY by default)."""
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(key))


def access_claims(user_id: int | str, **overrides: Any) -> dict[str, Any]:
    """The claims of a valid access token for this user, with overrides; None drops a claim."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "type": "access",
        **overrides,
    }
    return {name: value for name, value in claims.items() if value is not None}


# --- The app in a uvicorn process ---


@dataclass
class Server:
    """A running `uvicorn vocab:app`: its base URL, its process and its log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """A TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_process(folder: Path, *args: str, **settings: str) -> Iterator[Server]:
    """`uvicorn vocab:app` on a free port with the suite's settings and these, once it answers
    /health (its log in `folder`); terminated, or killed after 15 s, on the way out."""
    port = free_port()
    log = folder / f"uvicorn-{port}.log"
    command = [sys.executable, "-m", "uvicorn", "vocab:app", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), *args],
            cwd=ROOT,
            env={**os.environ, **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while not answers_health(server):
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{server.log_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start in 60 s:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def answers_health(server: Server) -> bool:
    try:
        return httpx.get(f"{server.url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- Rate-limit counters: in memory and in Redis ---
# REDIS_URL names a Redis server for the tests (CI starts one); without it the Redis variants are
# skipped, unless REDIS_REQUIRED=1 makes that a failure. The tests write only under a key prefix
# of their own and delete only those keys.


@pytest.fixture
def redis_url() -> str:
    """The test Redis server's URL (REDIS_URL)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        if os.environ.get("REDIS_REQUIRED") == "1":
            pytest.fail("REDIS_REQUIRED=1 but REDIS_URL is not set", pytrace=False)
        pytest.skip("set REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis variant")
    return url


def redis_storage(url: str, key_prefix: str) -> Any:
    """An async limits storage on that Redis, through redis-py as the app's is."""
    return storage_from_string("async+" + url, implementation="redispy", key_prefix=key_prefix)


@pytest.fixture(params=["memory", "redis"])
async def counters(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """Empty rate-limit counters for the app, in this process's memory or in Redis (the
    storage `RATE_LIMIT_STORAGE` selects); yields the storage."""
    if request.param == "memory":
        storage = storage_from_string("async+memory://")
    else:
        prefix = f"vocab-test-{os.getpid()}-{os.urandom(4).hex()}"
        storage = redis_storage(request.getfixturevalue("redis_url"), prefix)
    monkeypatch.setattr(vocab, "rate_storage", storage)
    monkeypatch.setattr(vocab, "rate_limiter", MovingWindowRateLimiter(storage))
    yield storage
    if request.param == "redis":  # (the memory storage goes with the test)
        await storage.reset()  # only the keys under this test's prefix
        await storage.bridge.storage.aclose()


# --- Session clock ---


class Clock:
    """One of the app's clocks in tests: an aware UTC datetime that moves only when told to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        assert now.utcoffset() == timedelta(0), "keep the clock in UTC"
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


#: Where `clock` starts: due dates, reviews and statistics then come out exact.
START = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`vocab.utcnow`, frozen at START until a test moves it."""
    clock = Clock(START)
    monkeypatch.setattr(vocab, "utcnow", clock)
    return clock


@pytest.fixture
def session_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`vocab.auth_now`, the clock tokens are issued, checked and spent by: frozen at the real
    time it was made (so tokens issued before it are never from its future), moved only by
    `advance`."""
    clock = Clock(datetime.now(UTC))
    monkeypatch.setattr(vocab, "auth_now", clock)
    return clock


def past_reuse_grace() -> dict[str, float]:
    """For `session_clock.advance`: just past the refresh-token reuse grace window."""
    return {"seconds": vocab.settings.REFRESH_REUSE_GRACE_SECONDS + 1}
