"""Hardening: rate limits, body caps, headers, logs and metrics, login timing, settings checks.

The suite turns rate limits off (conftest); tests here switch them on one at a time. Figures
worth a human look (the timing ratio) go to /tmp/hardening-figures.txt.
"""

import asyncio
import json
import logging
import os
import secrets
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from statistics import median
from time import perf_counter
from urllib.parse import urlsplit

import httpx
import limits
import pytest
from conftest import ALLOWED_ORIGIN, Auth
from joserfc.jwk import OctKey
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from prometheus_client.parser import text_string_to_metric_families
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import ValidationError

import vocab
from models import Word

FIGURES = Path("/tmp/hardening-figures.txt")
LIMIT = limits.parse("3/minute")
WRONG_PASSWORD = "not the password at all"
#: The Redis of the rate-limit test: REDIS_URL, else one on the default port if it answers.
#: REDIS_REQUIRED=1 (CI, which starts its own) turns a missing Redis into a failure, not a skip.
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"


def record_figure(name: str, value: object) -> None:
    """Keep one `name: value` line in the figures file (replacing an older value)."""
    lines = FIGURES.read_text().splitlines() if FIGURES.exists() else []
    lines = [line for line in lines if not line.startswith(f"{name}:")] + [f"{name}: {value}"]
    FIGURES.write_text("\n".join(sorted(lines)) + "\n")


def assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert isinstance(r.json()["detail"], str)
    assert r.headers["Retry-After"].isdigit(), r.headers["Retry-After"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60


@pytest.fixture
async def rate_limits(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Login and registration limited to 3 a minute, with counters that start (and end) empty."""
    monkeypatch.setattr(vocab, "LOGIN_LIMIT", LIMIT)
    monkeypatch.setattr(vocab, "REGISTER_LIMIT", LIMIT)
    await vocab.rate_storage.reset()
    yield
    await vocab.rate_storage.reset()


# --- Rate limits ---


async def test_login_user_after_repeated_failures_for_one_email_is_429(client, auth, rate_limits):
    for _ in range(3):
        r = await auth.login(password=WRONG_PASSWORD)
        assert r.status_code == 401, r.text
    r = await auth.login(password=WRONG_PASSWORD)
    assert_429(r)
    # The limit guards the account: even the right password waits for the window to pass.
    assert_429(await auth.login())


async def test_login_user_after_failures_for_other_emails_is_429_per_client(
    client, auth, rate_limits
):
    for n in range(3):
        r = await auth.login(email=f"stranger{n}@example.com", password=WRONG_PASSWORD)
        assert r.status_code == 401, r.text
    # Each of those emails failed once; the client's own counter is what is used up.
    assert_429(await auth.login(email="stranger99@example.com", password=WRONG_PASSWORD))


async def test_login_user_successes_are_not_counted(client, auth, rate_limits):
    """API.md's Limits table counts failed logins only, per email and per client."""
    for _ in range(6):
        r = await auth.login()
        assert r.status_code == 200, r.text
    for _ in range(3):
        r = await auth.login(password=WRONG_PASSWORD)
        assert r.status_code == 401, r.text
    assert_429(await auth.login(password=WRONG_PASSWORD))


async def test_login_user_with_limit_off_is_never_429(client, auth, rate_limits, monkeypatch):
    monkeypatch.setattr(vocab, "LOGIN_LIMIT", vocab.rate_limit("off"))
    for _ in range(10):
        r = await auth.login(password=WRONG_PASSWORD)
        assert r.status_code == 401, r.text


async def test_register_user_over_limit_per_client_is_429(client, rate_limits):
    for n in range(3):
        r = await Auth(client, email=f"new{n}@example.com").register()
        assert r.status_code == 201, r.text
    assert_429(await Auth(client, email="new99@example.com").register())
    assert await vocab.User.filter(email="new99@example.com").count() == 0


async def test_login_user_concurrent_failures_are_limited_too(client, auth, rate_limits):
    responses = await asyncio.gather(
        *(auth.login(password=f"{WRONG_PASSWORD} {n}") for n in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    record_figure(
        "rate limit 3/minute: concurrent failed logins answered 401 (of 10)", statuses.count(401)
    )
    assert statuses == [401] * 3 + [429] * 7


@pytest.mark.parametrize("field", ["RATE_LIMIT_LOGIN", "RATE_LIMIT_REGISTER"])
def test_settings_rate_limit_off_disables_the_limit(field):
    settings = vocab.Settings(_env_file=None, **{field: "off"})
    assert getattr(settings, field) == "off"
    assert vocab.rate_limit(getattr(settings, field)) is None


@pytest.mark.parametrize("value", ["5 per fortnight", "lots", "5/minutely"])
@pytest.mark.parametrize("field", ["RATE_LIMIT_LOGIN", "RATE_LIMIT_REGISTER"])
def test_settings_rate_limit_unparseable_is_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        vocab.Settings(_env_file=None, **{field: value})


@pytest.fixture
def redis_url() -> str:
    """REDIS_URL, once a TCP connection to it succeeds (skipped, or failed under REDIS_REQUIRED)."""
    url = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1):
            return REDIS_URL
    except OSError as exc:
        problem = f"no Redis answers at {REDIS_URL} ({exc})"
    if os.environ.get("REDIS_REQUIRED") == "1":
        pytest.fail(f"REDIS_REQUIRED=1 but {problem}", pytrace=False)
    pytest.skip(problem)


async def test_login_limit_in_redis_is_shared_by_every_limiter_on_it(
    client, auth, monkeypatch, redis_url
):
    """Two app instances with RATE_LIMIT_STORAGE=redis://... count together: the counter this
    app writes is read back (and added to) through a second, independent limiter."""
    monkeypatch.setattr(vocab, "LOGIN_LIMIT", LIMIT)
    # The same storage as the app builds from RATE_LIMIT_STORAGE (see vocab.rate_storage).
    app_limiter = MovingWindowRateLimiter(
        storage_from_string("async+" + redis_url, implementation="redispy")
    )
    monkeypatch.setattr(vocab, "rate_limiter", app_limiter)
    other_replica = MovingWindowRateLimiter(
        storage_from_string("async+" + redis_url, implementation="redispy")
    )
    # A client address of its own, so other users of this Redis cannot disturb the counts.
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    email_key, client_key = f"login-email:{auth.email}", f"login-client:{address}"
    keys = (email_key, client_key, "login-email:someone@example.com")
    transport = httpx.ASGITransport(app=vocab.app, client=(address, 4321))
    try:
        for key in keys:
            await other_replica.clear(LIMIT, key)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            for _ in range(2):
                r = await c.post(
                    "/auth/token", data={"username": auth.email, "password": WRONG_PASSWORD}
                )
                assert r.status_code == 401, r.text
            stats = await other_replica.get_window_stats(LIMIT, email_key)
            assert stats.remaining == 1
            # The other replica sees a third failure for this client...
            assert await other_replica.hit(LIMIT, client_key)
            # ...so this one refuses the client, even for an email it has never seen fail.
            r = await c.post(
                "/auth/token",
                data={"username": "someone@example.com", "password": WRONG_PASSWORD},
            )
            assert_429(r)
    finally:
        for key in keys:
            await other_replica.clear(LIMIT, key)


# --- Request bodies ---


async def test_create_word_with_declared_length_over_limit_is_413_unread(client, auth):
    read: list[bytes] = []

    async def tiny_body() -> AsyncIterator[bytes]:
        read.append(b"{}")
        yield b"{}"

    r = await client.post(
        "/words",
        headers={
            **auth.headers,
            "Content-Type": "application/json",
            "Content-Length": str(vocab.settings.MAX_BODY_BYTES + 1),
        },
        content=tiny_body(),
    )
    assert r.status_code == 413, r.text
    assert r.json() == {
        "detail": f"Request body is larger than {vocab.settings.MAX_BODY_BYTES} bytes"
    }
    assert read == []  # answered from the header alone


async def test_create_word_with_chunked_body_over_limit_is_413_early(client, auth):
    chunk = b" " * 65536
    sent: list[int] = []

    async def endless_body() -> AsyncIterator[bytes]:
        for _ in range(10_000):  # 655 MB if anyone read it all
            sent.append(len(chunk))
            yield chunk

    r = await client.post(
        "/words",
        headers={**auth.headers, "Content-Type": "application/json"},
        content=endless_body(),
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text
    assert r.json() == {
        "detail": f"Request body is larger than {vocab.settings.MAX_BODY_BYTES} bytes"
    }
    assert sum(sent) <= vocab.settings.MAX_BODY_BYTES + len(chunk)  # stopped at the limit


def csv_of_size(size: int) -> bytes:
    """A valid CSV file of distinct words, `size` bytes long."""
    lines = ["word,definition\n"]
    total, n = len(lines[0]), 0
    while total < size:
        line = f"word{n:07d},a definition\n"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines).encode()[:size]


@pytest.mark.parametrize(
    "size",
    [
        vocab.IMPORT_MAX_BYTES + 1,  # the route's own check
        vocab.IMPORT_MAX_BYTES + vocab.MULTIPART_OVERHEAD + 1,  # the middleware's
    ],
)
async def test_import_words_over_5_mb_is_413_and_stores_nothing(client, auth, size):
    data = csv_of_size(size)
    assert len(data) == size
    r = await client.post(
        "/words/import", headers=auth.headers, files={"file": ("words.csv", data, "text/csv")}
    )
    assert r.status_code == 413, r.text
    assert isinstance(r.json()["detail"], str)
    assert await Word.all().count() == 0


# --- Headers ---


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/users/me", 401),
        ("GET", "/nowhere", 404),
        ("POST", "/words", 413),
    ],
)
async def test_response_has_security_headers_and_no_server_header(client, method, path, status):
    headers = {"Content-Length": str(vocab.settings.MAX_BODY_BYTES + 1)} if status == 413 else {}
    r = await client.request(method, path, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "server" not in r.headers


async def test_cors_request_from_allowed_origin_gets_allow_origin(client, auth):
    r = await client.get("/users/me", headers={**auth.headers, "Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Request-ID" in r.headers["Access-Control-Expose-Headers"]


async def test_cors_request_from_other_origin_gets_no_allow_origin(client, auth):
    r = await client.get("/users/me", headers={**auth.headers, "Origin": "http://evil.example"})
    assert r.status_code == 200, r.text  # CORS is the browser's rule; the server just says no
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_cors_error_from_allowed_origin_gets_allow_origin(client):
    """A browser can only read an error (to show it) when it carries the CORS header too."""
    r = await client.get("/users/me", headers={"Origin": ALLOWED_ORIGIN})
    assert r.status_code == 401, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


async def test_cors_body_over_limit_from_allowed_origin_gets_allow_origin(client, auth):
    r = await client.post(
        "/words",
        headers={
            **auth.headers,
            "Origin": ALLOWED_ORIGIN,
            "Content-Length": str(vocab.settings.MAX_BODY_BYTES + 1),
        },
        content=b"{}",
    )
    assert r.status_code == 413, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


async def test_tokens_of_another_deployment_are_401(client, auth, monkeypatch):
    """The same user id exists on both deployments; only the signing key differs."""
    with monkeypatch.context() as other_deployment:
        other_deployment.setattr(vocab, "SIGNING_KEY", OctKey.import_key(secrets.token_hex(32)))
        r = await auth.login()
        assert r.status_code == 200, r.text
        r = await client.get("/users/me", headers=auth.headers)
        assert r.status_code == 200, r.text  # valid over there
    r = await client.get("/users/me", headers=auth.headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    r = await client.post("/auth/refresh", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Invalid refresh token"}


# --- Logs ---


def json_lines(records: list[logging.LogRecord]) -> list[str]:
    """Records as the production handler writes them."""
    formatter = vocab.JsonFormatter()
    return [formatter.format(record) for record in records]


@pytest.fixture
async def served_client(client) -> AsyncIterator[httpx.AsyncClient]:
    """The running app without asgi-lifespan's wrapper, which hands every request the same
    `state` dict; uvicorn gives each request a copy (as the ASGI spec asks), and so does this."""
    transport = httpx.ASGITransport(app=vocab.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_access_log_has_one_json_line_per_request(served_client, caplog):
    user = await Auth(served_client, email="logged@example.com").setup()
    caplog.set_level(logging.INFO, logger="vocab.access")
    caplog.clear()
    sent = [
        ("POST", "/auth/token", None, 200),
        ("GET", "/users/me", user.id, 200),
        ("GET", "/words/999", user.id, 404),
        ("GET", "/users/me", None, 401),
    ]
    responses = [
        await user.login(),
        await served_client.get("/users/me", headers=user.headers),
        await served_client.get("/words/999", headers=user.headers),
        await served_client.get("/users/me"),
    ]
    lines = json_lines([rec for rec in caplog.records if rec.name == "vocab.access"])
    assert len(lines) == len(sent)
    for line, r, (method, path, user_id, status) in zip(lines, responses, sent, strict=True):
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["request_id"] == r.headers["X-Request-ID"]
        assert (entry["method"], entry["path"], entry["user_id"], entry["status"]) == (
            method,
            path,
            user_id,
            status,
        )
        assert r.status_code == status
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
        assert entry["logger"] == "vocab.access"
        assert entry["level"] == "INFO"


async def test_logs_never_contain_passwords_or_tokens(client, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    caplog.set_level(logging.DEBUG, logger="tortoise")  # the app quietens it; not here
    password = "Pa55word-that-must-not-leak"
    user = Auth(client, email="quiet@example.com", password=password)
    secrets_seen = [password, WRONG_PASSWORD, "invalid-email-password-zz"]
    assert (await user.register()).status_code == 201
    assert (await user.login()).status_code == 200
    secrets_seen += [user.access_token, user.refresh_token]
    r = await client.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 200, r.text
    secrets_seen += [r.json()["access_token"], r.json()["refresh_token"]]
    r = await client.post(
        "/auth/register", json={"email": "not an email", "password": "invalid-email-password-zz"}
    )
    assert r.status_code == 422, r.text
    assert "invalid-email-password-zz" not in r.text
    assert (await user.login(password=WRONG_PASSWORD)).status_code == 401
    lines = json_lines(caplog.records)
    assert len(lines) >= 5  # at least the access log of each request was captured
    for line in lines:
        for secret in secrets_seen:
            assert secret not in line


# --- Metrics ---


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    """`vocab_http_requests_total` by (method, route, status), parsed as Prometheus would."""
    counts = {}
    for family in text_string_to_metric_families(text):
        if family.name == "vocab_http_requests":
            for sample in family.samples:
                if sample.name == "vocab_http_requests_total":
                    labels = sample.labels
                    counts[labels["method"], labels["route"], labels["status"]] = sample.value
    return counts


async def test_read_metrics_counts_requests_by_route_template(client, auth):
    before = request_counts((await client.get("/metrics")).text)
    for word_id in (123, 456):
        r = await client.get(f"/words/{word_id}", headers=auth.headers)
        assert r.status_code == 404, r.text
    r = await client.get("/words/not-a-number", headers=auth.headers)
    assert r.status_code == 404, r.text
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    after = request_counts(r.text)
    series = ("GET", "/words/{word_id}", "404")
    assert after[series] - before.get(series, 0) == 2
    assert all(route.startswith("/") or route == "unmatched" for _, route, _ in after)
    for raw in ("/words/123", "/words/456", "/words/not-a-number"):
        assert raw not in r.text


# --- Login timing ---


async def test_login_time_does_not_reveal_whether_an_email_is_registered(client, monkeypatch):
    """With production's argon2 cost, an unknown email costs what a wrong password costs."""
    hasher = PasswordHash((Argon2Hasher(memory_cost=19456, time_cost=2, parallelism=1),))
    monkeypatch.setattr(vocab, "password_hasher", hasher)
    monkeypatch.setattr(vocab, "DUMMY_HASH", hasher.hash(secrets.token_urlsafe(16)))
    user = await Auth(client, email="timed@example.com").setup()  # hashed at production cost
    known: list[float] = []
    unknown: list[float] = []
    for n in range(16):  # alternating, so drift in machine load hits both alike
        for samples, email in ((known, user.email), (unknown, f"nobody{n}@example.com")):
            started = perf_counter()
            r = await user.login(email=email, password=WRONG_PASSWORD)
            samples.append(perf_counter() - started)
            assert r.status_code == 401, r.text
    known, unknown = known[1:], unknown[1:]  # the first round warms up
    ratio = median(unknown) / median(known)
    record_figure(
        "login timing (argon2 19456 KiB, t=2), median unknown/known email",
        f"{median(unknown) * 1000:.1f} ms / {median(known) * 1000:.1f} ms = {ratio:.2f}",
    )
    assert 0.67 <= ratio <= 1.5


# --- Settings ---

STRONG_SECRET = "Zq7" + secrets.token_urlsafe(48)
PRODUCTION = {
    "_env_file": None,
    "ENVIRONMENT": "production",
    "SECRET_KEY_FILE": None,
    "ARGON2_MEMORY_KIB": 19456,
    "ARGON2_TIME_COST": 2,
    "ARGON2_PARALLELISM": 1,
}


def test_settings_production_with_strong_secret_is_accepted():
    settings = vocab.Settings(**{**PRODUCTION, "SECRET_KEY": STRONG_SECRET})
    assert settings.secret_key() == STRONG_SECRET


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"SECRET_KEY": None}, "needs SECRET_KEY"),
        ({"SECRET_KEY": "x7-Kq9!zR2" * 3}, "at least 32 bytes"),
        (
            {"SECRET_KEY": "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"},
            "well-known",
        ),
        ({"SECRET_KEY": "CHANGEME" * 8}, "trivial"),
        ({"ARGON2_MEMORY_KIB": 19455}, "ARGON2_MEMORY_KIB below"),
        ({"ARGON2_TIME_COST": 1}, "ARGON2_TIME_COST below"),
    ],
)
def test_settings_production_with_weak_secret_or_hashing_is_refused(overrides, reason):
    with pytest.raises(ValidationError, match=reason):
        vocab.Settings(**{**PRODUCTION, "SECRET_KEY": STRONG_SECRET, **overrides})


def test_settings_secret_key_file_is_created_private_once_and_reused(tmp_path):
    path = tmp_path / "secret-key"
    first = vocab.Settings(_env_file=None, SECRET_KEY=None, SECRET_KEY_FILE=path)
    key = first.secret_key()
    assert len(key.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    second = vocab.Settings(
        **{**PRODUCTION, "SECRET_KEY": None, "SECRET_KEY_FILE": path}  # another worker
    )
    assert second.secret_key() == key
    assert first.secret_key() == key
