"""Shared fixtures: a fresh app and an empty database per test, an auth helper, a word factory.

The suite runs on SQLite (default, in memory) and on PostgreSQL: set TEST_DATABASE_URL to an
existing, disposable database, e.g. postgres://postgres@127.0.0.1:5432/vocab_test.
"""

import os

# Settings are read when vocab is imported: configure the test environment first.
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or "sqlite://:memory:"
os.environ["ENVIRONMENT"] = "development"
os.environ["SECRET_KEY"] = TEST_SECRET_KEY = (
    "test-secret-key-0123456789abcdef-not-for-production-use-01234567"
)
# Cheap hashes: the suite registers hundreds of users (production mode refuses these values).
os.environ["ARGON2_MEMORY_KIB"] = "8"
os.environ["ARGON2_TIME_COST"] = "1"
os.environ["ARGON2_PARALLELISM"] = "1"
os.environ["RATE_LIMIT_LOGIN"] = "off"
os.environ["RATE_LIMIT_LOGIN_CLIENT"] = "off"
os.environ["RATE_LIMIT_LOGIN_ACCOUNT"] = "off"
os.environ["RATE_LIMIT_REGISTER"] = "off"
os.environ["CORS_ORIGINS"] = ALLOWED_ORIGIN = "http://allowed.example"

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from tortoise import Tortoise, connections

import vocab

assert len(TEST_SECRET_KEY) == 64

DEFAULT_PASSWORD = "correct horse battery staple"


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


# --- Rate-limit counters: in memory and in Redis (issue 15) ---
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


# --- Session clock (issue 15) ---


class SessionClock:
    """`vocab.auth_now`, the clock tokens are issued, checked and spent by: frozen at the real
    time it was made (so tokens issued before it are never from its future), moved only by
    `advance`."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def session_clock(monkeypatch: pytest.MonkeyPatch) -> SessionClock:
    clock = SessionClock()
    monkeypatch.setattr(vocab, "auth_now", clock)
    return clock


def past_reuse_grace() -> dict[str, float]:
    """For `session_clock.advance`: just past the refresh-token reuse grace window."""
    return {"seconds": vocab.settings.REFRESH_REUSE_GRACE_SECONDS + 1}
