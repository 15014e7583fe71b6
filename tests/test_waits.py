"""Every wait is bounded by the setting that claims it: the whole request
(REQUEST_TIMEOUT_SECONDS), and each wait for the database (DATABASE_TIMEOUT_SECONDS): a
connection from the pool, a statement (cancelled by PostgreSQL, or given up by the client),
SQLite's write lock. Each answers 503 saying whether the request may have changed anything,
and an outage is logged once, not per request.

These run in this process against the suite's database; tests/test_faults.py makes the same
faults happen to real processes (a frozen cluster, two SQLite workers).
"""

import asyncio
import logging
import os
import sqlite3
from time import monotonic

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import Auth, make_word
from tortoise import connections
from tortoise.backends.base.config_generator import expand_db_url

import vocab
from models import User, Word

NOTHING_CHANGED = "nothing was changed; try again shortly"
MAY_HAVE_APPLIED = "the request may or may not have been applied"
sqlite_only = pytest.mark.skipif(
    vocab.DIALECT != "sqlite", reason="SQLite's write lock (the suite runs on PostgreSQL)"
)


def postgres_only(test):
    """PostgreSQL's pool and statements: needs TEST_DATABASE_URL."""
    needs = pytest.mark.skipif(vocab.DIALECT != "postgres", reason="set TEST_DATABASE_URL")
    return pytest.mark.postgres_only(needs(test))


@pytest.fixture
def deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    """A short REQUEST_TIMEOUT_SECONDS (the app reads it on every request)."""
    monkeypatch.setattr(vocab.settings, "REQUEST_TIMEOUT_SECONDS", 0.3)
    return 0.3


async def hang(*args, **kwargs):
    await asyncio.sleep(30)


# --- The whole request ---


async def test_read_words_past_the_request_deadline_is_503_saying_nothing_changed(
    client, auth, deadline, monkeypatch
):
    monkeypatch.setattr(connections.get("default"), "execute_query", hang)
    started = monotonic()
    r = await client.get("/words", headers=auth.headers)
    assert monotonic() - started < deadline + 1
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": f"The request took too long; {NOTHING_CHANGED}"}
    assert r.headers["Retry-After"] == "5"
    assert r.headers["X-Request-ID"]


async def test_create_word_past_the_request_deadline_is_503_and_rolls_back(
    client, auth, deadline, monkeypatch
):
    counted = vocab.add_to_word_count

    async def count_then_hang(user, change):
        await counted(user, change)  # the word and its count are written, not yet committed
        await hang()

    monkeypatch.setattr(vocab, "add_to_word_count", count_then_hang)
    r = await client.post("/words", headers=auth.headers, json={"word": "w", "definition": "d"})
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": f"The request took too long; {MAY_HAVE_APPLIED}"}
    monkeypatch.undo()
    assert await Word.all().count() == 0
    assert (await User.get(id=auth.id)).word_count == 0
    await make_word(client, auth.headers, word="w")  # the app is whole: it works on
    assert (await User.get(id=auth.id)).word_count == 1


def bare(app):
    """An ASGI app wrapped in the error middleware alone, with the lifespan state the request
    context middleware would give it."""
    middleware = vocab.ErrorMiddleware(app)

    async def with_state(scope, receive, send):
        scope["state"] = {"request_id": "test"}
        await middleware(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=with_state), base_url="http://t")


async def test_response_started_before_the_deadline_is_never_cut(deadline):
    async def slow_stream(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"begun, ", "more_body": True})
        await asyncio.sleep(deadline * 2)
        await send({"type": "http.response.body", "body": b"and finished"})

    async with bare(slow_stream) as http:
        r = await http.get("/")
    assert r.status_code == 200
    assert r.text == "begun, and finished"


async def test_response_due_after_the_deadline_is_503(deadline):
    async def slow_start(scope, receive, send):
        await asyncio.sleep(deadline * 2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    async with bare(slow_start) as http:
        r = await http.delete("/")
    assert r.status_code == 503
    assert r.json() == {"detail": f"The request took too long; {MAY_HAVE_APPLIED}"}


# --- The database unavailable: what the 503 says, what the log says ---


@pytest.mark.parametrize(
    ("method", "path", "outcome"),
    [
        ("GET", "/words", NOTHING_CHANGED),
        ("HEAD", "/words", NOTHING_CHANGED),
        ("POST", "/words", MAY_HAVE_APPLIED),
        ("PATCH", "/words/1", MAY_HAVE_APPLIED),
        ("DELETE", "/words/1", MAY_HAVE_APPLIED),
    ],
)
async def test_request_when_database_drops_is_503_saying_whether_it_changed_anything(
    client, auth, monkeypatch, method, path, outcome
):
    async def refused(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(connections.get("default"), "execute_query", refused)
    body = {"word": "w", "definition": "d"} if method in ("POST", "PATCH") else None
    r = await client.request(method, path, headers=auth.headers, json=body)
    assert r.status_code == 503, r.text
    if method != "HEAD":
        assert r.json() == {"detail": f"The database is unavailable; {outcome}"}


def test_connection_ended_by_a_server_shutting_down_is_the_database_unavailable():
    """PostgreSQL shutting down ends a connection that sits idle in a transaction with an
    error of its own; asyncpg then fails the next statement on it (a COMMIT) as a client state
    error, seen under writes during a stop (test_faults.py): a 503, not a 500."""
    error = asyncpg.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert vocab.database_unavailable(error) is error


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "vocab" and r.levelno == logging.WARNING
    ]


async def test_database_outage_is_logged_once_and_its_end_with_the_refusals(
    client, auth, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG, logger="vocab")
    monkeypatch.setattr(vocab.DatabaseOutage, "PROBE_SECONDS", 0.05)
    database = connections.get("default")
    answers = database.execute_query

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(database, "execute_query", refused)
    statuses = [(await client.get("/words", headers=auth.headers)).status_code for _ in range(4)]
    statuses.append((await client.get("/health")).status_code)
    assert statuses == [503] * 5
    assert outage_warnings(caplog) == [
        "database unavailable (ConnectionRefusedError('connection refused')); "
        "requests answer 503 until it is back"
    ]
    # Each refusal still has its own line, at DEBUG, with its request id.
    refusals = [r for r in caplog.records if r.getMessage().startswith("database unavailable:")]
    assert len(refusals) == 5 and all(r.levelno == logging.DEBUG for r in refusals)
    assert len({r.request_id for r in refusals}) == 5

    probe = vocab.outage.probe
    monkeypatch.setattr(database, "execute_query", answers)
    await asyncio.wait_for(probe, 5)  # the probe finds it back and says so
    back = outage_warnings(caplog)[1]
    assert back.startswith("database available again after ")
    assert back.endswith(" s (requests refused meanwhile: 5)")
    r = await client.get("/words", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert len(outage_warnings(caplog)) == 2


async def test_shutdown_during_an_outage_says_the_database_is_still_unavailable(caplog):
    caplog.set_level(logging.WARNING, logger="vocab")
    async with LifespanManager(vocab.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            database = connections.get("default")

            async def refused(*args, **kwargs):
                raise ConnectionRefusedError("connection refused")

            answers, database.execute_query = database.execute_query, refused
            try:
                assert (await http.get("/health")).status_code == 503
            finally:
                database.execute_query = answers
    assert outage_warnings(caplog)[-1] == (
        "shutting down with the database still unavailable (requests refused: 1)"
    )
    assert vocab.outage.probe is None


# --- PostgreSQL: the pool and each statement ---


@pytest.fixture
async def postgres(request) -> vocab.PostgresClient:
    """vocab's PostgreSQL client on the test database, with these connection settings."""
    options = request.param
    credentials = expand_db_url(os.environ["TEST_DATABASE_URL"])["credentials"]
    credentials.update(connection_class=vocab.PostgresConnection, **options)
    client = vocab.PostgresClient(connection_name="waits", **credentials)
    await client.create_connection(with_db=True)
    yield client
    await client.close()


@pytest.mark.parametrize(
    "postgres", [{"server_settings": {"statement_timeout": "200ms"}}], indirect=True
)
@postgres_only
async def test_statement_past_statement_timeout_is_cancelled_by_the_server(postgres):
    started = monotonic()
    with pytest.raises(Exception) as caught:
        await postgres.execute_query("SELECT pg_sleep(5)")
    assert monotonic() - started < 1
    assert vocab.database_unavailable(caught.value)  # a 503
    assert (await postgres.execute_query("SELECT 1"))[0] == 1  # the connection lives on


@pytest.mark.parametrize(
    "postgres",
    [{"server_settings": {"statement_timeout": "0"}, "command_timeout": 0.3}],
    indirect=True,
)
@postgres_only
async def test_statement_the_server_never_answers_ends_at_command_timeout_not_twice(postgres):
    """As with a hung server: asyncpg would ask it to cancel and wait for that as long again."""
    started = monotonic()
    with pytest.raises(TimeoutError):
        await postgres.execute_query("SELECT pg_sleep(5)")
    assert monotonic() - started < 0.3 + 0.2
    await asyncio.sleep(0)  # the connection closes on the loop's next turn
    assert (await postgres.execute_query("SELECT 1"))[0] == 1  # on a new connection


@pytest.mark.parametrize("postgres", [{"minsize": 1, "maxsize": 1}], indirect=True)
@postgres_only
async def test_connection_from_a_full_pool_is_waited_for_database_timeout(postgres, monkeypatch):
    monkeypatch.setattr(vocab.settings, "DATABASE_TIMEOUT_SECONDS", 0.3)
    async with postgres.acquire_connection():  # the pool's only connection
        started = monotonic()
        with pytest.raises(TimeoutError):
            await postgres.execute_query("SELECT 1")
        assert monotonic() - started < 0.3 + 0.2
    assert (await postgres.execute_query("SELECT 1"))[0] == 1


async def test_turns_go_to_waits_in_the_order_they_came_even_past_a_newcomer():
    turns, served = vocab.Turns(1), []
    await turns.take(1)

    async def wait(name: str) -> None:
        await turns.take(1)
        served.append(name)
        await asyncio.sleep(0.01)
        turns.give()

    first = [asyncio.create_task(wait(name)) for name in ("a", "b")]
    await asyncio.sleep(0)  # both wait now
    turns.give()  # to "a", which has not run yet: a newcomer must not take it
    late = asyncio.create_task(wait("newcomer"))
    await asyncio.gather(*first, late)
    assert served == ["a", "b", "newcomer"]
    assert turns.free == 1 and not turns.waiting


async def test_a_wait_for_a_turn_ends_at_its_timeout_and_the_others_keep_their_place():
    turns = vocab.Turns(1)
    await turns.take(None)
    started = monotonic()
    short = asyncio.create_task(turns.take(0.1))
    long = asyncio.create_task(turns.take(5))
    with pytest.raises(TimeoutError):
        await short
    assert 0.1 <= monotonic() - started < 0.5
    turns.give()  # the timed-out wait is gone: the turn goes to the next
    await asyncio.wait_for(long, 1)
    assert turns.free == 0 and not turns.waiting


async def test_a_cancelled_wait_takes_no_turn_and_one_handed_over_is_passed_on():
    turns = vocab.Turns(1)
    await turns.take(1)
    cancelled = asyncio.create_task(turns.take(1))
    handed = asyncio.create_task(turns.take(1))
    last = asyncio.create_task(turns.take(1))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    turns.give()  # to `handed` (the cancelled one is skipped), which is cancelled before it runs
    handed.cancel()
    await asyncio.wait_for(last, 1)  # `handed` passed its turn on
    assert cancelled.cancelled() and handed.cancelled()
    turns.give()
    assert turns.free == 1


@pytest.mark.parametrize(
    "postgres", [{"minsize": 1, "maxsize": 1, "reset": vocab.keep_session}], indirect=True
)
@postgres_only
async def test_pool_gives_connections_in_the_order_they_were_asked_for(postgres):
    pool = postgres._pool

    async def query(name: str, served: list[str]) -> None:
        async with pool.acquire() as connection:
            served.append(name)
            await connection.fetchval("SELECT 1")

    # The connection is given back, and a newcomer asks for one a few turns of the event
    # loop later, before or after "a" has run: asyncpg's queue alone gives it the connection
    # when it asks before "a" runs, and "a" waits again, behind everyone.
    for turns in range(8):
        served: list[str] = []
        connection = await pool.acquire()  # the pool's only connection
        waiting = [asyncio.create_task(query(name, served)) for name in ("a", "b")]
        await asyncio.sleep(0.01)
        release = asyncio.ensure_future(pool.release(connection))
        for _ in range(turns):
            await asyncio.sleep(0)
        newcomer = asyncio.create_task(query("newcomer", served))
        await asyncio.gather(release, newcomer, *waiting)
        assert served == ["a", "b", "newcomer"], f"asked {turns} turns after the release"


def test_database_connection_bounds_every_wait_on_postgres(monkeypatch):
    monkeypatch.setattr(vocab.settings, "DATABASE_URL", "postgres://u@db:5432/vocab")
    monkeypatch.setattr(vocab.settings, "DATABASE_TIMEOUT_SECONDS", 4.0)
    monkeypatch.setattr(vocab, "DIALECT", "postgres")
    connection = vocab.database_connection()
    assert connection["engine"] == "vocab"
    assert vocab.get_client_class(connection) is vocab.PostgresClient
    credentials = connection["credentials"]
    assert credentials["timeout"] == 4.0
    assert credentials["command_timeout"] == 4.5
    assert credentials["server_settings"] == {"statement_timeout": "4000ms"}
    assert credentials["connection_class"] is vocab.PostgresConnection
    unlimited = vocab.database_connection(limit_statements=False)["credentials"]
    assert "command_timeout" not in unlimited and "server_settings" not in unlimited
    assert unlimited["timeout"] == 4.0


# --- SQLite: the write lock ---


@pytest.fixture
def database_file(tmp_path):
    return tmp_path / "vocab.sqlite3"


@pytest.fixture
async def file_client(database_file, monkeypatch) -> httpx.AsyncClient:
    """The app on a SQLite file of its own, which another connection can lock; writes wait
    0.2 s for the lock."""
    path = database_file
    default = {
        "engine": "vocab",
        "credentials": {"busy_timeout": 200, "file_path": str(path), "journal_mode": "WAL"},
    }
    monkeypatch.setitem(vocab.TORTOISE_ORM["connections"], "default", default)
    async with LifespanManager(vocab.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@sqlite_only
async def test_write_while_another_process_holds_the_sqlite_lock_is_503_then_works(
    file_client, database_file
):
    auth = await Auth(file_client, email="locked@example.com").setup()
    word = await make_word(file_client, auth.headers)
    other = sqlite3.connect(database_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker's write transaction
    try:
        started = monotonic()
        r = await file_client.post(
            f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
        )
        waited = monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert 0.2 <= waited < 1.2
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": f"The database is unavailable; {MAY_HAVE_APPLIED}"}
    # The failed BEGIN gave its lock back: the next transactions run.
    r = await file_client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
    )
    assert r.status_code == 201, r.text
    await make_word(file_client, auth.headers, word="next")
    with sqlite3.connect(database_file) as check:
        counts = "SELECT (SELECT COUNT(*) FROM words), (SELECT SUM(reps) FROM cards)"
        assert check.execute(counts).fetchone() == (2, 1)
        assert check.execute("SELECT COUNT(*) FROM reviews").fetchone() == (1,)


@sqlite_only
async def test_transaction_on_sqlite_takes_the_write_lock_as_it_begins(file_client, database_file):
    """BEGIN IMMEDIATE: another connection can no longer write once it has begun, though it
    has not written yet (under a plain BEGIN it could, and the transaction would fail later)."""
    await Auth(file_client, email="immediate@example.com").setup()
    other = sqlite3.connect(database_file, isolation_level=None, timeout=0)
    try:
        async with vocab.in_transaction():
            await User.all().count()  # a read only
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("UPDATE users SET word_count = 0")
        other.execute("UPDATE users SET word_count = 0")  # free again
    finally:
        other.close()
