"""Shared fixtures: a fresh app and an empty database per test, an auth helper, a word factory.

The suite runs on SQLite (default, in memory) and on PostgreSQL: set TEST_DATABASE_URL to an
existing, disposable database, e.g. postgres://postgres@127.0.0.1:5432/vocab_test.
"""

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, sleep

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
os.environ["RATE_LIMIT_REGISTER"] = "off"
os.environ["CORS_ORIGINS"] = ALLOWED_ORIGIN = "http://allowed.example"

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
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


# --- The app in a real uvicorn process (tests marked `process`) ---

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def uvicorn_process(tmp_path: Path, *args: str, **env: str) -> Iterator[Server]:
    """`uvicorn vocab:app` on a free port with these settings, once it answers /health;
    terminated (or killed) on the way out."""
    port = free_port()
    settings = {
        "SECRET_KEY": "faults-" + "k7Q2" * 16,
        "ENVIRONMENT": "development",
        "ARGON2_MEMORY_KIB": "8",
        "ARGON2_TIME_COST": "1",
        "ARGON2_PARALLELISM": "1",
        "RATE_LIMIT_LOGIN": "off",
        "RATE_LIMIT_REGISTER": "off",
        "RATE_LIMIT_STORAGE": "memory://",
        **env,
    }
    log = tmp_path / f"uvicorn-{port}.log"
    command = [sys.executable, "-m", "uvicorn", "vocab:app", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), *args],
            cwd=ROOT,
            env={**os.environ, **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = monotonic() + 60
        while True:
            assert process.poll() is None, f"uvicorn exited:\n{server.log_text()}"
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert monotonic() < deadline, f"uvicorn did not start:\n{server.log_text()}"
            sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
