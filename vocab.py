"""vocab: a vocabulary-learning HTTP API.

People register, sign in and keep their own list of words, which they study with spaced
repetition. Run it with `uvicorn vocab:app` (SQLite in a local file, no configuration needed) and
explore it at http://127.0.0.1:8000/docs. `python vocab.py migrate` applies the database
migrations and exits. The HTTP contract is documented in the OpenAPI schema at /openapi.json.

The module reads top to bottom: settings, the database, the API's shared conventions, then one
section per resource (its schemas, helpers and router), then the plumbing that knows no resource
and the block that builds `app`.
"""

import asyncio
import copy
import csv
import email.message
import gc
import hashlib
import hmac
import html
import inspect
import io
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import types
import unicodedata
import uuid
import weakref
import zipfile
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache, partial
from itertools import chain, count, groupby, repeat
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar, get_origin
from zoneinfo import ZoneInfo, available_timezones

import asyncpg
import fsrs
import fsrs_rs_python
import limits
import uvicorn
import zstandard
from aerich import Command
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    params,
    status,
)
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
)
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, to_json
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import Tortoise, connections, timezone
from tortoise.backends.asyncpg import AsyncpgDBClient
from tortoise.backends.base.client import (
    BaseDBAsyncClient,
    TransactionalDBClient,
    TransactionContext,
)
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.sqlite import client as tortoise_sqlite
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.connection import get_connections
from tortoise.contrib.fastapi import RegisterTortoise
from tortoise.contrib.pydantic import PydanticModel, pydantic_model_creator
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.expressions import F, Q, Subquery
from tortoise.fields.data import CharEnumFieldInstance, DatetimeField
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet, ValuesQuery
from tortoise.transactions import in_transaction
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from models import (
    Card,
    Direction,
    IdempotencyKey,
    ImportJob,
    JobStatus,
    Rating,
    RefreshToken,
    Review,
    State,
    User,
    Word,
)

ROOT = Path(__file__).resolve().parent
T = TypeVar("T")

# --- Settings ---

#: Secrets that appear in examples and tutorials; production refuses them however long they are.
WELL_KNOWN_SECRETS = {
    "secret",
    "changeme",
    "change-me",
    "change_me",
    "your-secret-key",
    "supersecret",
    "password",
    "replace-me-with-a-long-random-string",
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",  # FastAPI docs' example
}
#: OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
ARGON2_FLOOR = {"ARGON2_MEMORY_KIB": 19456, "ARGON2_TIME_COST": 2, "ARGON2_PARALLELISM": 1}


class Settings(BaseSettings):
    """Configuration, read from the environment (and a `.env` file when present)."""

    # An empty variable means "use the default" (compose passes unset ones as "").
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    ENVIRONMENT: Literal["development", "production"] = "development"
    DATABASE_URL: str = "sqlite://vocab.sqlite3"
    SECRET_KEY: SecretStr | None = None
    #: Where the key lives when SECRET_KEY is unset: read, or created with a random key.
    SECRET_KEY_FILE: Path | None = None
    ACCESS_TOKEN_MINUTES: int = Field(default=15, ge=1, le=24 * 60)
    REFRESH_TOKEN_DAYS: int = Field(default=30, ge=1, le=365)
    CORS_ORIGINS: str = ""
    LOG_LEVEL: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(lambda v: str(v).upper())
    ] = "INFO"
    MIGRATE_ON_START: bool = True
    ARGON2_MEMORY_KIB: int = Field(default=19456, ge=8)
    ARGON2_TIME_COST: int = Field(default=2, ge=1)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1)
    PASSWORD_HASH_THREADS: int = Field(default=1, ge=1, le=64)
    MAX_BODY_BYTES: int = Field(default=1_048_576, ge=1024)
    #: The largest file POST /imports takes (an Anki package, or CSV/TSV); `off`: no limit.
    IMPORT_PACKAGE_MAX_BYTES: Annotated[
        int | None, BeforeValidator(lambda v: None if str(v).strip().lower() == "off" else v)
    ] = Field(default=104_857_600, ge=1024)
    #: Failed sign-ins allowed per email and client address together, per client address
    #: across all emails, and per email across all addresses (each `off` to disable).
    RATE_LIMIT_LOGIN: str = "10/15minutes"
    RATE_LIMIT_LOGIN_CLIENT: str = "100/hour"
    RATE_LIMIT_LOGIN_ACCOUNT: str = "100/day"
    RATE_LIMIT_REGISTER: str = "10/hour"
    #: Where rate-limit counters live: per process by default; `redis://host:6379` shares them
    #: between workers and replicas.
    RATE_LIMIT_STORAGE: str = "memory://"
    #: Reverse proxies whose X-Forwarded-For names the real client: IPs or networks,
    #: comma-separated, or `*` for any peer. uvicorn's --proxy-headers reads the same variable
    #: (with the same default), so the server and the app agree on who the client is.
    FORWARDED_ALLOW_IPS: str = "127.0.0.1,::1"
    #: A spent refresh token presented again this soon still renews its login (two tabs).
    REFRESH_REUSE_GRACE_SECONDS: int = Field(default=10, ge=0, le=300)
    #: The bearer token Prometheus sends for /metrics in production (unset: no /metrics there).
    METRICS_TOKEN: SecretStr | None = None
    #: asyncpg pool size per worker.
    DATABASE_POOL_SIZE: int = Field(default=10, ge=2, le=100)
    #: The longest any one wait for the database may take before the request answers 503: a
    #: connection (from the pool or a new one), a statement (PostgreSQL cancels it; the client
    #: gives up half a second later, should the server itself be hung), SQLite's write lock.
    DATABASE_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=120)
    #: The longest a whole request may take before it answers 503 (and rolls back), whatever
    #: it waits for; a response that has started is never cut. Below uvicorn's graceful
    #: shutdown timeout, so that a SIGTERM lets every request in flight finish.
    REQUEST_TIMEOUT_SECONDS: float = Field(default=15.0, gt=0, le=300)
    #: How long the response to a request sent with an `Idempotency-Key` is kept for its
    #: retries (24 h, as payment APIs keep theirs).
    IDEMPOTENCY_KEY_TTL_SECONDS: int = Field(default=86_400, ge=60, le=30 * 86_400)
    LOG_FORMAT: Literal["json", "text"] = "json"

    @field_validator(
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_LOGIN_CLIENT",
        "RATE_LIMIT_LOGIN_ACCOUNT",
        "RATE_LIMIT_REGISTER",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip().lower() != "off":
            limits.parse(value)  # raises ValueError on e.g. "5 per fortnight"
        return value.strip()

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        if value.strip().lower() in ("*", "none"):  # every peer, or none (uvicorn: no match)
            return value.strip().lower()
        # Strictly what uvicorn's proxy middleware understands: it would silently never match
        # a typo or a network with host bits set ("10.0.0.1/8").
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            ipaddress.ip_network(entry)  # ValueError names the bad entry
        return ",".join(entries)

    @model_validator(mode="after")
    def _check_production(self) -> "Settings":
        if self.ENVIRONMENT != "production":
            return self
        if self.SECRET_KEY is None and self.SECRET_KEY_FILE is None:
            raise ValueError("production needs SECRET_KEY (or SECRET_KEY_FILE)")
        if self.SECRET_KEY is not None:
            check_secret(self.SECRET_KEY.get_secret_value())
        for name, floor in ARGON2_FLOOR.items():
            if getattr(self, name) < floor:
                raise ValueError(f"{name} below OWASP's floor ({floor}) in production")
        if self.METRICS_TOKEN is not None and len(self.METRICS_TOKEN.get_secret_value()) < 16:
            raise ValueError("METRICS_TOKEN must be at least 16 characters in production")
        return self

    @property
    def cors_origins(self) -> list[str]:
        """CORS_ORIGINS as a list."""
        return [origin.strip() for origin in self.CORS_ORIGINS.split(",") if origin.strip()]

    def secret_key(self) -> str:
        """The signing key: SECRET_KEY, or the key file (made on first start)."""
        if self.SECRET_KEY is not None:
            return self.SECRET_KEY.get_secret_value()
        path = self.SECRET_KEY_FILE or ROOT / ".vocab-secret-key"
        if not path.exists():
            # Written in full under a name of its own, then linked into place (which fails if
            # the file exists): workers or replicas starting together agree on one key, and none
            # reads a file that another has created but not yet written.
            draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
            draft.touch(mode=0o600)
            draft.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            try:
                path.hardlink_to(draft)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        key = path.read_text(encoding="utf-8").strip()
        if self.ENVIRONMENT == "production":
            check_secret(key)
        return key


def check_secret(key: str) -> None:
    """Refuse a signing key that is short or published somewhere."""
    if len(key.encode()) < 32:
        raise ValueError("SECRET_KEY must be at least 32 bytes")
    if key.lower() in WELL_KNOWN_SECRETS or len(set(key)) < 8:
        raise ValueError("SECRET_KEY is a well-known or trivial value")


settings = Settings()
logger = logging.getLogger("vocab")

# --- Database ---

DIALECT = "sqlite" if settings.DATABASE_URL.startswith("sqlite") else "postgres"
#: Ids are 32-bit on both databases; a larger one cannot exist (and would make PostgreSQL fail).
MAX_ID = 2**31 - 1
MIGRATION_LOCK = 7283421  # any number, the same in every process


async def keep_session(connection: asyncpg.Connection) -> None:
    """Give a connection back to the pool without asyncpg's reset query.

    Tortoise borrows a pooled connection for every query, and asyncpg's default reset (RESET
    ALL, UNLISTEN *, CLOSE ALL, unlock advisory locks) is one more round trip each time: a
    fifth of the CPU of a simple read. vocab never changes session state, listens or keeps a
    cursor, and its one advisory lock is released explicitly; an open transaction is still
    rolled back by asyncpg before this runs."""


class PostgresConnection(asyncpg.Connection):
    """asyncpg's connection, except that a statement that ran out of time (or whose request
    was cancelled) closes the connection instead of asking the server to cancel it.

    Asking takes a second connection to the server, which a hung server never answers, and
    asyncpg waits for that answer (up to the statement limit again) before the connection can
    roll back or return to the pool: a 15 s limit gave 30 s waits. Closing is immediate; the
    server's own statement_timeout ends what the statement left running, a closed connection
    rolls its transaction back, and the pool opens a new one when it needs it."""

    def _cancel_current_command(
        self, waiter: asyncio.Future[None], cancel_waiter: asyncio.Future[None] | None = None
    ) -> None:
        # asyncpg's protocol calls this on a timeout or a cancelled query, then marks the query
        # cancelled: closed on the loop's next turn, which also completes both waiters.
        self._loop.call_soon(self.terminate)


class Turns:
    """A number of turns, given to those who ask in the order they asked; a wait past its
    timeout raises TimeoutError.

    One timer serves all the waits, set for the earliest deadline (asyncio's Semaphore is
    fair too, but bounding each wait with asyncio.timeout, a timer made and cancelled per
    wait while it is suspended, cost a twentieth of a single-word read's CPU: 0.515 against
    0.49 ms)."""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    async def take(self, seconds: float | None) -> None:
        """Take a turn, waiting up to so many seconds (None: for ever) if none is free."""
        if self.free and not self.waiting:
            self.free -= 1
            return
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        deadline = math.inf if seconds is None else loop.time() + seconds
        self.waiting.append((deadline, turn))
        if deadline < math.inf and (self.timer is None or deadline < self.timer.when()):
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(deadline, self.expire, loop)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a turn as it was cancelled
                self.give()
            raise

    def give(self) -> None:
        """Give a turn back: to the oldest wait, if there is one."""
        while self.waiting:
            _, turn = self.waiting.popleft()
            if not turn.done():  # not timed out or cancelled
                turn.set_result(None)
                return
        self.free += 1

    def expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """End the waits that are past their deadline; set the timer for the next one."""
        self.timer, now = None, loop.time()
        for deadline, turn in self.waiting:
            if deadline <= now and not turn.done():
                turn.set_exception(TimeoutError("no database connection came free in time"))
        self.waiting = deque(wait for wait in self.waiting if not wait[1].done())
        deadline = min((deadline for deadline, _ in self.waiting), default=math.inf)
        if deadline < math.inf:
            self.timer = loop.call_at(deadline, self.expire, loop)


class PostgresPool(asyncpg.Pool):
    """asyncpg's pool, where connections go to the requests waiting for one in the order they
    came, and a request waits DATABASE_TIMEOUT_SECONDS at most.

    asyncpg's own queue wakes the longest waiter when a connection comes back, but a request
    arriving before that waiter runs takes the connection, and the waiter goes to the back:
    under load (more requests than connections) a few requests waited for many others, and
    p99 latency was four times the median. So a turn (one per connection) is taken first,
    in order, then the connection, and the turn is given back after the connection. And
    Tortoise asks for a connection without a timeout: with every connection stuck on a hung
    server, the wait would never end."""

    def __init__(self, *args: Any, max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, max_size=max_size, **kwargs)
        self.turns = Turns(max_size)
        self.holding: set[Any] = set()  # the connections lent with a turn

    def acquire(self, *, timeout: float | None = None) -> Any:
        if timeout is None:
            timeout = settings.DATABASE_TIMEOUT_SECONDS
        return super().acquire(timeout=timeout)

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's)
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        await self.turns.take(timeout)
        try:
            # With a turn a connection is free, but it may have to be made anew (after an
            # outage): that counts against the same deadline.
            async with asyncio.timeout_at(deadline):
                connection = await super()._acquire(None)
        except BaseException:
            self.turns.give()
            raise
        self.holding.add(connection)
        return connection

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        try:
            await super().release(connection, timeout=timeout)
        finally:
            if connection in self.holding:  # not if it is given back twice
                self.holding.remove(connection)
                self.turns.give()


class PostgresClient(AsyncpgDBClient):
    """Tortoise's asyncpg client with the two waits it leaves open bounded: a connection from
    the pool (see PostgresPool) and closing the pool at shutdown (Tortoise gives a hung server
    10 s, which would keep a SIGTERM waiting)."""

    async def create_pool(self, **options: Any) -> asyncpg.Pool:
        # As asyncpg.create_pool does, with its defaults, but of our class.
        return await PostgresPool(None, **{**asyncpg.create_pool.__kwdefaults__, **options})

    async def _close(self) -> None:
        if self._pool is not None:
            try:
                # Long enough for a server that answers; a hung one has its connections cut.
                await asyncio.wait_for(self._pool.close(), 1)
            except TimeoutError:
                self._pool.terminate()
            self._pool = None


class SqliteTransaction(SqliteTransactionWrapper):
    """A SQLite transaction that takes the database's write lock as it begins.

    Under a plain (deferred) BEGIN a transaction starts as a reader; if it then writes (a
    review reads its word, then updates it) after another process has written since it began,
    SQLite cannot let it wait and fails at once with "database is locked", whatever the busy
    timeout: with two workers on one file, 39–47 % of reviews failed that way. BEGIN
    IMMEDIATE takes the write lock first, waiting up to busy_timeout for it, so transactions
    from every worker queue up instead. (Within one process Tortoise already runs them one at
    a time on its one connection.)"""

    async def begin(self) -> None:
        try:
            await self._connection.commit()  # as Tortoise's: ends anything left open
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # e.g. busy: a 503, see database_unavailable
            raise OperationalError(exc) from exc


class SqliteTransactionContext(tortoise_sqlite.SqliteTransactionContext):
    """Tortoise's SQLite transaction context, except that a BEGIN that fails or is cut short
    gives back what it took: Tortoise's would keep the connection's lock (and every later
    query of the process waiting for it), and a BEGIN cancelled half-way may still run in
    aiosqlite's thread and leave a transaction open for the next statements to fall into."""

    connection: SqliteTransaction

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            await self.connection.begin()
        except BaseException:
            try:
                if self.connection._connection is not None:
                    # Queued behind the BEGIN in aiosqlite's thread; nothing to end otherwise.
                    await asyncio.shield(self.connection._connection.rollback())
            finally:
                self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection


class SqliteClient(tortoise_sqlite.SqliteClient):
    """Tortoise's SQLite client, whose transactions begin with the write lock (see above)."""

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(SqliteTransaction(self), self._lock)


def get_client_class(db_info: dict[str, Any]) -> type[BaseDBAsyncClient]:
    """Tortoise's hook for a database backend: TORTOISE_ORM names this module as its engine,
    so that Tortoise connects with the clients above."""
    return PostgresClient if DIALECT == "postgres" else SqliteClient


def database_connection(*, limit_statements: bool = True) -> dict[str, Any]:
    """DATABASE_URL as Tortoise connection settings, every wait bounded by
    DATABASE_TIMEOUT_SECONDS (`limit_statements=False`: statements may take as long as they
    need, for migrations run from the command line)."""
    connection: dict[str, Any] = expand_db_url(settings.DATABASE_URL)
    connection["engine"] = __name__  # `python vocab.py` runs as __main__
    timeout = settings.DATABASE_TIMEOUT_SECONDS
    if DIALECT == "sqlite":
        # Set first (pragmas run in order), so that even the journal mode waits for a lock.
        connection["credentials"] = {
            "busy_timeout": round(timeout * 1000),
            **connection["credentials"],
        }
        return connection
    credentials = connection["credentials"]
    credentials.setdefault("minsize", 1)
    credentials.setdefault("maxsize", settings.DATABASE_POOL_SIZE)
    credentials.setdefault("timeout", timeout)  # to connect
    credentials.setdefault("reset", keep_session)
    credentials.setdefault("connection_class", PostgresConnection)
    if limit_statements:
        # The server cancels a statement at the limit (its connection stays usable); the client
        # waits half a second more, in case the server is hung and cancels nothing.
        credentials.setdefault(
            "server_settings", {"statement_timeout": f"{round(timeout * 1000)}ms"}
        )
        credentials.setdefault("command_timeout", timeout + 0.5)
    return connection


TORTOISE_ORM: dict[str, Any] = {
    "connections": {"default": database_connection()},
    "apps": {"models": {"models": ["models", "aerich.models"], "default_connection": "default"}},
    "use_tz": True,
    "timezone": "UTC",
}
#: Aerich writes SQL in one dialect, so each database has its own migration set.
MIGRATIONS = ROOT / "migrations" / DIALECT
#: Errors that mean the database cannot be reached (a 503, not a 500).
DATABASE_DOWN = (
    OSError,  # includes connection refused and timeouts
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, or statement_timeout
    # A server shutting down ends connections that sit idle in a transaction with an error of
    # its own; asyncpg is still consuming it when the next statement (a COMMIT) comes, which
    # then fails with "another operation is in progress" (seen under writes during a stop).
    asyncpg.InternalClientError,
)
#: SQLite's "database is locked": another process held the write lock past busy_timeout
#: (primary result codes; the extended ones keep theirs in the low byte).
SQLITE_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def utcnow() -> datetime:
    """Now, in UTC: the one clock that due dates, reviews and statistics read (tests set it)."""
    return timezone.now()


def database_unavailable(exc: BaseException) -> BaseException | None:
    """The error in `exc` (or what caused it) that means the database cannot be reached or
    did not answer in time, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DATABASE_DOWN) or (
            isinstance(seen, sqlite3.OperationalError)
            and (seen.sqlite_errorcode & 0xFF) in SQLITE_BUSY
        ):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass
class Statement:
    """The SQL the ORM built for a PreparedQuery (for one length of each list argument), and
    where each argument goes in its parameters."""

    sql: str
    parameters: list[Any]
    slots: list[int | None]  # per parameter: the (flattened) argument it takes, or a constant


class PreparedQuery:
    """An ORM query whose SQL Tortoise builds once, then runs with new values each time.

    Tortoise builds a query's SQL anew on every run (pypika terms, copies, quoting): on a
    single-word read that was more of the request's CPU than the database's answer. Here the
    ORM builds the query from `build` once, with stand-in values for its arguments; each run
    passes the arguments in place of the stand-ins and converts the columns as the ORM's own
    `values()` would, so the rows are exactly the ORM query's (tests compare the two on both
    databases). An argument is an integer (an id, an offset, a limit) unless `build` says
    it is a `datetime` or a `list[int]` (ids for `__in`: SQL is built once per list length).
    For hot paths only: a query whose shape varies (filters, sorting) is the ORM's to build
    each time."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self.build = build
        kinds = [p.annotation for p in inspect.signature(build).parameters.values()]
        self.is_list = [get_origin(kind) is list for kind in kinds]
        self.is_datetime = [kind is datetime for kind in kinds]
        self.has_lists = any(self.is_list)
        self.statements: dict[tuple[int, ...], Statement] = {}
        self.converters: list[tuple[str, Callable[[Any], Any]]] = []
        self.model: type[Any] = Model
        # What a model query's executor needs to make its objects (see `objects`).
        self.select_related_idx: list[Any] = []
        self.custom_fields: list[str] = []

    @staticmethod
    def stand_in(number: int, is_datetime: bool) -> Any:
        """The `number`th stand-in: a value that no constant of these queries equals (a valid
        id, offset or limit, or an instant, which the ORM checks), so that where it lands in
        the SQL's parameters is where that argument goes."""
        if is_datetime:
            return datetime(1987, 6, 5, 4, 3, 2, number, tzinfo=UTC)
        return 1_987_654_321 + number

    def prepare(self, lengths: tuple[int, ...]) -> Statement:
        """Have the ORM build the SQL for these lengths of the list arguments (once the
        database is open: it depends on the dialect)."""
        numbers, lists = count(), iter(lengths)
        arguments = [
            [self.stand_in(next(numbers), False) for _ in range(next(lists))]
            if is_list
            else self.stand_in(next(numbers), is_datetime)
            for is_list, is_datetime in zip(self.is_list, self.is_datetime, strict=True)
        ]
        query = self.build(*arguments)
        query._choose_db_if_not_chosen()
        query._make_query()
        sql, parameters = query.query.get_parameterized_sql()
        place = {value: n for n, value in enumerate(self.flatten(arguments))}
        self.model = query.model
        if isinstance(query, QuerySet):
            self.select_related_idx = query._select_related_idx
            self.custom_fields = list(query._annotations)
        if isinstance(query, ValuesQuery):  # as its _execute converts (a lambda: "as it is")
            resolve = partial(query.resolve_to_python_value, self.model)
            converters = [(a, resolve(f)) for a, f in query._fields_for_select.items()]
            self.converters = [(a, f) for a, f in converters if self.converts(f)]
        slots = [place.get(p) if isinstance(p, int | datetime) else None for p in parameters]
        return Statement(sql, parameters, slots)

    def flatten(self, arguments: Sequence[Any]) -> list[Any]:
        """The arguments with each list's items in its place."""
        if not self.has_lists:
            return list(arguments)
        flat: list[Any] = []
        for argument, is_list in zip(arguments, self.is_list, strict=True):
            flat.extend(argument) if is_list else flat.append(argument)
        return flat

    @staticmethod
    def converts(convert: Callable[[Any], Any]) -> bool:
        """Whether a column's conversion changes anything. A lambda is the ORM's "as it is";
        on PostgreSQL asyncpg already gives aware datetimes (the ORM's conversion only moves
        them to another UTC object), and an enum column's text equals its StrEnum member
        (the API code makes members of it): a tenth of a list request's CPU, saved."""
        if isinstance(convert, types.LambdaType):
            return False
        field = getattr(convert, "__self__", None)
        return DIALECT != "postgres" or not isinstance(field, DatetimeField | CharEnumFieldInstance)

    def bind(self, arguments: tuple[Any, ...]) -> tuple[str, list[Any]]:
        """The SQL and its parameters for one run."""
        lengths = (
            tuple(len(a) for a, is_list in zip(arguments, self.is_list, strict=True) if is_list)
            if self.has_lists
            else ()
        )
        statement = self.statements.get(lengths)
        if statement is None:
            statement = self.statements[lengths] = self.prepare(lengths)
        flat = self.flatten(arguments)
        return statement.sql, [
            p if s is None else flat[s]
            for s, p in zip(statement.slots, statement.parameters, strict=True)
        ]

    async def rows(self, *arguments: Any) -> list[dict[str, Any]]:
        """Run a `values()` query: its rows, as the ORM would return them."""
        sql, parameters = self.bind(arguments)
        rows: list[dict[str, Any]]
        rows = await self.model._choose_db().execute_query_dict(sql, parameters)
        for row in rows:
            for column, convert in self.converters:
                row[column] = convert(row[column])
        return rows

    async def execute(self, *arguments: Any) -> None:
        """Run an update."""
        sql, parameters = self.bind(arguments)
        await self.model._choose_db(for_write=True).execute_query(sql, parameters)

    async def objects(self, *arguments: Any) -> list[Any]:
        """Run a model query: its objects (and those it selects along), as its own executor
        makes them."""
        sql, parameters = self.bind(arguments)
        db = self.model._choose_db()
        executor = db.executor_class(
            model=self.model, db=db, select_related_idx=self.select_related_idx
        )
        objects: list[Any] = await executor.execute_select(
            sql, parameters, custom_fields=self.custom_fields
        )
        return objects


@asynccontextmanager
async def migration_lock() -> AsyncIterator[None]:
    """Held while migrating: workers and replicas start together, one migrates while the
    others wait, then they find nothing left to do."""
    if DIALECT == "postgres":
        # An advisory lock on a connection of its own, asked for every half second: one
        # statement waiting for it would meet statement_timeout, and a migration may be long.
        async with connections.get("default").acquire_connection() as lock:
            locked = partial(lock.fetchval, "SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK)
            while not await locked():  # noqa: ASYNC110 (another process holds it: polled)
                await asyncio.sleep(0.5)
            try:
                yield
            finally:
                await lock.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return
    database = TORTOISE_ORM["connections"]["default"]["credentials"]["file_path"]
    if database == ":memory:":  # one connection, one process: nothing to coordinate
        yield
        return
    import fcntl  # imported here: only SQLite files need it (and it is POSIX-only)

    # A lock file beside the database (the kernel frees it if the process dies); never the
    # database file itself, whose SQLite locks closing another descriptor of it would drop.
    with open(f"{database}-migrations.lock", "a") as lock_file:  # noqa: ASYNC230 (instant)
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


async def migrate() -> list[str]:
    """Apply pending migrations; returns the files applied (none on a second run)."""
    command = Command(tortoise_config=TORTOISE_ORM, app="models", location=str(MIGRATIONS))
    async with migration_lock():
        await command.init()
        return await command.upgrade(run_in_transaction=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the database, bring its schema up to date, and close it on shutdown."""
    # Our own access log (with request ids) replaces uvicorn's.
    logging.getLogger("uvicorn.access").disabled = True
    async with RegisterTortoise(app, config=TORTOISE_ORM, generate_schemas=False):
        if settings.MIGRATE_ON_START:
            applied = await migrate()
            if applied:
                logger.info("applied migrations: %s", ", ".join(applied))
        import_jobs.start()
        await fail_jobs_left_behind()
        # What start-up made (framework, ORM, routes, schemas) lives as long as the process:
        # out of the collector's sight, so that collections scan only what requests make
        # (they were a part of the slowest requests' time).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await import_jobs.stop()
            await outage.stop()
    exit_status.lifespan_ended()


# --- API conventions ---
# Errors are `{"detail": ...}`; every route lists the error statuses it can answer, so that the
# OpenAPI schema (and a schema-aware client) knows them all. A resource that is someone else's is
# as missing as one that never existed: 404, never 403.

Tortoise.init_models(["models"], "models")  # lets the generated schemas see relations


class ErrorOut(BaseModel):
    """An error: what went wrong, for a person to read."""

    detail: str


#: When a 503 (the database unavailable, a request out of time) says to try again.
RETRY_AFTER = {"Retry-After": "5"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {code: {"model": ErrorOut} for code in codes}


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON-ready values as a response, serialised once by pydantic-core: byte for byte what
    FastAPI makes of the route's response model, which the route still declares for /docs.
    For hot reads of rows the database already typed, where building models only to serialise
    them was a fifth of a list request's CPU."""
    return Response(to_json(content), status_code, headers, "application/json")


def not_found(thing: str) -> HTTPException:
    """The 404 for a missing (or another user's) resource."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{thing} not found")


@asynccontextmanager
async def conflict_as_409(detail: str) -> AsyncIterator[None]:
    """Turn a unique-constraint violation into 409 with a fixed message (never the SQL), in
    a transaction of its own."""
    try:
        # A savepoint inside another, so a violation does not poison an enclosing PostgreSQL
        # transaction.
        async with in_transaction():
            yield
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=detail) from None


#: Text that is stored or searched for may not contain NUL, which PostgreSQL cannot store
#: ("invalid byte sequence for encoding UTF8: 0x00" would be a 500): it is a 422 instead.
NO_NUL = r"^[^\x00]*$"

CREDENTIALS_ERROR = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="Could not validate credentials",
    headers={"WWW-Authenticate": "Bearer"},
)
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)


@dataclass(frozen=True)
class Caller:
    """Whom a valid access token names, before the database has been asked: the user's id and
    the `token_version` the token was issued under."""

    user_id: int
    token_version: int

    def signed_in(self, token_version: int) -> bool:
        """Whether the token still counts, given the user's current `token_version` (a
        password change or sign-out everywhere moves it on)."""
        return token_version == self.token_version


async def get_caller(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Caller:
    """The caller named by a valid access token (signature, expiry, kind); whether the user
    still exists and has not changed their password since is for the query that reads them."""
    if token is None:
        raise CREDENTIALS_ERROR
    claims = decode_token(token, "access", CREDENTIALS_ERROR)
    request.state.user_id = int(claims["sub"])  # for the access log
    return Caller(int(claims["sub"]), claims["ver"])


#: The user by id; with PreparedQuery, as every authenticated request reads it.
USER_BY_ID = PreparedQuery(lambda user_id: User.filter(id=user_id))


async def user_of(caller: Caller) -> User:
    """The caller's user, who must still exist and not have changed their password since the
    token was issued."""
    users = await USER_BY_ID.objects(caller.user_id)
    if not users or not caller.signed_in(users[0].token_version):
        raise CREDENTIALS_ERROR
    user: User = users[0]
    return user


async def get_current_user(caller: Annotated[Caller, Depends(get_caller)]) -> User:
    """The user named by a valid access token (see `user_of`)."""
    return await user_of(caller)


CurrentCaller = Annotated[Caller, Depends(get_caller)]
CurrentUser = Annotated[User, Depends(get_current_user)]


def is_json_media_type(content_type: bytes) -> bool:
    """Whether a Content-Type names JSON (`application/json`, `application/*+json`), as FastAPI
    decides whether to parse a body as JSON."""
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class BodyLimitRoute(APIRoute):
    """A route whose request body is checked before it is read.

    Its size may be at most `max_bytes` (MAX_BODY_BYTES unless its router declares a limit of
    its own with `body_limit`): 413 from Content-Length before anything is read, or as soon as
    a streamed body passes the limit. Ours rather than FastAPI's `max_body_size`: Starlette's
    limiter behind it answers a declared oversize body in plain text, where every error of this
    API is JSON.

    A route that takes a JSON body answers 415 to a body of another Content-Type (or of none),
    where FastAPI would try it as JSON or fail validation with 422; the OpenAPI schema lists
    the 415. Form and multipart routes are left to FastAPI."""

    max_bytes = settings.MAX_BODY_BYTES

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        # Before APIRoute builds the handler (see get_route_handler); the router's own
        # dependencies are among these already.
        self.idempotent = next(
            (
                dependency.dependency
                for dependency in options.get("dependencies") or []
                if isinstance(dependency.dependency, Idempotent)
            ),
            None,
        )
        super().__init__(path, endpoint, **options)
        self.takes_json = self.body_field is not None and not isinstance(
            self.body_field.field_info,
            params.Form,  # multipart files are forms too
        )
        # Documented before the router's inclusion copies the responses.
        if self.takes_json:
            self.responses = {**self.responses, **error_responses(415)}
        if self.idempotent is not None:
            success = self.status_code or 200
            replayed = {
                "description": "`true` when this is the stored response to an earlier request "
                "with the same Idempotency-Key, replayed (nothing was done again).",
                "schema": {"type": "string", "enum": ["true"]},
            }
            self.responses = {
                **self.responses,
                **error_responses(409),
                success: {"headers": {"Idempotent-Replayed": replayed}},
            }

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, with Idempotency-Key around it on an idempotent route."""
        handler = super().get_route_handler()
        if self.idempotent is None:
            return handler
        return partial(self.idempotent.handle, handler)

    def too_large(self) -> HTTPException:
        """The 413 for a body over the limit."""
        return HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"Request body is larger than {self.max_bytes} bytes",
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.body_field is None:  # FastAPI never reads this route's body: nothing to check
            await super().handle(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            answer = JSONResponse({"detail": self.too_large().detail}, status_code=413)
            await answer(scope, receive, send)
            return
        if self.takes_json:
            content_type = headers.get(b"content-type")
            has_body = declared not in (b"", b"0") or b"transfer-encoding" in headers
            if (content_type is None and has_body) or (
                content_type is not None and not is_json_media_type(content_type)
            ):
                unsupported = {"detail": "Content-Type must be application/json"}
                await JSONResponse(unsupported, status_code=415)(scope, receive, send)
                return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self.too_large()  # FastAPI turns it into the JSON 413
            return message

        await super().handle(scope, receive_within_limit, send)


def body_limit(max_bytes: int) -> type[BodyLimitRoute]:
    """A route class for a router whose request bodies may be up to `max_bytes`."""
    return type(f"BodyLimit{max_bytes}Route", (BodyLimitRoute,), {"max_bytes": max_bytes})


# Safe retries: a POST that creates or changes data takes an `Idempotency-Key` (IETF httpapi's
# draft, as payment APIs do it). The first request with a key leaves a marker row in a short
# transaction of its own, so that a retry while it runs (in any worker or replica) answers 409;
# it then runs in one transaction with the storing of its response, so that a committed write
# always has its stored response and a rolled-back one never does (an import, which commits a
# chunk at a time, stores it once done: see Idempotent.atomic). A retry with the same body
# gets that response again with `Idempotent-Replayed: true`; another body with the key is 422.
# Responses to requests that were refused before they were processed are not kept, so that a
# retry can still succeed: a bad body or credentials (422 from validation, 401), 429, 5xx.
# Without the header nothing of this runs: no query, no transaction.

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: 1–255 visible ASCII characters (a UUID is the usual choice).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: Statuses never kept for a retry: the request was refused before it was processed.
NOT_KEPT = {400, 401, 403, 408, 429}
#: The response headers a replay repeats (the rest are the server's of the moment).
REPLAYED_HEADERS = ("content-type", "location")
#: How often a process deletes lapsed keys (as it handles a keyed request).
PURGE_EVERY_SECONDS = 60.0
#: Request fingerprints are keyed (HMAC), so that a stored one cannot be tested against guesses
#: of a registration's password; the key is the server's secret's, under a label of its own.
FINGERPRINT_KEY = hashlib.sha256(b"vocab idempotency\0" + settings.secret_key().encode()).digest()
KEY_IN_FLIGHT = HTTPException(
    status.HTTP_409_CONFLICT,
    detail="A request with this Idempotency-Key is still being processed; retry it shortly",
    headers={"Retry-After": "1"},
)
KEY_REUSED = HTTPException(
    status.HTTP_422_UNPROCESSABLE_CONTENT,
    detail=[
        {
            "type": "idempotency_key_reused",
            "loc": ["header", IDEMPOTENCY_HEADER],
            "msg": "This Idempotency-Key was used for a different request (another body or "
            "path); use a new key for a new request",
        }
    ],
)
BAD_KEY = HTTPException(
    status.HTTP_422_UNPROCESSABLE_CONTENT,
    detail=[
        {
            "type": "idempotency_key_invalid",
            "loc": ["header", IDEMPOTENCY_HEADER],
            "msg": "Idempotency-Key must be one header of 1 to 255 visible ASCII characters "
            "(no spaces), such as a UUID",
        }
    ],
)


class Superseded(Exception):
    """This request's marker lapsed and a retry took the key over: its work must not commit."""


def keyed_hash(*parts: bytes) -> str:
    """An HMAC-SHA256 (hex) of the parts under FINGERPRINT_KEY."""
    digest = hmac.new(FINGERPRINT_KEY, digestmod=hashlib.sha256)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))  # so that parts cannot run into each other
        digest.update(part)
    return digest.hexdigest()


def fingerprint_of(request: Request) -> "hmac.HMAC":
    """The start of a request's fingerprint (an HMAC under FINGERPRINT_KEY): its method and
    path; the body follows."""
    target = f"{request.method} {request.url.path}?{request.url.query}".encode()
    digest = hmac.new(FINGERPRINT_KEY, digestmod=hashlib.sha256)
    digest.update(len(target).to_bytes(8, "big"))  # so that the body cannot run into it
    digest.update(target)
    return digest


def request_fingerprint(request: Request, body: bytes) -> str:
    """What a retry must repeat: the method, path and JSON body, which counts by its value
    (key order and spacing aside)."""
    with suppress(ValueError):  # not JSON: its bytes count (the route says 422)
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = fingerprint_of(request)
    digest.update(body)
    return digest.hexdigest()


#: Bytes of a spooled body kept in memory before the rest goes to a temporary file.
SPOOL_IN_MEMORY = 1_048_576


async def spooled_fingerprint(request: Request) -> tuple[Request, str, Callable[[], None]]:
    """The fingerprint of a request whose body may be large (an upload), read once as it
    streams into a temporary file, never whole into memory; a request that reads the body
    again from that file; and what closes the file. A multipart body counts without its
    boundary, which a client draws anew for every request it sends."""
    message = email.message.Message()
    message["content-type"] = request.headers.get("content-type", "")
    boundary = message.get_param("boundary")
    boundary_bytes = boundary.encode("latin-1") if isinstance(boundary, str) else b""
    # Kept back at each chunk's end: the start of a boundary the next chunk completes.
    keep = max(len(boundary_bytes) - 1, 0)
    digest, pending = fingerprint_of(request), b""
    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115 (the caller closes it)
    async for chunk in request.stream():  # over the size limit: 413 here, before anything
        spool.write(chunk)
        pending += chunk
        if boundary_bytes:
            pending = pending.replace(boundary_bytes, b"")
        digest.update(pending[: len(pending) - keep])
        pending = pending[len(pending) - keep :]
    digest.update(pending)
    spool.seek(0)

    async def replay() -> Message:
        chunk = spool.read(65_536)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    return Request(request.scope, replay), digest.hexdigest(), spool.close


def user_scope(request: Request, body: bytes) -> tuple[str, int] | None:
    """The keys of the user whose valid access token the request carries (their own
    namespace); None without one: the route answers 401 itself, and nothing is kept."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        user_id = int(decode_token(token, "access", CREDENTIALS_ERROR)["sub"])
    except HTTPException:
        return None
    request.state.user_id = user_id  # for the access log, should the request be replayed
    return f"user:{user_id}", user_id


def registration_scope(request: Request, body: bytes) -> tuple[str, None] | None:
    """Registration keys, which have no user yet: one namespace per email address (by its
    keyed hash), so that strangers' keys never meet. A replay needs the same body, password
    included, so it shows nothing its sender does not know. None without an email: the
    route answers 422 itself."""
    with suppress(ValueError):
        sent = json.loads(body)
        if isinstance(sent, dict) and isinstance(sent.get("email"), str):
            return f"register:{keyed_hash(sent['email'].strip().lower().encode())}", None
    return None


@dataclass(frozen=True)
class Idempotent:
    """The dependency that gives a POST route `Idempotency-Key` (see BodyLimitRoute): it
    documents the header; BodyLimitRoute does the work. `scope_of` says whose keys a request
    uses (and for which user), or None where the route will refuse it anyway.

    `atomic`: the route's work and the storing of its response are one transaction (its own
    transactions become savepoints in it). A route that writes in steps that must commit on
    their own (an import, a chunk at a time, so that other writers are not held up) says
    False: its response is stored once it has finished, and a retry after a crash half-way
    runs it again, which must then do nothing twice by itself (an import skips the words it
    finds)."""

    scope_of: Callable[[Request, bytes], tuple[str, int | None] | None]
    atomic: bool = True

    async def __call__(  # async: FastAPI runs a plain function on a thread
        self,
        key: Annotated[
            str | None,
            Header(
                alias=IDEMPOTENCY_HEADER,
                min_length=1,
                max_length=255,
                pattern=r"^[\x21-\x7e]+$",
                description=(
                    "Makes retrying this request safe. The first response to a key is kept "
                    "(24 h by default) and answered again, with `Idempotent-Replayed: true`, "
                    "to a retry with the same body, which changes nothing; the same key with "
                    "another body answers 422, and a retry while the first request still runs "
                    "409. 1–255 visible ASCII characters: use a new random one (a UUID) per "
                    "request, and the same one for its retries."
                ),
            ),
        ] = None,
    ) -> None:
        """Idempotency-Key (checked before the route runs)."""

    async def handle(
        self, handler: Callable[[Request], Awaitable[Response]], request: Request
    ) -> Response:
        """Serve a request to an idempotent route: as it is without a key; with one, replayed,
        refused, or run in one transaction with the storing of its response."""
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return await handler(request)
        sent_twice = len(request.headers.getlist(IDEMPOTENCY_HEADER)) > 1
        if sent_twice or not IDEMPOTENCY_KEY.fullmatch(key):
            raise BAD_KEY
        if is_json_media_type(request.headers.get("content-type", "").encode("latin-1")):
            body = await request.body()  # over the size limit: 413 here, before anything
            fingerprint, close = request_fingerprint(request, body), lambda: None
        else:  # an upload, which may be large
            body = b""
            request, fingerprint, close = await spooled_fingerprint(request)
        try:
            return await self.keyed(handler, request, key, body, fingerprint)
        finally:
            close()

    async def keyed(
        self,
        handler: Callable[[Request], Awaitable[Response]],
        request: Request,
        key: str,
        body: bytes,
        fingerprint: str,
    ) -> Response:
        """Serve a request with a well-formed key, whose body has been read."""
        scope = self.scope_of(request, body)
        if scope is None:
            return await handler(request)
        claimed = await claim_key(*scope, key, fingerprint)
        if claimed is None:  # the token's user is gone: the route answers 401
            return await handler(request)
        if isinstance(claimed, Response):
            return claimed
        try:
            async with in_transaction() if self.atomic else nullcontext():
                response = await handler(request)
                await keep_response(claimed, response)
            return response
        except Superseded:
            raise KEY_IN_FLIGHT from None
        except HTTPException as exc:
            # Processed and refused (404, 409, a 422 the route decided): kept, as the answer
            # to every retry; everything the request did was rolled back.
            if exc.status_code in NOT_KEPT or exc.status_code >= 500:
                await release_key(claimed)
                raise
            response = await http_error(request, exc)
            try:
                await keep_response(claimed, response)
            except Superseded:
                raise KEY_IN_FLIGHT from None
            return response
        except Exception as exc:
            # Not processed (a body that fails validation) or failed: the key is free again.
            # Not while the database is away (that would wait for it again): the marker lapses.
            if database_unavailable(exc) is None:
                await release_key(claimed)
            raise


IDEMPOTENT = Depends(Idempotent(user_scope))
IDEMPOTENT_IN_STEPS = Depends(Idempotent(user_scope, atomic=False))
IDEMPOTENT_REGISTRATION = Depends(Idempotent(registration_scope))
next_purge = 0.0


async def claim_key(
    scope: str, user_id: int | None, key: str, fingerprint: str
) -> IdempotencyKey | Response | None:
    """Take the key for this request (a marker row, committed at once), or answer for it: the
    stored response of the first request with it, 409 while that one runs, 422 for another
    request under the same key. None when the user has just been deleted (no key for them)."""
    global next_purge
    if perf_counter() >= next_purge:
        next_purge = perf_counter() + PURGE_EVERY_SECONDS
        await IdempotencyKey.filter(expires_at__lt=utcnow()).delete()
    for _ in range(3):  # a lapsed row is deleted, then the key taken anew
        now = utcnow()
        marker_lapses = now + timedelta(seconds=settings.REQUEST_TIMEOUT_SECONDS + 1)
        try:
            return await IdempotencyKey.create(
                scope=scope,
                key=key,
                user_id=user_id,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=marker_lapses,
            )
        except IntegrityError:  # the key is taken (or, rarely, the user was just deleted)
            pass
        stored = await IdempotencyKey.get_or_none(scope=scope, key=key)
        if stored is None:
            if user_id is not None and not await User.exists(id=user_id):
                return None
            continue  # purged in between: take it
        if stored.expires_at <= now:
            # Only if it has not been completed meanwhile (PostgreSQL re-reads a row it waited
            # for); a request whose marker lapsed under it finds it gone and rolls back.
            await IdempotencyKey.filter(id=stored.id, expires_at__lte=now).delete()
            continue
        if not hmac.compare_digest(stored.fingerprint, fingerprint):
            raise KEY_REUSED
        if stored.status_code is None:
            raise KEY_IN_FLIGHT
        return replay(stored)
    raise KEY_IN_FLIGHT  # taken and lapsed again and again: as busy as a key gets


def replay(stored: IdempotencyKey) -> Response:
    """The stored response again, saying it is a replay."""
    assert stored.status_code is not None and stored.response_body is not None
    headers = json.loads(stored.response_headers or "{}")
    return Response(
        stored.response_body.encode(),
        status_code=stored.status_code,
        headers={**headers, "Idempotent-Replayed": "true"},
    )


async def keep_response(claimed: IdempotencyKey, response: Response) -> None:
    """Store the response on the request's marker (in the request's transaction, when it
    wrote anything); Superseded if the marker lapsed and a retry has taken the key."""
    headers = {name: value for name in REPLAYED_HEADERS if (value := response.headers.get(name))}
    expires_at = utcnow() + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    kept = await IdempotencyKey.filter(id=claimed.id, status_code__isnull=True).update(
        status_code=response.status_code,
        response_headers=json.dumps(headers),
        response_body=bytes(response.body).decode(),
        expires_at=expires_at,
    )
    if not kept:
        raise Superseded


async def release_key(claimed: IdempotencyKey) -> None:
    """Free the key of a request that was not processed, so that a retry runs it; should
    that fail, the request's own error still goes out, and the marker lapses."""
    try:
        await IdempotencyKey.filter(id=claimed.id, status_code__isnull=True).delete()
    except Exception:
        logger.debug("could not free an idempotency key", exc_info=True)


# --- Auth ---
# Passwords are argon2id; an access token is a short-lived JWT, a refresh token a JWT known to
# the database by its id only, rotated on every use. Failed sign-ins and registrations are
# rate-limited.

password_hasher = PasswordHash(
    (
        Argon2Hasher(
            memory_cost=settings.ARGON2_MEMORY_KIB,
            time_cost=settings.ARGON2_TIME_COST,
            parallelism=settings.ARGON2_PARALLELISM,
        ),
    )
)
# Login checks a password against this when the email is unknown, so that a wrong email costs
# as much time as a wrong password and response times do not reveal who has an account.
DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))
SIGNING_KEY = OctKey.import_key(settings.secret_key())
ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]

LOGIN_ERROR = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="Incorrect email or password",
    headers={"WWW-Authenticate": "Bearer"},
)
REFRESH_ERROR = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="Invalid refresh token",
    headers={"WWW-Authenticate": "Bearer"},
)
EMAIL_TAKEN = "Email already registered"

if TYPE_CHECKING:  # a class made at run time is opaque to the type checker: name its base
    UserOut = PydanticModel
else:
    #: A user as the API shows them (registration answers one; the password hash is excluded
    #: on the model).
    UserOut = pydantic_model_creator(User, name="UserOut")


Email = Annotated[EmailStr, StringConstraints(max_length=320)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class UserCreate(BaseModel):
    """Registration: an email and a password of 8–128 characters."""

    model_config = ConfigDict(strict=True)

    email: Email
    password: Password


class TokenPair(BaseModel):
    """A short-lived access token and the refresh token that renews it."""

    access_token: str = Field(description="Send it as `Authorization: Bearer <token>`.")
    refresh_token: str = Field(description="Trade it at `/auth/refresh` for a new pair, once.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    """A refresh token, to renew (`/auth/refresh`) or end (`/auth/logout`) a login."""

    model_config = ConfigDict(strict=True)

    refresh_token: Annotated[str, StringConstraints(max_length=4096)]


# Failed sign-ins are counted three ways, as identity services do: per email and client address
# together (someone mistyping, or guessing one account from one place), per client address
# across all emails (one place trying many accounts; generous, since a school or an office
# shares one address), and per email across all addresses (NIST SP 800-63B's cap on one
# account). A correct sign-in of another account from the same address is refused only once
# that address has used its whole cross-account budget. Registrations are counted per client.
# The counters live in RATE_LIMIT_STORAGE: this process's memory by default (each worker or
# replica counts on its own, so N replicas allow up to N times the limit), or Redis shared by
# all of them.
rate_storage = storage_from_string(
    "async+" + settings.RATE_LIMIT_STORAGE,
    # redis-py, already a dependency, rather than limits' default Redis client
    **({"implementation": "redispy"} if settings.RATE_LIMIT_STORAGE.startswith("redis") else {}),
)
rate_limiter = MovingWindowRateLimiter(rate_storage)


def rate_limit(value: str) -> limits.RateLimitItem | None:
    """A limit such as "5/minute", or None when it is "off"."""
    return None if value.lower() == "off" else limits.parse(value)


LOGIN_LIMIT = rate_limit(settings.RATE_LIMIT_LOGIN)
LOGIN_CLIENT_LIMIT = rate_limit(settings.RATE_LIMIT_LOGIN_CLIENT)
LOGIN_ACCOUNT_LIMIT = rate_limit(settings.RATE_LIMIT_LOGIN_ACCOUNT)
REGISTER_LIMIT = rate_limit(settings.RATE_LIMIT_REGISTER)
#: A rate limit and the key it counts under.
RateCounter = tuple[limits.RateLimitItem, str]


def client_address(request: Request) -> str:
    """Who is asking, for rate limits: the peer's IP, or the client a trusted proxy names in
    X-Forwarded-For (FORWARDED_ALLOW_IPS). An IPv6 client counts as its /64 network, since
    one host is routinely given a whole /64 to pick addresses from."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class LoginCounters:
    """The keys a sign-in's failures count under. Emails are hashed: the keys stay short
    (a sign-in name can be long) and a Redis holding them lists no one's address."""

    pair: str
    client: str
    account: str

    @classmethod
    def of(cls, email: str, client: str) -> "LoginCounters":
        """The counters of a sign-in for `email` from `client`."""
        account = hashlib.sha256(email.encode(errors="backslashreplace")).hexdigest()[:32]
        return cls(
            pair=f"login-pair:{client}:{account}",
            client=f"login-client:{client}",
            account=f"login-account:{account}",
        )

    def on(self) -> list[RateCounter]:
        """The counters whose limit is on."""
        counters = [
            (LOGIN_LIMIT, self.pair),
            (LOGIN_CLIENT_LIMIT, self.client),
            (LOGIN_ACCOUNT_LIMIT, self.account),
        ]
        return [(limit, key) for limit, key in counters if limit is not None]


#: One lock per rate-limit key while a sign-in is checked, judged and counted.
attempt_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def one_attempt_at_a_time(counters: list[RateCounter]) -> AsyncIterator[None]:
    """Let one sign-in per counter key through at a time.

    Only failures count, and a failure is known only after the password check, so attempts
    sent together would otherwise all pass the check before any of them is counted. With
    several processes each may have one attempt in flight: the overshoot stays that small."""
    async with AsyncExitStack() as stack:
        # Every attempt takes its locks in one global order (sorted keys), so two attempts
        # never hold one lock each while waiting for the other's.
        for key in sorted(key for _, key in counters):
            lock = attempt_locks.get(key)
            if lock is None:
                lock = attempt_locks[key] = asyncio.Lock()
            await stack.enter_async_context(lock)
        yield


async def seconds_until_allowed(limit: limits.RateLimitItem, key: str) -> int:
    """How long until a key that has used up its limit may try again."""
    stats = await rate_limiter.get_window_stats(limit, key)
    return max(1, math.ceil(stats.reset_time - time.time()))


def too_many_attempts(retry_after: int) -> HTTPException:
    """The 429 saying when to try again."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"Too many attempts; try again in {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


async def ensure_not_limited(counters: list[RateCounter]) -> None:
    """429 when any counter has used up its limit; Retry-After waits for all of them."""
    waits = [
        await seconds_until_allowed(limit, key)
        for limit, key in counters
        if not await rate_limiter.test(limit, key)
    ]
    if waits:
        raise too_many_attempts(max(waits))


async def count_attempt(counters: list[RateCounter]) -> None:
    """Count one failed attempt against each counter."""
    for limit, key in counters:
        await rate_limiter.hit(limit, key)


# Hashing runs on threads of its own, PASSWORD_HASH_THREADS per process: a burst of sign-ins
# queues there instead of crowding the event loop's core, so other requests stay fast.
hashing_threads = ThreadPoolExecutor(settings.PASSWORD_HASH_THREADS, "argon2")


async def in_hashing_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a password hash function off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(hashing_threads, function, *args)


async def hash_password(password: str) -> str:
    """argon2id-hash a password (it takes tens of milliseconds)."""
    return await in_hashing_thread(password_hasher.hash, password)


async def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check a password; also returns a new hash when the parameters were raised."""
    return await in_hashing_thread(password_hasher.verify_and_update, password, password_hash)


def auth_now() -> datetime:
    """Now, for issuing, checking and spending tokens. A clock of its own: tests move it
    seconds at a time, while the learning clock (`utcnow`) jumps days."""
    return timezone.now()


def encode_token(user: User, kind: TokenType, lifetime: timedelta, **extra: str) -> tuple[str, str]:
    """Sign a JWT of the given type for a user as they are now; returns it and its `jti`."""
    now = int(auth_now().timestamp())
    jti = str(uuid.uuid4())
    claims = {
        "sub": str(user.id),
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": jti,
        "type": kind,
        "ver": user.token_version,
        **extra,
    }
    return jwt.encode({"alg": ALGORITHM}, claims, SIGNING_KEY, algorithms=[ALGORITHM]), jti


@lru_cache(maxsize=4096)
def signed_claims(token: str, secret: bytes) -> Mapping[str, Any]:
    """A token's claims, once its signature with the key `secret` is verified. Cached: a
    client sends the same access token with every request until it expires, and verifying it
    was a tenth of a simple read's CPU (its expiry and the rest are checked on each use)."""
    return jwt.decode(token, OctKey.import_key(secret), algorithms=[ALGORITHM]).claims


@cache
def claims_rules(kind: TokenType) -> jwt.JWTClaimsRegistry:
    """What the claims of a token of this kind must hold."""
    return jwt.JWTClaimsRegistry(
        now=lambda: int(auth_now().timestamp()),
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        type={"essential": True, "value": kind},
    )


def decode_token(token: str, kind: TokenType, error: HTTPException) -> dict[str, Any]:
    """Verify a JWT's signature, expiry and type; raise `error` on any failure."""
    try:
        claims = dict(signed_claims(token, SIGNING_KEY.raw_value))
        claims_rules(kind).validate(claims)
        if not 0 < int(claims["sub"]) <= MAX_ID:
            raise ValueError("no such user id")
        uuid.UUID(claims["jti"])
        # Tokens signed before versions existed carry none: version 0, every user's first.
        claims.setdefault("ver", 0)
        if type(claims["ver"]) is not int:
            raise ValueError("bad token version")
    except (JoseError, ValueError, TypeError):
        raise error from None
    return claims


async def issue_tokens(user: User, family: uuid.UUID | None = None) -> TokenPair:
    """A new access token and a new refresh token in the given login family (or a new one)."""
    family = family or uuid.uuid4()
    lifetime = timedelta(days=settings.REFRESH_TOKEN_DAYS)
    refresh_token, jti = encode_token(user, "refresh", lifetime, fam=str(family))
    await RefreshToken.create(
        id=jti, user_id=user.id, family=family, expires_at=auth_now() + lifetime
    )
    access_lifetime = timedelta(minutes=settings.ACCESS_TOKEN_MINUTES)
    access_token, _ = encode_token(user, "access", access_lifetime)
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(access_lifetime.total_seconds()),
    )


async def spend_refresh_token(token: str) -> RefreshToken:
    """Spend a refresh token, once; returns it with its user.

    A spent token presented again within REFRESH_REUSE_GRACE_SECONDS is accepted again, in the
    same login: two tabs that renewed at once both carry on. Later, it was stolen or leaked,
    so its whole login ends."""
    claims = decode_token(token, "refresh", REFRESH_ERROR)
    now = auth_now()
    token_row = RefreshToken.filter(id=claims["jti"], user_id=int(claims["sub"]))
    # One conditional UPDATE, so two concurrent refreshes cannot both spend the same token.
    spent_now = await token_row.filter(used_at=None, revoked_at=None, expires_at__gt=now).update(
        used_at=now
    )
    stored = await token_row.select_related("user").first()
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise REFRESH_ERROR
    if not spent_now:
        assert stored.used_at is not None  # neither revoked nor expired, so it was spent
        if now - stored.used_at >= timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS):
            await RefreshToken.filter(family=stored.family, revoked_at=None).update(revoked_at=now)
            logger.warning("refresh token reuse detected, login %s revoked", stored.family)
            raise REFRESH_ERROR
        logger.info(
            "refresh token presented again within the grace window, login %s", stored.family
        )
    if claims["ver"] != stored.user.token_version:  # issued before a password change
        raise REFRESH_ERROR
    return stored


auth_router = APIRouter(prefix="/auth", tags=["auth"], route_class=BodyLimitRoute)


@auth_router.post(
    "/register",
    status_code=201,
    responses=error_responses(409, 429),
    dependencies=[IDEMPOTENT_REGISTRATION],
)
async def register(body: UserCreate, request: Request) -> UserOut:
    """Create an account."""
    client = f"register:{client_address(request)}"
    # Every registration counts, so `hit` both judges and counts it.
    if REGISTER_LIMIT is not None and not await rate_limiter.hit(REGISTER_LIMIT, client):
        raise too_many_attempts(await seconds_until_allowed(REGISTER_LIMIT, client))
    email = body.email.lower()
    if await User.exists(email=email):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=EMAIL_TAKEN)
    user = User(email=email, password_hash=await hash_password(body.password))
    async with conflict_as_409(EMAIL_TAKEN):
        await user.save()
    return await UserOut.from_tortoise_orm(user)


@auth_router.post("/token", responses=error_responses(401, 429))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request
) -> TokenPair:
    """Sign in with email (as `username`) and password; returns an access and a refresh token.

    Failed sign-ins are counted per email and client address together, per client address and
    per email (RATE_LIMIT_LOGIN, RATE_LIMIT_LOGIN_CLIENT, RATE_LIMIT_LOGIN_ACCOUNT); once one of
    them is used up the answer is 429 with `Retry-After`, even for the right password."""
    email = form.username.strip().lower()
    counters = LoginCounters.of(email, client_address(request))
    async with one_attempt_at_a_time(counters.on()):
        await ensure_not_limited(counters.on())
        # No email holds NUL, and PostgreSQL cannot even compare it: such a name is unknown.
        user = None if "\x00" in email else await User.get_or_none(email=email)
        valid, new_hash = await verify_password(
            form.password, user.password_hash if user else DUMMY_HASH
        )
        if user is None or not valid:
            await count_attempt(counters.on())
            raise LOGIN_ERROR
    if new_hash:  # the hash parameters were raised since this password was set
        # Only over the hash it checked: a password changed meanwhile stays changed.
        await User.filter(id=user.id, password_hash=user.password_hash).update(
            password_hash=new_hash
        )
    return await issue_tokens(user)


@auth_router.post("/refresh", responses=error_responses(401))
async def refresh(body: RefreshRequest) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is spent (a second
    presentation within REFRESH_REUSE_GRACE_SECONDS gets a pair too, in the same login)."""
    spent = await spend_refresh_token(body.refresh_token)
    return await issue_tokens(spent.user, family=spent.family)


@auth_router.post("/logout", status_code=204, responses=error_responses(401))
async def logout(body: RefreshRequest) -> None:
    """End a login: every refresh token of it is revoked."""
    spent = await spend_refresh_token(body.refresh_token)
    await RefreshToken.filter(family=spent.family, revoked_at=None).update(revoked_at=auth_now())


# --- Users ---


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """Every IANA time zone name the zone database (tzdata) knows."""
    return frozenset(available_timezones())


def known_time_zone(name: str) -> str:
    """An IANA time zone name, checked against the zone database (a path is never a name)."""
    if name not in time_zone_names():
        raise PydanticCustomError(
            "time_zone", "Unknown time zone: use an IANA name such as Europe/Berlin"
        )
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(known_time_zone),
    Field(
        description="An IANA time zone name such as `Europe/Berlin`; the learner's days are "
        "counted in it."
    ),
]
#: The settings PATCH /users/me writes as they come (a password change has its own rules).
SETTINGS = (
    "desired_retention", "reverse_cards", "timezone", "day_starts_at", "new_per_day",
    "reviews_per_day",
)  # fmt: skip


class UserUpdate(BaseModel):
    """A password change (needs `current_password`) and/or study settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    password: Password | None = None
    current_password: Annotated[str, StringConstraints(max_length=128)] | None = None
    desired_retention: Annotated[float, Field(ge=0.7, le=0.99)] | None = None
    reverse_cards: StrictBool | None = Field(
        None, description="Whether new words get a reverse card unless they say otherwise."
    )
    timezone: TimeZoneName | None = None
    day_starts_at: Annotated[int, Field(ge=0, le=23)] | None = Field(
        None, description="The hour (0–23, in `timezone`) at which a new study day begins."
    )
    new_per_day: Annotated[int, Field(ge=0, le=9999)] | None = Field(
        None, description="New cards to start per study day (a card counts at its first review)."
    )
    reviews_per_day: Annotated[int, Field(ge=0, le=9999)] | None = Field(
        None, description="Reviews of cards seen before, per study day."
    )

    @model_validator(mode="after")
    def _not_null(self) -> "UserUpdate":
        for name in ("password", *SETTINGS):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


# The study day: the learner's own day, in their time zone, starting at their hour (Anki's
# "next day starts at"). Everything that counts days (daily limits, `reviews_today`, streaks,
# retention windows, forecast and history dates) takes its bounds from StudyDays, so stored
# UTC timestamps never change when the settings do.


@dataclass(frozen=True)
class StudyDays:
    """One learner's study days: which one it is, and where each begins, in UTC."""

    zone: ZoneInfo
    starts_at: int  #: the local hour a day begins

    @classmethod
    def of(cls, user: User) -> "StudyDays":
        """The user's study days, by their settings."""
        return cls(ZoneInfo(user.timezone), user.day_starts_at)

    def start(self, day: date) -> datetime:
        """The instant (UTC) that study day begins.

        An hour that a DST change skips is read with the offset before the change (the
        instant the clocks jump); one it repeats, at its first occurrence."""
        local = datetime(day.year, day.month, day.day, self.starts_at, tzinfo=self.zone)
        return local.astimezone(UTC)

    def today(self, now: datetime) -> date:
        """The study day `now` falls in."""
        day = now.astimezone(self.zone).date()
        return day if now >= self.start(day) else day - timedelta(days=1)

    def bounds(self, first: date, days: int) -> list[datetime]:
        """Where `days` consecutive study days from `first` begin, and where the last ends."""
        return [self.start(first + timedelta(days=n)) for n in range(days + 1)]


users_router = APIRouter(
    prefix="/users", tags=["users"], responses=error_responses(401), route_class=BodyLimitRoute
)


@users_router.get("/me")
async def read_me(user: CurrentUser) -> UserOut:
    """The signed-in user."""
    return await UserOut.from_tortoise_orm(user)


@users_router.patch("/me", responses=error_responses(403))
async def update_me(body: UserUpdate, user: CurrentUser) -> UserOut:
    """Change the password (with the current one) and/or the study settings; a new password
    ends every login, and every access token issued before it."""
    changes: dict[str, Any] = {}
    if body.password is not None:
        valid = (
            body.current_password is not None
            and (await verify_password(body.current_password, user.password_hash))[0]
        )
        if not valid:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Current password is incorrect")
        user.password_hash = changes["password_hash"] = await hash_password(body.password)
        # In the database, so that two changes at once both end the tokens before them.
        changes["token_version"] = F("token_version") + 1
    for name in SETTINGS:
        if (value := getattr(body, name)) is not None:
            setattr(user, name, value)
            changes[name] = value
    if not changes:
        return await UserOut.from_tortoise_orm(user)
    async with in_transaction():
        # Only these columns: a word added meanwhile keeps its place in the word count, and an
        # optimization finishing meanwhile keeps its parameters.
        await User.filter(id=user.id).update(**changes)
        if "password_hash" in changes:
            await RefreshToken.filter(user_id=user.id, revoked_at=None).update(
                revoked_at=auth_now()
            )
    return await UserOut.from_tortoise_orm(user)


@users_router.delete("/me", status_code=204)
async def delete_me(user: CurrentUser) -> None:
    """Delete the account with all its words and reviews; its tokens stop working at once."""
    await user.delete()


# Personal scheduling: FSRS parameters fitted to the user's own review log with fsrs-rs (its
# Python binding, `fsrs_rs_python`), the way Anki's "Optimize" does it, and applied only when
# they predict that same history better than the parameters in use.


class OptimizeOut(BaseModel):
    """What an optimization found, and whether it changed the user's parameters."""

    applied: bool = Field(description="Whether `parameters` are now the user's `fsrs_parameters`.")
    reason: str = Field(description="Why they were or were not applied, for a person to read.")
    reviews_used: int = Field(
        description="How many of the user's reviews the training items were made of."
    )
    parameters: list[float] | None = Field(
        description="The 21 FSRS parameters fitted to the history (applied or not); null when "
        "there was too little history to fit any."
    )
    log_loss_before: float | None = Field(
        description="Log loss of the parameters in use on the history (lower is better)."
    )
    log_loss_after: float | None = Field(description="Log loss of the fitted parameters.")
    rmse_before: float | None = Field(
        description="RMSE (binned, as Anki reports it) of the parameters in use on the history."
    )
    rmse_after: float | None = Field(description="RMSE (binned) of the fitted parameters.")


#: fsrs-rs fits nothing to fewer training items than this (it answers its defaults).
MIN_TRAINING_ITEMS = 8
RATING_NUMBER = {Rating.AGAIN: 1, Rating.HARD: 2, Rating.GOOD: 3, Rating.EASY: 4}
#: One optimization at a time per process, on a thread of its own: fitting takes a core for
#: up to a second. fsrs-rs releases the GIL while it trains, though not while it takes in the
#: items (about 0.3 s at 100,000 reviews: BENCHMARKS.md).
optimizer_thread = ThreadPoolExecutor(1, "fsrs-optimizer")


def training_items(
    history: Iterable[Sequence[Any]],
) -> tuple[list[fsrs_rs_python.FSRSItem], int]:
    """Anki's training items from a review log of (card id, review id, rating, day) rows in
    card order, then review order (the day a date, or its ISO text as SQLite gives it); also
    returns how many reviews the items are made of.

    Each card gives one item per review that falls on a later day than the card's previous
    review: the card's history up to and including that review, each review with the days
    since the one before it. Reviews on the same day as the one before stay in later items'
    histories (a gap of 0 days) but are no item of their own, as in Anki. Items are in review
    order, as Anki passes them. Days are UTC calendar days."""
    items: list[tuple[int, fsrs_rs_python.FSRSItem]] = []
    reviews_used = 0
    for _, card_reviews in groupby(history, key=lambda row: row[0]):
        reviews: list[fsrs_rs_python.FSRSReview] = []
        previous_day: date | None = None
        made = 0
        for _, review_id, rating, day_or_text in card_reviews:
            day = day_or_text if isinstance(day_or_text, date) else date.fromisoformat(day_or_text)
            gap = 0 if previous_day is None else (day - previous_day).days
            reviews.append(fsrs_rs_python.FSRSReview(RATING_NUMBER[Rating(rating)], gap))
            if gap > 0:
                items.append((review_id, fsrs_rs_python.FSRSItem(reviews)))
                made += 1
            previous_day = day
        if made:
            reviews_used += len(reviews)
    items.sort(key=lambda item: item[0])
    return [item for _, item in items], reviews_used


def within_fsrs_bounds(parameters: Sequence[float]) -> list[float]:
    """Fitted parameters as the `fsrs` scheduler accepts them: inside its bounds (fsrs-rs
    clips to nearly the same ones), rounded to six decimals."""
    bounds = zip(
        fsrs.scheduler.LOWER_BOUNDS_PARAMETERS, fsrs.scheduler.UPPER_BOUNDS_PARAMETERS, strict=True
    )
    return [
        round(min(max(value, low), high), 6)
        for value, (low, high) in zip(parameters, bounds, strict=True)
    ]


def optimize(history: Sequence[Sequence[Any]], current: Sequence[float]) -> OptimizeOut:
    """Fit FSRS parameters to a review log and judge them against the current ones on the
    same items (runs on the optimizer thread)."""
    items, reviews_used = training_items(history)
    if len(items) < MIN_TRAINING_ITEMS:
        return OptimizeOut(
            applied=False,
            reason=(
                f"Too little history: {len(items)} of your reviews came on a later day than "
                f"their card's previous review, and fitting needs at least {MIN_TRAINING_ITEMS}."
            ),
            reviews_used=reviews_used,
            parameters=None,
            log_loss_before=None,
            log_loss_after=None,
            rmse_before=None,
            rmse_after=None,
        )
    # From fsrs-rs' defaults, as Anki does; one relearning step, like the scheduler's.
    fitted = fsrs_rs_python.FSRS(fsrs_rs_python.DEFAULT_PARAMETERS).compute_parameters(
        items, num_relearning_steps=len(scheduler(0.9).relearning_steps)
    )
    parameters = within_fsrs_bounds(fitted)
    before = fsrs_rs_python.FSRS(list(current)).evaluate(items)
    after = fsrs_rs_python.FSRS(parameters).evaluate(items)
    # Better on both measures: Anki judges by RMSE, the fit itself minimises log loss.
    applied = after.log_loss < before.log_loss and after.rmse_bins < before.rmse_bins
    reason = (
        "The fitted parameters predict your reviews better than the ones in use, so they "
        "are now used for every review."
        if applied
        else "The parameters in use predict your reviews at least as well as the fitted "
        "ones, so they are kept."
    )
    return OptimizeOut(
        applied=applied,
        reason=reason,
        reviews_used=reviews_used,
        parameters=parameters,
        log_loss_before=before.log_loss,
        log_loss_after=after.log_loss,
        rmse_before=before.rmse_bins,
        rmse_after=after.rmse_bins,
    )


async def review_log(user: User) -> list[Sequence[Any]]:
    """The user's reviews as (card id, review id, rating, day) rows, by card, then in order."""
    log = (
        Review.filter(user_id=user.id)
        .order_by("card_id", "id")
        .values_list("card_id", "id", "rating", "reviewed_on")
    )
    # The driver's own rows: the ORM's conversion of every value of 100,000 reviews would take
    # most of a second, on the event loop. (The one parameter, the user's id, is an integer.)
    rows: list[Sequence[Any]]
    _, rows = await connections.get("default").execute_query(log.sql(params_inline=True))
    return rows


@users_router.post("/me/optimize")
async def optimize_me(user: CurrentUser) -> OptimizeOut:
    """Fit FSRS parameters to the user's own reviews (as Anki's "Optimize" does) and use them
    from now on when they predict those reviews better than the parameters in use."""
    history = await review_log(user)
    current = fsrs_parameters(user)
    result = await asyncio.get_running_loop().run_in_executor(
        optimizer_thread, optimize, history, current
    )
    if result.applied:
        # Only this column (a concurrent PATCH keeps its settings); nothing if the user is gone.
        await User.filter(id=user.id).update(fsrs_parameters=result.parameters)
    return result


# --- Words ---
# A word is one row; its schedules are on its cards (forward, and reverse when it has one),
# read with it in one joined query. Its text is stored in Unicode NFC, trimmed, without control
# characters (tab and newline aside, in definitions and examples), and beside it live normal
# forms that the same rules make on every database: `word_key` (the duplicate rule),
# `word_fold` and `definition_fold` (search and `sort=word`), `tags` and `tags_key` (one padded
# string each, so a tag filter is one LIKE). The codecs below are the only code that knows those
# formats.


def code_points(*ranges: tuple[int, int]) -> str:
    """The characters of some inclusive code point ranges, as one string."""
    return "".join(chr(c) for first, last in ranges for c in range(first, last + 1))


#: Unicode's White_Space characters (Python's `str.strip` also removes U+001C–U+001F, which are
#: control characters here, not spaces).
WHITESPACE = code_points(
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
#: What trimming removes at either end of a text: whitespace, and the invisible format
#: characters zero-width space, ZWNJ, ZWJ, word joiner and byte order mark.
TRIMMED = WHITESPACE + "\u200b\u200c\u200d\u2060\ufeff"
#: Unicode category Cc.
CONTROL = code_points((0x00, 0x1F), (0x7F, 0x9F))
#: Bidirectional overrides and isolates: they reorder the text around them on screen.
BIDI_CONTROLS = code_points((0x202A, 0x202E), (0x2066, 0x2069))
#: Invisible characters a word or tag may not hold inside (ZWNJ and ZWJ may: Persian and Indic
#: scripts need them).
INVISIBLE_INSIDE = "\u200b\u2060\ufeff"
#: What each kind of text may not hold once trimmed.
FORBIDDEN = {
    "word": CONTROL + BIDI_CONTROLS + INVISIBLE_INSIDE,
    "tag": CONTROL + BIDI_CONTROLS + INVISIBLE_INSIDE + WHITESPACE,
    # Tab and line breaks are text here; CR and CRLF are stored as LF.
    "text": CONTROL.replace("\t", "").replace("\n", "").replace("\r", ""),
}
CHARACTER_NAMES = [
    (CONTROL, "control character"),
    (BIDI_CONTROLS, "bidirectional control"),
    (INVISIBLE_INSIDE, "invisible character"),
    (WHITESPACE, "space"),
]


def char_class(chars: str) -> str:
    """A regular expression character class body for these characters, as \\u escapes with
    runs merged (valid in ECMA-262, which OpenAPI names, and in Python)."""
    points = sorted({ord(c) for c in chars})
    runs: list[list[int]] = []
    for point in points:
        if runs and runs[-1][1] == point - 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(
        f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}"
        for first, last in runs
    )


def text_pattern(kind: str) -> str:
    """The JSON Schema pattern of a text field: anything trimming removes at either end, and
    none of the characters this kind of text may not hold in between."""
    ends = f"[{char_class(TRIMMED)}]*"
    return f"^{ends}[^{char_class(FORBIDDEN[kind])}]*{ends}$"


#: Finds the first character a kind of text may not hold.
FORBIDDEN_SEARCH = {kind: re.compile(f"[{char_class(chars)}]") for kind, chars in FORBIDDEN.items()}


def trim(text: str) -> str:
    """Remove whitespace and invisible format characters at both ends."""
    return text.strip(TRIMMED)


def normalize_text(text: str, kind: str, *, max_length: int) -> str:
    """Stored form of a text: NFC, line breaks as LF (multi-line text), trimmed; 422 when it
    holds a character its kind may not hold or grows past `max_length` (NFC can lengthen a
    few characters, such as U+0958, which the length limit of the input cannot know)."""
    text = unicodedata.normalize("NFC", text)
    if kind == "text":
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = trim(text)
    found = FORBIDDEN_SEARCH[kind].search(text)
    if found:
        char = found.group()
        what = next(name for chars, name in CHARACTER_NAMES if char in chars)
        raise PydanticCustomError(
            "text_character",
            "{what} U+{code} (character {position}) is not allowed here",
            {"what": what, "code": f"{ord(char):04X}", "position": found.start() + 1},
        )
    if len(text) > max_length:
        raise PydanticCustomError(
            "text_too_long",
            "Text should have at most {max_length} characters once in Unicode NFC",
            {"max_length": max_length},
        )
    return text


def normalizer(kind: str, *, max_length: int, required: bool = True) -> Callable[[str], str]:
    """The validator that stores a text field's value in its normal form (after the length
    limits, which apply to the text as sent, as the schema says)."""

    def normalize(value: str) -> str:
        text = normalize_text(value, kind, max_length=max_length)
        if required and not text:
            raise PydanticCustomError("text_empty", "Text should not be empty once trimmed")
        return text

    return normalize


def empty_to_none(value: T) -> T | None:
    """Treat text that trimming empties like a missing value (for optional text fields)."""
    return None if isinstance(value, str) and not trim(value) else value


WordText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(normalizer("word", max_length=100)),
    Field(
        description="1–100 characters, trimmed; no control characters, bidirectional controls "
        "or invisible characters inside (ZWNJ and ZWJ are fine).",
        json_schema_extra={"pattern": text_pattern("word")},
    ),
]
Definition = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000),
    AfterValidator(normalizer("text", max_length=1000)),
    Field(
        description="1–1000 characters, trimmed; tab and line breaks are the only control "
        "characters allowed.",
        json_schema_extra={"pattern": text_pattern("text")},
    ),
]
Example = Annotated[
    Annotated[
        str,
        StringConstraints(max_length=1000),
        AfterValidator(normalizer("text", max_length=1000, required=False)),
        Field(json_schema_extra={"pattern": text_pattern("text")}),
    ]
    | None,
    BeforeValidator(empty_to_none),
    Field(description="Up to 1000 characters, as a definition; empty is null."),
]
LanguageCode = Annotated[
    str, StringConstraints(max_length=16, pattern=r"^([A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*)?$")
]
Language = Annotated[
    LanguageCode | None,
    BeforeValidator(lambda value: None if value == "" else value),
    Field(description='A language code such as `en`, `de` or `pt-BR`; null (or "") for none.'),
]
Difficulty = Annotated[int, Field(ge=1, le=5, description="The learner's own rating, 1–5.")]
Tag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32),
    AfterValidator(normalizer("tag", max_length=32)),
    Field(json_schema_extra={"pattern": text_pattern("tag")}),
]
Tags = Annotated[
    list[Tag],
    Field(max_length=20, description="Up to 20 tags of up to 32 characters, without spaces."),
]
#: Combining marks that search ignores: the diacritics of Latin, Greek and Cyrillic (in the
#: Combining Diacritical Marks blocks), Hebrew points, Arabic harakat and variation selectors.
#: The marks of Indic scripts, Thai or kana (dakuten) are parts of letters there, and count.
IGNORED_MARKS = [
    char
    for char in code_points(
        (0x0300, 0x036F), (0x0483, 0x0489), (0x0591, 0x05C7), (0x0610, 0x061A),
        (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06ED), (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F),
        (0xE0100, 0xE01EF),
    )
    if unicodedata.category(char) == "Mn"
]  # fmt: skip
#: What search drops or replaces once marks are separated: IGNORED_MARKS; invisible characters
#: (joiners, soft hyphen, direction marks, the Arabic tatweel that only stretches a word); and
#: letters that Unicode does not decompose but that a search without accents should find from
#: their base letter.
INVISIBLE_IN_SEARCH = "\u00ad\u061c\u0640\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
SEARCH_FOLDS = str.maketrans(
    dict.fromkeys([*IGNORED_MARKS, *INVISIBLE_IN_SEARCH])
    | {"ı": "i", "ł": "l", "đ": "d", "ø": "o", "ħ": "h", "æ": "ae", "œ": "oe"}
)
#: Room for a word's search key in its sortable column (see `models.Word.word_fold`).
WORD_FOLD_LENGTH = 600


def search_key(text: str) -> str:
    """Text as search compares it, ignoring case and accents in every script: compatibility
    decomposition (NFKD: full-width letters, ligatures), case folding (ß is ss, final sigma is
    sigma), SEARCH_FOLDS applied (accents and invisible characters dropped), and recomposed
    (NFC: Hangul syllables and kana stay whole)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return unicodedata.normalize("NFC", decomposed.translate(SEARCH_FOLDS))


def word_key(word: str) -> str:
    """The duplicate rule's key of a stored (NFC) word: lower-cased, not case-folded, so that
    Masse and Maße stay two words while Café and café are one."""
    return word.lower()


#: Turkish and Azeri pair İ with i and I with ı, which case folding does not know: the tag
#: filter takes all four for i, so that ŞEHİR finds şehir and IŞIK finds ışık.
TURKISH_I = str.maketrans({"İ": "i", "ı": "i"})


def tag_key(tag: str) -> str:
    """A tag as the tag filter compares it: case-folded in every script."""
    text = unicodedata.normalize("NFC", trim(tag)).translate(TURKISH_I)
    return unicodedata.normalize("NFC", text.casefold())


def tags_to_column(tags: list[str]) -> str:
    """Tags as stored: joined by single spaces with a space at either end, duplicates dropped."""
    return " " + " ".join(dict.fromkeys(tags)) + " "


def tags_key_to_column(tags: list[str]) -> str:
    """The tags' filter keys as stored, in the same padded format."""
    return tags_to_column([tag_key(tag) for tag in tags])


def tags_from_column(stored: str) -> list[str]:
    """Stored tags as a list (split on spaces only: a tag never holds one)."""
    return [tag for tag in stored.split(" ") if tag]


def tag_in_column(tag: str) -> str:
    """What the tags key column contains when it holds this tag, in any case."""
    return f" {tag_key(tag)} "


def language_to_column(code: str | None) -> str:
    """A language as stored: its tag in the usual case (`PT-br` -> `pt-BR`), so case never makes
    two languages, and "" for none (NULLs never collide in a unique index, "" does)."""
    if not code:
        return ""
    first, *rest = code.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2:  # region
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():  # script
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def language_from_column(stored: str) -> str | None:
    """A stored language as the API shows it (null for none)."""
    return stored or None


class WordCreate(BaseModel):
    """A new word."""

    model_config = ConfigDict(extra="forbid", strict=True)

    word: WordText
    definition: Definition
    example: Example = None
    language: Language = None
    difficulty: Difficulty = 3
    tags: Tags = []
    reverse: StrictBool | None = Field(
        None,
        description="Also study it the other way round (the definition shown, the word "
        "recalled) on a card of its own; null or left out: the user's `reverse_cards`.",
    )
    suspended: StrictBool = Field(False, description="Set aside: none of its cards is studied.")


class WordUpdate(BaseModel):
    """A partial update of a word; the schedules are not writable."""

    model_config = ConfigDict(extra="forbid", strict=True)

    word: WordText | None = None
    definition: Definition | None = None
    example: Example = None
    language: Language = None
    difficulty: Difficulty | None = None
    tags: Tags | None = None
    reverse: StrictBool | None = Field(
        None,
        description="Turned off, the reverse card keeps its history but is no longer studied; "
        "turned on again, it carries on from there.",
    )
    suspended: StrictBool | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> "WordUpdate":
        for name in ("word", "definition", "difficulty", "tags", "reverse", "suspended"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ScheduleOut(BaseModel):
    """One card's spaced-repetition state (FSRS)."""

    state: State = Field(description="`new` until the first review.")
    due_at: datetime = Field(
        description="When the card is next due; a new card is due at once (since its word was "
        "added)."
    )
    stability: float | None = Field(description="Days until recall drops to 90 %; null while new.")
    difficulty: float | None = Field(description="FSRS' difficulty, 1–10; null while new.")
    retrievability: float | None = Field(
        description="The probability of recalling it now, 0–1 (FSRS' forgetting curve with "
        "the user's parameters); null while new."
    )
    reps: int = Field(description="How many times the card was reviewed.")
    lapses: int = Field(description="How many times it was forgotten once learned.")
    last_reviewed_at: datetime | None


@dataclass(frozen=True)
class ForgettingCurve:
    """FSRS' forgetting curve with one user's parameters, read at one moment."""

    now: datetime
    decay: float
    factor: float

    @classmethod
    def of(cls, user: User) -> "ForgettingCurve":
        """The user's curve, now."""
        return cls.with_parameters(user.fsrs_parameters)

    @classmethod
    def with_parameters(cls, stored: list[float] | None) -> "ForgettingCurve":
        """The curve, now, of a user whose stored `fsrs_parameters` are these."""
        decay = -(stored[20] if stored else DEFAULT_PARAMETERS[20])
        return cls(now=utcnow(), decay=decay, factor=0.9 ** (1 / decay) - 1)

    def retrievability(self, stability: float | None, last_review: datetime | None) -> float | None:
        """The probability of recall now, after `stability` days of memory were set at the
        last review (fractional days elapsed, so it falls from the moment of review)."""
        if stability is None or last_review is None:
            return None
        days = max(0.0, (self.now - last_review).total_seconds() / 86400)
        return float((1 + self.factor * days / stability) ** self.decay)


#: A word's own columns, and its cards' columns, as the API shows them. Read paths fetch them
#: as plain rows in one query: the word's columns with each of its cards' across the relation
#: (`cards__state`, ...), one row per card.
WORD_COLUMNS = (
    "id", "word", "definition", "example", "language", "difficulty", "tags", "created_at",
    "updated_at", "reverse", "suspended",
)  # fmt: skip
CARD_COLUMNS = (
    "direction", "state", "due_at", "stability", "fsrs_difficulty", "reps", "lapses",
    "last_reviewed_at",
)  # fmt: skip
WORD_AND_CARD = (*WORD_COLUMNS, *(f"cards__{column}" for column in CARD_COLUMNS))


def card_row(row: Mapping[str, Any], prefix: str = "cards__") -> dict[str, Any]:
    """A card's columns out of a joined (or plain, with prefix "") row."""
    return {column: row[prefix + column] for column in CARD_COLUMNS}


def card_values(card: Card) -> dict[str, Any]:
    """A card object's columns, as a row."""
    return {column: getattr(card, column) for column in CARD_COLUMNS}


# Hand-written rather than generated: the API nests the schedules and shows tags as a list.
class WordOut(BaseModel):
    """A word as the API shows it."""

    id: int
    word: str
    definition: str
    example: str | None
    language: str | None = Field(description="Its language code; null for none.")
    difficulty: int = Field(description="The learner's own rating, 1–5.")
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    reverse: bool = Field(description="Whether it is also studied the other way round.")
    suspended: bool = Field(description="Set aside: never in /study or in due counts.")
    schedule: ScheduleOut = Field(description="The forward card: the word shown.")
    reverse_schedule: ScheduleOut | None = Field(
        description="The reverse card: the definition shown; null while `reverse` is off."
    )

    @classmethod
    def of(
        cls,
        word: Mapping[str, Any],
        cards: Mapping[Direction, Mapping[str, Any]],
        curve: ForgettingCurve,
        **extra: Any,
    ) -> Self:
        """Shape a stored word and its cards (see `word_json`) as the model; `extra` fills a
        subclass's own fields.

        The values come from the database, which already enforces their types, so the
        models are built without validating them again (a tenth of a list request's CPU)."""
        values = word_json(word, cards, curve)
        values["schedule"] = ScheduleOut.model_construct(**values["schedule"])
        if values["reverse_schedule"] is not None:
            values["reverse_schedule"] = ScheduleOut.model_construct(**values["reverse_schedule"])
        return cls.model_construct(**values, **extra)

    @classmethod
    def of_word(cls, word: Word, cards: Iterable[Card], curve: ForgettingCurve) -> Self:
        """Shape a word object and its card objects (after a write) for the API."""
        row = {column: getattr(word, column) for column in WORD_COLUMNS}
        return cls.of(row, {card.direction: card_values(card) for card in cards}, curve)


def schedule_json(card: Mapping[str, Any], curve: ForgettingCurve) -> dict[str, Any]:
    """A card's row as the API's schedule (ScheduleOut's fields)."""
    return {
        "state": State(card["state"]),
        "due_at": card["due_at"],
        "stability": card["stability"],
        "difficulty": card["fsrs_difficulty"],
        "retrievability": curve.retrievability(card["stability"], card["last_reviewed_at"]),
        "reps": card["reps"],
        "lapses": card["lapses"],
        "last_reviewed_at": card["last_reviewed_at"],
    }


def word_json(
    word: Mapping[str, Any], cards: Mapping[Direction, Mapping[str, Any]], curve: ForgettingCurve
) -> dict[str, Any]:
    """A stored word (a row of WORD_COLUMNS) and its cards (rows of CARD_COLUMNS by
    direction) as the API shows them: WordOut's fields, ready to serialise."""
    reverse = cards.get(Direction.REVERSE) if word["reverse"] else None
    return {
        "id": word["id"],
        "word": word["word"],
        "definition": word["definition"],
        "example": word["example"],
        "language": language_from_column(word["language"]),
        "difficulty": word["difficulty"],
        "tags": tags_from_column(word["tags"]),
        "created_at": word["created_at"],
        "updated_at": word["updated_at"],
        "reverse": bool(word["reverse"]),
        "suspended": bool(word["suspended"]),
        "schedule": schedule_json(cards[Direction.FORWARD], curve),
        "reverse_schedule": None if reverse is None else schedule_json(reverse, curve),
    }


@dataclass
class WordRows:
    """A word's row and its cards' rows, as read."""

    word: Mapping[str, Any]
    cards: dict[Direction, Mapping[str, Any]]

    def out(self, curve: ForgettingCurve) -> WordOut:
        """The word as the API shows it."""
        return WordOut.of(self.word, self.cards, curve)

    def json(self, curve: ForgettingCurve) -> dict[str, Any]:
        """The word as the API shows it, ready to serialise."""
        return word_json(self.word, self.cards, curve)


def words_of_rows(rows: Iterable[Mapping[str, Any]]) -> dict[int, WordRows]:
    """Joined rows (WORD_AND_CARD, one per card) grouped by word, in the rows' order."""
    words: dict[int, WordRows] = {}
    for row in rows:
        word = words.get(row["id"])
        if word is None:
            word = words[row["id"]] = WordRows(row, {})
        word.cards[Direction(row["cards__direction"])] = card_row(row)
    return words


class WordPage(BaseModel):
    """One page of words."""

    items: list[WordOut]
    total: int = Field(description="How many words match, on all pages.")
    limit: int
    offset: int


class WordSort(StrEnum):
    """Orders for `GET /words`; ties are broken by id so paging is stable."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    WORD = "word"
    WORD_DESC = "-word"
    DUE = "due_at"


WORD_ORDER = {
    WordSort.NEWEST: ("-created_at", "-id"),
    WordSort.OLDEST: ("created_at", "id"),
    WordSort.WORD: ("word_fold", "id"),
    WordSort.WORD_DESC: ("-word_fold", "-id"),
    WordSort.DUE: ("cards__due_at", "id"),  # the forward card's (the list joins it alone)
}


class WordQuery(BaseModel):
    """`GET /words`' query parameters: filters, order and page."""

    limit: int = Field(50, ge=1, le=100)
    offset: int = Field(0, ge=0, le=MAX_ID)
    q: str | None = Field(
        None,
        max_length=100,
        pattern=NO_NUL,
        description="Words whose word or definition contains this, ignoring case and accents "
        "in every script (`ubung` finds Übung, `strasse` Straße).",
    )
    difficulty: int | None = Field(None, ge=1, le=5)
    tag: str | None = Field(
        None, max_length=32, pattern=NO_NUL, description="Words with this tag, in any case."
    )
    language: str | None = Field(
        None,
        max_length=16,
        pattern=NO_NUL,
        description='Words in this language, in any case; "" for words without one.',
    )
    due: bool | None = Field(
        None,
        description="true: only words with a card due now (never a suspended word); false: "
        "only the others.",
    )
    sort: WordSort = WordSort.NEWEST

    def filters(self, user_id: int) -> list[Q]:
        """The query's filters as ORM conditions (none when it has no filter)."""
        filters: list[Q] = []
        key = search_key(trim(self.q or ""))
        if key:
            filters.append(Q(word_fold__contains=key) | Q(definition_fold__contains=key))
        if self.difficulty is not None:
            filters.append(Q(difficulty=self.difficulty))
        if self.tag:
            filters.append(Q(tags_key__contains=tag_in_column(self.tag)))
        if self.language is not None:
            filters.append(Q(language=language_to_column(self.language.strip())))
        if self.due is not None:
            due = Subquery(due_cards(user_id, utcnow()).values("word_id"))
            filters.append(Q(id__in=due) if self.due else Q(id__not_in=due))
        return filters


WordId = Annotated[int, PathParam(description="The word's id.")]
WORD_NOT_FOUND = not_found("Word")
WORD_CONFLICT = "You already have this word in this language"


def valid_id(value: int) -> int:
    """An id as queries take it: one beyond the column's range matches nothing."""
    return value if 0 < value <= MAX_ID else 0


def word_query(word_id: int, user: User) -> QuerySet[Word]:
    """The user's word with this id, as a query; another user's word is as missing as a
    deleted one."""
    return Word.filter(id=valid_id(word_id), user_id=user.id)


async def get_word_or_404(word_id: int, user: User) -> Word:
    """The user's word with this id, or 404."""
    word = await word_query(word_id, user).first()
    if word is None:
        raise WORD_NOT_FOUND
    return word


def word_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Map validated (normalised) word input to model columns, with the normal forms that
    duplicates, search, sorting and the tag filter compare."""
    fields = dict(data)
    if "word" in fields:
        fields["word_key"] = word_key(fields["word"])
        fields["word_fold"] = search_key(fields["word"])[:WORD_FOLD_LENGTH]
    if "definition" in fields:
        fields["definition_fold"] = search_key(fields["definition"])
    if "language" in fields:
        fields["language"] = language_to_column(fields["language"])
    if "tags" in fields:
        fields["tags_key"] = tags_key_to_column(fields["tags"])
        fields["tags"] = tags_to_column(fields["tags"])
    return fields


def new_card(word: Word, direction: Direction) -> Card:
    """A word's card as it starts: new, and due since the word was added (so new cards in
    due order come oldest word first)."""
    studied = not word.suspended and (direction == Direction.FORWARD or word.reverse)
    return Card(
        word_id=word.id,
        user_id=word.user_id,
        direction=direction,
        active=studied,
        due_at=word.created_at,
    )


def new_cards(word: Word) -> list[Card]:
    """The cards of a word just added: forward, and reverse when it has one."""
    directions = [Direction.FORWARD, Direction.REVERSE] if word.reverse else [Direction.FORWARD]
    return [new_card(word, direction) for direction in directions]


async def update_cards(word: Word) -> list[Card]:
    """Bring a word's cards in step with its `reverse` and `suspended` (call it in the
    transaction that changed them, with the cards locked); returns the cards."""
    cards = {card.direction: card for card in await Card.filter(word_id=word.id)}
    if word.reverse and Direction.REVERSE not in cards:
        cards[Direction.REVERSE] = new_card(word, Direction.REVERSE)
        await cards[Direction.REVERSE].save()
    for direction, card in cards.items():
        studied = not word.suspended and (direction == Direction.FORWARD or word.reverse)
        if card.active != studied:
            card.active = studied
            await card.save(update_fields=["active"])
    return list(cards.values())


#: Built once: every word added or deleted runs it.
ADD_TO_WORD_COUNT = PreparedQuery(
    lambda user_id, change: User.filter(id=user_id).update(word_count=F("word_count") + change)
)


async def add_to_word_count(user: User, change: int) -> None:
    """Keep the user's word count in step with an insert or delete (call it in the same
    transaction)."""
    if change:
        await ADD_TO_WORD_COUNT.execute(user.id, change)


words_router = APIRouter(
    prefix="/words", tags=["words"], responses=error_responses(401), route_class=BodyLimitRoute
)


#: What a list needs of the words' owner, read with the page: the token check, the total of
#: an unfiltered list and the forgetting curve.
OWNER_COLUMNS = ("user__token_version", "user__word_count", "user__fsrs_parameters")


def word_page(
    user_id: int,
    offset: int,
    limit: int,
    sort: WordSort = WordSort.NEWEST,
    filters: Sequence[Q] = (),
) -> ValuesQuery[Any]:
    """A page of the user's words, one row per word (joined with its forward card; reverse
    cards are read after), with the owner's columns."""
    forward = Word.filter(*filters, user_id=user_id, cards__direction=Direction.FORWARD)
    page = forward.order_by(*WORD_ORDER[sort]).offset(offset).limit(limit)
    return page.values(*WORD_AND_CARD, *OWNER_COLUMNS)


#: The list as most requests ask for it (no filter, newest first), built once.
NEWEST_PAGE = PreparedQuery(lambda user_id, offset, limit: word_page(user_id, offset, limit))


async def reverse_cards_of(words: dict[int, WordRows]) -> None:
    """Add their reverse cards to the words that have them on."""
    reversed_ids = [word_id for word_id, word in words.items() if word.word["reverse"]]
    if reversed_ids:
        reverse_cards = Card.filter(word_id__in=reversed_ids, direction=Direction.REVERSE)
        for row in await reverse_cards.values("word_id", *CARD_COLUMNS):
            words[row["word_id"]].cards[Direction.REVERSE] = card_row(row, prefix="")


@words_router.get("", response_model=WordPage)
async def read_words(caller: CurrentCaller, query: Annotated[WordQuery, Query()]) -> Response:
    """List the user's words, filtered, sorted and paged."""
    filters = query.filters(caller.user_id)
    if not filters and query.sort == WordSort.NEWEST:
        rows = await NEWEST_PAGE.rows(caller.user_id, query.offset, query.limit)
    else:
        rows = await word_page(caller.user_id, query.offset, query.limit, query.sort, filters)
    if rows:  # the rows carry their owner: one round trip
        owner = {column.removeprefix("user__"): rows[0][column] for column in OWNER_COLUMNS}
        if not caller.signed_in(owner["token_version"]):
            raise CREDENTIALS_ERROR
    else:  # a user gone or signed out is 401, not an empty page
        user = await user_of(caller)
        owner = {"word_count": user.word_count, "fsrs_parameters": user.fsrs_parameters}
    words = words_of_rows(rows)
    if not filters:
        total = owner["word_count"]  # kept up to date: no COUNT over a large vocabulary
    elif query.offset == 0 and len(words) < query.limit:
        total = len(words)  # a first page that is not full holds every match
    else:
        total = await Word.filter(*filters, user_id=caller.user_id).count()
    await reverse_cards_of(words)
    curve = ForgettingCurve.with_parameters(owner["fsrs_parameters"])
    items = [word.json(curve) for word in words.values()]
    return json_response(
        {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
    )


@words_router.post("", status_code=201, responses=error_responses(409), dependencies=[IDEMPOTENT])
async def create_word(body: WordCreate, user: CurrentUser, response: Response) -> WordOut:
    """Add a word; its cards are new and due for study at once."""
    fields = word_fields(body.model_dump())
    if fields["reverse"] is None:
        fields["reverse"] = user.reverse_cards
    word = Word(user_id=user.id, **fields)
    # One transaction, which a duplicate (the word's INSERT) rolls back whole as 409: no
    # savepoint around the INSERT alone, since nothing goes on after a violation.
    async with conflict_as_409(WORD_CONFLICT):
        await word.save()
        cards = new_cards(word)
        await Card.bulk_create(cards)
        await add_to_word_count(user, 1)
    response.headers["Location"] = f"/words/{word.id}"
    return WordOut.of_word(word, cards, ForgettingCurve.of(user))


#: A word with its cards and what its owner's token check and forgetting curve need: the
#: whole of a single-word read in one round trip (a word exists only while its user does).
WORD_WITH_OWNER = PreparedQuery(
    lambda word_id, user_id: Word.filter(id=word_id, user_id=user_id).values(
        *WORD_AND_CARD, "user__token_version", "user__fsrs_parameters"
    )
)


@words_router.get("/{word_id:int}", response_model=WordOut, responses=error_responses(404))
async def read_word(word_id: WordId, caller: CurrentCaller) -> Response:
    """One of the user's words."""
    rows = await WORD_WITH_OWNER.rows(valid_id(word_id), caller.user_id)
    if not rows:
        await user_of(caller)  # a user gone or signed out is 401, not 404
        raise WORD_NOT_FOUND
    owner = rows[0]
    if not caller.signed_in(owner["user__token_version"]):
        raise CREDENTIALS_ERROR
    curve = ForgettingCurve.with_parameters(owner["user__fsrs_parameters"])
    return json_response(words_of_rows(rows)[owner["id"]].json(curve))


@words_router.patch("/{word_id:int}", responses=error_responses(404, 409))
async def update_word(word_id: WordId, body: WordUpdate, user: CurrentUser) -> WordOut:
    """Change some of a word's fields (turning `reverse` on adds a reverse card, or brings
    back the one it had)."""
    changes = word_fields(body.model_dump(exclude_unset=True))
    studied = "reverse" in changes or "suspended" in changes
    async with in_transaction():
        if studied:  # its cards follow: lock them, as reviews do, before reading the word
            await lock_cards_or_404(word_id, user)
        word = await get_word_or_404(word_id, user)
        if changes:
            word.update_from_dict(changes)
            # Only the changed columns: a review running meanwhile keeps its schedule update.
            async with conflict_as_409(WORD_CONFLICT):
                await word.save(update_fields=[*changes, "updated_at"])
        cards = await update_cards(word) if studied else await Card.filter(word_id=word.id)
    return WordOut.of_word(word, cards, ForgettingCurve.of(user))


@words_router.delete("/{word_id:int}", status_code=204, responses=error_responses(404))
async def delete_word(word_id: WordId, user: CurrentUser) -> None:
    """Delete a word, its cards and their review history."""
    async with in_transaction():
        # Its cards first, as reviews lock them, so a review and a delete never wait on each
        # other in a circle.
        await lock_cards_or_404(word_id, user)
        # Counted only if this request deleted it, not a concurrent one. (The number the
        # delete returns may include the word's cards and reviews: it is a yes or no here.)
        if await word_query(word_id, user).delete():
            await add_to_word_count(user, -1)


# --- Learning ---
# Reviews move a card's schedule on by FSRS (the `fsrs` package) with the user's desired
# retention and parameters; each review is logged with the card's schedule before and after
# it, so that the latest review of a card can be undone exactly. A review or an undo locks the
# word's card rows, so that those of one card queue up.

if TYPE_CHECKING:  # a class made at run time is opaque to the type checker: name its base
    ReviewOut = PydanticModel
else:
    #: A review as the API shows it (the replay columns stay on the server).
    ReviewOut = pydantic_model_creator(
        Review,
        name="ReviewOut",
        include=("id", "direction", "rating", "reviewed_at", "duration_ms"),
    )


class ReviewCreate(BaseModel):
    """A review: which card, how well it was recalled, and optionally how long it took."""

    # Strict: a number is a JSON number (no "4" or true); the rating is matched by its value
    # (FastAPI validates parsed JSON, where strict mode would want an enum instance).
    model_config = ConfigDict(extra="forbid", strict=True)

    rating: Annotated[Rating, Field(strict=False)]
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None
    direction: Direction = Field(
        Direction.FORWARD,
        strict=False,  # matched by its value, as the rating is
        description="The card reviewed: `forward` (the word shown) or `reverse` (the "
        "definition shown; only for a word with `reverse` on).",
    )


class ReviewResult(BaseModel):
    """The review just recorded, and the word with its card's new schedule."""

    review: ReviewOut
    word: WordOut


class ReviewPage(BaseModel):
    """One page of a word's reviews (both directions), newest first."""

    items: list[ReviewOut]
    total: int
    limit: int
    offset: int


class Preview(BaseModel):
    """What one rating would schedule if given now."""

    due_at: datetime
    interval_seconds: int = Field(description="From now to `due_at`, in whole seconds.")


class Previews(BaseModel):
    """What each rating would schedule if given now (what Anki shows on its buttons)."""

    again: Preview
    hard: Preview
    good: Preview
    easy: Preview


class StudyItem(WordOut):
    """A card to study: its word, which side to show, and what each rating would do."""

    direction: Direction = Field(
        description="`forward`: show the word, recall the definition; `reverse`: show the "
        "definition, recall the word."
    )
    previews: Previews


class StudyQueue(BaseModel):
    """What to study now, within today's limits: due cards seen before (most overdue first),
    then new cards (oldest word first)."""

    items: list[StudyItem]
    due_total: int = Field(
        description="How many cards are due now (seen before, and new), not limited."
    )
    new_left_today: int = Field(
        description="New cards that may still be started today (`new_per_day` less the cards "
        "first reviewed this study day)."
    )
    reviews_left_today: int = Field(
        description="Reviews of cards seen before still allowed today (`reviews_per_day` less "
        "this study day's)."
    )


class StatsOut(BaseModel):
    """A learner's progress."""

    words: int = Field(description="All the user's words, suspended ones included.")
    new: int = Field(description="Cards studied but never reviewed (`by_state`'s `new`).")
    due: int = Field(description="Cards due now; equals `/study`'s `due_total`.")
    reviews_today: int = Field(
        description="Reviews (of either direction) this study day (the user's `timezone` and "
        "`day_starts_at`)."
    )
    reviews_total: int
    retention_30d: float | None = Field(
        description="Share of the last 30 study days' reviews (today's included) of cards in "
        "review state that were not rated `again`; null when there were none."
    )
    streak_days: int = Field(
        description="Consecutive study days with a review, ending today or yesterday."
    )
    by_state: dict[State, int] = Field(
        description="Cards studied, by state: every word's forward card and the reverse cards "
        "of words with `reverse` on, leaving out suspended words."
    )
    by_difficulty: dict[str, int] = Field(description='Words per difficulty, "1" to "5".')


#: A calendar day (a field named `date` would shadow the type in its class).
Day = date
StatsDays = Annotated[int, Query(ge=1, le=365, description="How many study days, 1–365.")]


class ForecastDay(BaseModel):
    """One study day ahead."""

    date: Day = Field(description="The study day (in the user's `timezone`).")
    due: int = Field(
        description="Cards seen before that fall due that day (today: with every overdue "
        "one); new cards and suspended words are not counted."
    )


class ForecastOut(BaseModel):
    """The coming study days' workload, today first."""

    items: list[ForecastDay]


class HistoryDay(BaseModel):
    """One past study day's reviews."""

    date: Day = Field(description="The study day (in the user's `timezone`).")
    reviews: int = Field(description="Reviews of either direction that day.")
    again: int = Field(description="Of those, how many were rated `again`.")


class HistoryOut(BaseModel):
    """The last study days' reviews, oldest first, today last (days without any are zeros)."""

    items: list[HistoryDay]


# FSRS has no "new" state: a card never reviewed is a learning card at its first step.
FSRS_STATE = {
    State.NEW: fsrs.State.Learning,
    State.LEARNING: fsrs.State.Learning,
    State.REVIEW: fsrs.State.Review,
    State.RELEARNING: fsrs.State.Relearning,
}
STATE_OF_FSRS = {
    fsrs.State.Learning: State.LEARNING,
    fsrs.State.Review: State.REVIEW,
    fsrs.State.Relearning: State.RELEARNING,
}
FSRS_RATING = {
    Rating.AGAIN: fsrs.Rating.Again,
    Rating.HARD: fsrs.Rating.Hard,
    Rating.GOOD: fsrs.Rating.Good,
    Rating.EASY: fsrs.Rating.Easy,
}
#: The card columns a review (or its undo) changes.
SCHEDULE_COLUMNS = [
    "state",
    "step",
    "stability",
    "fsrs_difficulty",
    "due_at",
    "reps",
    "lapses",
    "last_reviewed_at",
]
DEFAULT_PARAMETERS: tuple[float, ...] = tuple(fsrs.scheduler.DEFAULT_PARAMETERS)
REVIEW_NOT_FOUND = not_found("Review")


def fsrs_parameters(user: User) -> tuple[float, ...]:
    """The FSRS parameters that schedule the user's reviews: their own, or FSRS' defaults."""
    return tuple(user.fsrs_parameters) if user.fsrs_parameters else DEFAULT_PARAMETERS


@lru_cache(maxsize=256)
def scheduler(
    desired_retention: float, parameters: tuple[float, ...] = DEFAULT_PARAMETERS
) -> fsrs.Scheduler:
    """The FSRS scheduler for one desired retention and set of parameters (FSRS-6).

    Fuzzing is off so that a review's outcome is reproducible from its inputs."""
    return fsrs.Scheduler(
        parameters=parameters, desired_retention=desired_retention, enable_fuzzing=False
    )


def preview(card: Card, rules: fsrs.Scheduler, now: datetime) -> dict[str, dict[str, Any]]:
    """What each rating of the card would schedule at `now` (Previews' fields): the very
    computation a review makes, so a rating given at the same moment lands exactly on its
    preview."""
    before, shown = card_of(card), {}
    for rating in Rating:
        due = next_card(before, rating, rules, now).due
        shown[rating.value] = {
            "due_at": due,
            "interval_seconds": round((due - now).total_seconds()),
        }
    return shown


class FsrsCard(fsrs.Card):
    """FSRS' card, copied the quick way: `review_card` copies its card first, and the generic
    `copy` (through the pickle protocol) was a sixth of a preview's cost. The copy is the
    same: every attribute, shallow."""

    def __copy__(self) -> Self:
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied


def card_of(card: Card) -> fsrs.Card:
    """A card's schedule as an FSRS card."""
    return FsrsCard(
        card_id=card.id,
        state=FSRS_STATE[card.state],
        step=0 if card.state == State.NEW else card.step,
        stability=card.stability,
        difficulty=card.fsrs_difficulty,
        due=card.due_at,
        last_review=card.last_reviewed_at,
    )


def next_card(card: fsrs.Card, rating: Rating, rules: fsrs.Scheduler, now: datetime) -> fsrs.Card:
    """FSRS' card after a review with this rating at `now` (reviews and previews both ask)."""
    after, _ = rules.review_card(card, FSRS_RATING[rating], review_datetime=now)
    return after


def next_schedule(card: Card, rating: Rating, rules: fsrs.Scheduler, now: datetime) -> dict:
    """The card's schedule columns after a review with this rating."""
    after = next_card(card_of(card), rating, rules, now)
    return {
        "state": STATE_OF_FSRS[after.state],
        "step": after.step,
        "stability": after.stability,
        "fsrs_difficulty": after.difficulty,
        "due_at": after.due,
        "reps": card.reps + 1,
        "lapses": card.lapses + 1 if is_lapse(rating, card.state) else card.lapses,
        "last_reviewed_at": now,
    }


def is_lapse(rating: Rating, state_before: State) -> bool:
    """Whether a review forgot a card that had been learned."""
    return rating == Rating.AGAIN and state_before == State.REVIEW


def schedule_before(review: Review, card: Card) -> dict[str, Any]:
    """The card's schedule columns as they were before this review (its latest)."""
    return {
        "state": review.state_before,
        "step": review.step_before,
        "stability": review.stability_before,
        "fsrs_difficulty": review.difficulty_before,
        "due_at": review.due_before,
        "reps": card.reps - 1,
        "lapses": card.lapses - 1 if is_lapse(review.rating, review.state_before) else card.lapses,
        "last_reviewed_at": review.last_reviewed_before,
    }


#: A word's cards with the word, locked: only the cards' rows (a PATCH of the word's text
#: does not wait for reviews), always in id order, so that two requests never hold one card
#: each while waiting for the other. Built once: every review runs it.
CARDS_FOR_UPDATE = PreparedQuery(
    lambda word_id, user_id: (
        Card.filter(word_id=word_id, user_id=user_id)
        .select_related("word")
        .order_by("id")
        .select_for_update(of=("cards",))
    )
)


async def lock_cards_or_404(word_id: int, user: User) -> dict[Direction, Card]:
    """The user's word's cards, locked until the transaction ends (with the word read along,
    unlocked), by direction; 404 when there is no such word."""
    cards = await CARDS_FOR_UPDATE.objects(valid_id(word_id), user.id)
    if not cards:  # every word has its forward card
        raise WORD_NOT_FOUND
    return {card.direction: card for card in cards}


async def record_review(word_id: int, user: User, body: ReviewCreate) -> tuple[Review, WordOut]:
    """Apply a review to the card's schedule and log it, as one transaction."""
    async with in_transaction():
        # The row lock makes concurrent reviews of one card queue up instead of overwriting
        # each other (SQLite serialises writers anyway).
        cards = await lock_cards_or_404(word_id, user)
        word = cards[Direction.FORWARD].word
        card = cards.get(body.direction)
        if card is None or (body.direction == Direction.REVERSE and not word.reverse):
            raise HTTPException(
                422,
                detail=[
                    {
                        "type": "value_error",
                        "loc": ["body", "direction"],
                        "msg": "This word has no reverse card (turn its `reverse` on first)",
                    }
                ],
            )
        now = utcnow()
        rules = scheduler(user.desired_retention, fsrs_parameters(user))
        after = next_schedule(card, body.rating, rules, now)
        review = await Review.create(
            card_id=card.id,
            direction=card.direction,
            word_id=word.id,
            user_id=user.id,
            rating=body.rating,
            reviewed_at=now,
            reviewed_on=now.date(),
            duration_ms=body.duration_ms,
            state_before=card.state,
            step_before=card.step,
            stability_before=card.stability,
            difficulty_before=card.fsrs_difficulty,
            due_before=card.due_at,
            last_reviewed_before=card.last_reviewed_at,
            state_after=after["state"],
            step_after=after["step"],
            stability_after=after["stability"],
            difficulty_after=after["fsrs_difficulty"],
            due_after=after["due_at"],
        )
        card.update_from_dict(after)
        await card.save(update_fields=SCHEDULE_COLUMNS)
    return review, WordOut.of_word(word, cards.values(), ForgettingCurve.of(user))


async def undo_latest_review(word_id: int, review_id: int, user: User) -> WordOut:
    """Put the card back as it was before its latest review and delete that review, as one
    transaction; 409 for a review that is not its card's latest."""
    async with in_transaction():
        cards = await lock_cards_or_404(word_id, user)
        word = cards[Direction.FORWARD].word
        review = await Review.get_or_none(id=valid_id(review_id), word_id=word.id)
        if review is None:
            raise REVIEW_NOT_FOUND
        if await Review.filter(card_id=review.card_id, id__gt=review.id).exists():
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail="Only the latest review of a card can be undone",
            )
        card = cards[review.direction]
        card.update_from_dict(schedule_before(review, card))
        await card.save(update_fields=SCHEDULE_COLUMNS)
        await review.delete()
    return WordOut.of_word(word, cards.values(), ForgettingCurve.of(user))


def studied_cards(user_id: int) -> QuerySet[Card]:
    """The user's cards that are studied (not suspended, and reverse ones only while on)."""
    return Card.filter(user_id=user_id, active=True)


def due_cards(user_id: int, now: datetime) -> QuerySet[Card]:
    """The user's cards that are due now: new ones, and reviewed ones whose time has come."""
    return studied_cards(user_id).filter(Q(state=State.NEW) | Q(due_at__lte=now))


class SqlParams:
    """Query parameters collected in order, with each dialect's placeholder."""

    def __init__(self, dialect: str) -> None:
        self.values: list[Any] = []
        # Numbered, so that a query may be written in any order: $1 (SQLite: ?1), $2, …
        self.sign = "$" if dialect == "postgres" else "?"

    def __call__(self, value: Any) -> str:
        """The placeholder of one more parameter."""
        self.values.append(value)
        return f"{self.sign}{len(self.values)}"


def sql_params() -> SqlParams:
    """Parameters for a hand-written query on the app's database."""
    return SqlParams(connections.get("default").capabilities.dialect)


def day_of(column: str, bounds: Sequence[datetime], param: SqlParams) -> str:
    """SQL: the index of the study day a timestamp column falls in, 0 for the first (anything
    before bounds[1]); `bounds` holds each day's start and the last one's end.

    The bounds are instants computed in Python from the learner's time zone, real per day (so
    a DST day is 23 or 25 hours long), and the database only compares: no time zone functions
    (SQLite has none, and PostgreSQL's own zone database could disagree with Python's).
    PostgreSQL searches them with width_bucket; SQLite with the same binary search written
    as nested CASEs (about 9 comparisons a row for a year of days)."""
    if param.sign == "$":
        return f"width_bucket({column}, {param(list(bounds[1:-1]))}::timestamptz[])"

    def within(first: int, last: int) -> str:  # a day from `first` to `last` - 1
        if last - first == 1:
            return str(first)
        middle = (first + last) // 2
        bound = param(bounds[middle])
        return (
            f"CASE WHEN {column} < {bound} THEN {within(first, middle)} "
            f"ELSE {within(middle, last)} END"
        )

    return within(0, len(bounds) - 1)


async def count_per_day(
    table: str, column: str, bounds: Sequence[datetime], where: str, param: SqlParams, *,
    counts: str = "COUNT(*)",
) -> dict[int, tuple[int, ...]]:  # fmt: skip
    """Rows of a table (matching `where`, whose parameters `param` holds) per study day up to
    the last bound, grouped in the database: each day's index and its `counts` columns, for
    the days with any row."""
    sql = (
        f"SELECT {day_of(column, bounds, param)}, {counts} FROM {table} "
        f"WHERE {where} AND {column} < {param(bounds[-1])} GROUP BY 1"
    )
    _, rows = await connections.get("default").execute_query(sql, param.values)
    return {row[0]: tuple(row[1:]) for row in rows}


async def reviews_per_day(user: User, bounds: Sequence[datetime]) -> list[tuple[int, int]]:
    """Reviews and `again` ratings on each study day between the bounds, counted in SQL."""
    param = sql_params()
    where = f"user_id = {param(user.id)} AND reviewed_at >= {param(bounds[0])}"
    again = f"COUNT(CASE WHEN rating = {param(Rating.AGAIN.value)} THEN 1 END)"
    days = await count_per_day(
        "reviews", "reviewed_at", bounds, where, param, counts=f"COUNT(*), {again}"
    )
    return [(days[n][0], days[n][1]) if n in days else (0, 0) for n in range(len(bounds) - 1)]


#: How many study days a streak reads at a time, going back: most streaks end within the
#: first window; a longer one is read a year at a time.
STREAK_WINDOWS = (30, 365)


async def streak_days(user: User, days: StudyDays, today: date) -> int:
    """Consecutive study days with a review, ending today or yesterday."""
    streak, end = 0, today  # `end`: the newest day of the window to read
    for window in chain(STREAK_WINDOWS[:1], repeat(STREAK_WINDOWS[1])):
        first = end - timedelta(days=window - 1)
        counts = await reviews_per_day(user, days.bounds(first, window))
        newest_first = [reviews > 0 for reviews, _ in reversed(counts)]
        if end == today and not newest_first[0]:
            newest_first = newest_first[1:]  # today may still come; the streak ends yesterday
        run = 0
        while run < len(newest_first) and newest_first[run]:
            run += 1
        streak += run
        if run < len(newest_first):
            break
        end = first - timedelta(days=1)
    return streak


def reviews_since(user_id: int, start: datetime) -> ValuesQuery[Literal[False]]:
    """The user's reviews since `start`, counted by their card's state before them."""
    reviews = Review.filter(user_id=user_id, reviewed_at__gte=start)
    return reviews.annotate(n=Count("id")).group_by("state_before").values("state_before", "n")


def due_count(user_id: int, now: datetime) -> ValuesQuery[Literal[False]]:
    """How many of the user's cards are due now."""
    return due_cards(user_id, now).annotate(n=Count("id")).values("n")


def due_reviews(user_id: int, now: datetime, limit: int) -> QuerySet[Card]:
    """The first cards seen before that are due now, most overdue first."""
    due = studied_cards(user_id).filter(due_at__lte=now, state__not=State.NEW)
    return due.order_by("due_at", "id").limit(limit)


def first_new_cards(user_id: int, limit: int) -> QuerySet[Card]:
    """The first new cards, oldest word first."""
    return studied_cards(user_id).filter(state=State.NEW).order_by("due_at", "id").limit(limit)


def words_by_id(user_id: int, word_ids: list[int]) -> ValuesQuery[Literal[False]]:
    """The user's words of these ids, joined with their cards (WORD_AND_CARD)."""
    return Word.filter(id__in=word_ids, user_id=user_id).values(*WORD_AND_CARD)


#: The study queue's queries, built once: every study screen runs them all.
REVIEWS_SINCE = PreparedQuery(reviews_since)
DUE_COUNT = PreparedQuery(due_count)
DUE_REVIEWS = PreparedQuery(due_reviews)
FIRST_NEW_CARDS = PreparedQuery(first_new_cards)
WORDS_BY_ID = PreparedQuery(words_by_id)


async def reviews_today(user: User, start: datetime) -> tuple[int, int]:
    """This study day's reviews so far: of new cards (their first), and of cards seen before."""
    counts = {row["state_before"]: row["n"] for row in await REVIEWS_SINCE.rows(user.id, start)}
    first = counts.pop(State.NEW, 0)
    return first, sum(counts.values())


async def count_by(query: QuerySet[Any], column: str) -> dict[Any, int]:
    """How many rows of the query hold each value of a column."""
    rows = await query.annotate(n=Count("id")).group_by(column).values_list(column, "n")
    return dict(rows)


learning_router = APIRouter(
    tags=["learning"], responses=error_responses(401), route_class=BodyLimitRoute
)


@learning_router.post(
    "/words/{word_id:int}/reviews",
    status_code=201,
    responses=error_responses(404),
    dependencies=[IDEMPOTENT],
)
async def review_word(word_id: WordId, body: ReviewCreate, user: CurrentUser) -> ReviewResult:
    """Record a review of one of the word's cards; its schedule moves on by FSRS (a card not
    yet due may be reviewed too)."""
    review, word = await record_review(word_id, user, body)
    return ReviewResult(review=ReviewOut.model_validate(review), word=word)


@learning_router.get("/words/{word_id:int}/reviews", responses=error_responses(404))
async def read_reviews(
    word_id: WordId,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ReviewPage:
    """A word's reviews, of both its cards, newest first."""
    word = await get_word_or_404(word_id, user)
    query = Review.filter(word_id=word.id)
    total = await query.count()
    reviews = await query.order_by("-reviewed_at", "-id").offset(offset).limit(limit)
    items = [ReviewOut.model_validate(r) for r in reviews]
    return ReviewPage(items=items, total=total, limit=limit, offset=offset)


@learning_router.delete(
    "/words/{word_id:int}/reviews/{review_id:int}", responses=error_responses(404, 409)
)
async def undo_review(
    word_id: WordId,
    review_id: Annotated[int, PathParam(description="The review's id.")],
    user: CurrentUser,
) -> WordOut:
    """Undo a card's latest review: the card's schedule is exactly what it was before it."""
    return await undo_latest_review(word_id, review_id, user)


@learning_router.get("/study", response_model=StudyQueue)
async def read_study_queue(
    user: CurrentUser, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Response:
    """Cards to study now, of both directions, within today's limits: cards seen before that
    are due, most overdue first, then new cards, oldest word first; each with what every
    rating would schedule. Suspended words never come."""
    now = utcnow()
    new_done, reviews_done = await reviews_today(
        user, (days := StudyDays.of(user)).start(days.today(now))
    )
    new_left = max(0, user.new_per_day - new_done)
    reviews_left = max(0, user.reviews_per_day - reviews_done)
    [due] = await DUE_COUNT.rows(user.id, now)
    picked = (
        await DUE_REVIEWS.objects(user.id, now, min(limit, reviews_left)) if reviews_left else []
    )
    if len(picked) < limit and new_left:
        picked += await FIRST_NEW_CARDS.objects(user.id, min(limit - len(picked), new_left))
    word_ids = list({card.word_id: None for card in picked})
    words = words_of_rows(await WORDS_BY_ID.rows(user.id, word_ids)) if word_ids else {}
    curve = ForgettingCurve.of(user)
    rules = scheduler(user.desired_retention, fsrs_parameters(user))
    items = [
        words[card.word_id].json(curve)
        | {"direction": card.direction, "previews": preview(card, rules, now)}
        for card in picked
        if card.word_id in words  # not deleted meanwhile
    ]
    return json_response(
        {
            "items": items,
            "due_total": due["n"],
            "new_left_today": new_left,
            "reviews_left_today": reviews_left,
        }
    )


@learning_router.get("/stats")
async def read_stats(user: CurrentUser) -> StatsOut:
    """Counts of words, cards and reviews, 30-day retention and the daily streak, in the
    learner's study days."""
    now = utcnow()
    days = StudyDays.of(user)
    today = days.today(now)
    by_state = dict.fromkeys(State, 0) | await count_by(studied_cards(user.id), "state")
    by_difficulty = {str(d): 0 for d in range(1, 6)} | {
        str(d): n for d, n in (await count_by(Word.filter(user_id=user.id), "difficulty")).items()
    }
    reviews = Review.filter(user_id=user.id)
    recent = reviews.filter(
        reviewed_at__gte=days.start(today - timedelta(days=29)), state_before=State.REVIEW
    )
    recent_total = await recent.count()
    recalled = await recent.filter(rating__not=Rating.AGAIN).count()
    return StatsOut(
        words=sum(by_difficulty.values()),
        new=by_state[State.NEW],
        due=await due_cards(user.id, now).count(),
        reviews_today=await reviews.filter(reviewed_at__gte=days.start(today)).count(),
        reviews_total=await reviews.count(),
        retention_30d=recalled / recent_total if recent_total else None,
        streak_days=await streak_days(user, days, today),
        by_state=by_state,
        by_difficulty=by_difficulty,
    )


@learning_router.get("/stats/forecast")
async def read_forecast(user: CurrentUser, days: StatsDays = 30) -> ForecastOut:
    """Cards falling due on each study day from today (today's with the overdue ones)."""
    study_days = StudyDays.of(user)
    today = study_days.today(utcnow())
    bounds = study_days.bounds(today, days)
    param = sql_params()
    # studied_cards(), less the new ones: a forecast is of reviews.
    where = (
        f"user_id = {param(user.id)} AND active = {param(True)} "
        f"AND state <> {param(State.NEW.value)}"
    )
    # No lower bound: overdue cards fall on day 0, today.
    due = await count_per_day("cards", "due_at", bounds, where, param)
    items = [
        ForecastDay(date=today + timedelta(days=n), due=due[n][0] if n in due else 0)
        for n in range(days)
    ]
    return ForecastOut(items=items)


@learning_router.get("/stats/history")
async def read_history(user: CurrentUser, days: StatsDays = 30) -> HistoryOut:
    """Reviews, and how many of them were `again`, on each study day up to today."""
    study_days = StudyDays.of(user)
    first = study_days.today(utcnow()) - timedelta(days=days - 1)
    counts = await reviews_per_day(user, study_days.bounds(first, days))
    items = [
        HistoryDay(date=first + timedelta(days=n), reviews=reviews, again=again)
        for n, (reviews, again) in enumerate(counts)
    ]
    return HistoryOut(items=items)


# --- Import and export ---
# Export streams CSV; import takes CSV or TSV (an export, or Anki's plain-text notes export),
# creates the valid rows, skips the words the user has, and reports the rest by line number.
# An import never stalls other requests: the file is parsed and checked on a worker thread, and
# its words go in by chunks, each a short transaction of its own (a long one would hold SQLite's
# only connection, and every request waits for that).

EXPORT_COLUMNS = ("word", "definition", "example", "language", "difficulty", "tags")
#: Imports carry files; everything else is JSON and capped by MAX_BODY_BYTES.
IMPORT_MAX_BYTES = 5 * 1024 * 1024
#: Room for a multipart envelope around a 5 MB file.
MULTIPART_OVERHEAD = 64 * 1024
#: Anki's names for the first two fields of a basic note.
COLUMN_ALIASES = {"front": "word", "back": "definition", "term": "word", "meaning": "definition"}
ANKI_SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t", "space": " ", "pipe": "|"}
#: What Anki's "#<name> column:N" lines name; deck, note type and guid columns are left out.
ANKI_COLUMNS = {"tags": "tags", "deck": "", "notetype": "", "guid": ""}
#: An import reports at most this many bad rows.
MAX_IMPORT_ERRORS = 1000
#: Words inserted per transaction (and read per query when looking for duplicates).
IMPORT_CHUNK = 200
#: What a spreadsheet takes for the start of a formula (OWASP's list): export writes such a
#: cell with a leading ', which import removes again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: The csv module refuses fields over 128 KiB by default, which made a whole file unreadable;
#: a field as long as the file may be is now read, and the row reports the field as too long.
csv.field_size_limit(IMPORT_MAX_BYTES + 1)
#: Imports parse and check their files here, a chunk at a time: one thread per process, so that
#: however many imports run at once, they take turns and at most one competes with the event
#: loop for the interpreter.
import_thread = ThreadPoolExecutor(1, "import")
UNCLOSED_QUOTE = (
    "A quoted field starts on this line and is never closed (or is closed inside a field); "
    "the lines after it are read as rows of their own"
)
#: What separates the tags of a tags cell: any whitespace (a tag holds none).
TAG_SEPARATOR = re.compile(f"[{char_class(WHITESPACE)}]+")
HTML_TAG = re.compile(r"<[^>]*>")
HTML_BREAK = re.compile(r"<br\s*/?>|</div>|</p>", re.IGNORECASE)
#: The 422 for an upload that is not text in a table, as FastAPI's error list like every 422.
UNREADABLE_FILE = HTTPException(
    422,
    detail=[
        {
            "type": "value_error",
            "loc": ["body", "file"],
            "msg": "The file is not readable UTF-8 CSV or TSV",
        }
    ],
)
TOO_MANY_FILES = HTTPException(
    422,
    detail=[{"type": "value_error", "loc": ["body", "file"], "msg": "Send exactly one file"}],
)


class ImportProblem(BaseModel):
    """A row that could not be imported."""

    line: int = Field(description="1-based line number in the file (header and # lines count).")
    detail: str


class ImportResult(BaseModel):
    """What an import did."""

    created: int
    skipped: int = Field(description="Rows whose word you already have in that language.")
    errors: list[ImportProblem]


@dataclass
class AnkiHeader:
    """What Anki's "#key:value" lines at the top of a notes export say."""

    separator: str | None = None
    #: The "#columns:" line, split once the separator is known.
    columns: str | None = None
    #: "#tags column:3"-style lines: column number -> column name ("" for one left out).
    special: dict[int, str] = field(default_factory=dict)
    html: bool = False
    #: How many lines the header takes.
    lines: int = 0

    def read(self, key: str, value: str) -> None:
        """Take in one "#key:value" line."""
        if key == "separator":
            self.separator = ANKI_SEPARATORS.get(value.lower(), value[:1] or None)
        elif key == "columns":
            self.columns = value
        elif key == "html":
            self.html = value.lower() == "true"
        elif key.endswith(" column") and value.isdigit():
            self.special[int(value)] = ANKI_COLUMNS.get(key.removesuffix(" column"), "")

    def column_names(self, separator: str, width: int = 64) -> list[str] | None:
        """The columns the header names, or None when it names none (the file may)."""
        if self.columns is not None:
            return column_names(self.columns.split(separator))
        if self.special:  # the other columns are the note's fields, in order
            fields = iter(("word", "definition", "example"))
            return [
                self.special[i] if i in self.special else next(fields, "")
                for i in range(1, width + 1)
            ]
        return None


@dataclass
class Table:
    """An import file, parsed: column names, data rows with their line numbers, HTML or not."""

    columns: list[str]
    #: (line, cells), or (line, the reason it is not a row).
    rows: list[tuple[int, tuple[str, ...] | str]]
    html: bool = False


def looks_like_formula(cell: str) -> bool:
    """Whether export writes this cell with a leading ' (quotes at its start included, so that
    import, which removes exactly one, gives back a cell that really began with ')."""
    return cell.lstrip("'").startswith(FORMULA_STARTS)


def cell_to_export(cell: str) -> str:
    """A cell as export writes it: shown as text, never run as a formula, by spreadsheets."""
    return "'" + cell if looks_like_formula(cell) else cell


def cell_from_import(cell: str) -> str:
    """A cell without the ' that export adds (and only that one)."""
    return cell[1:] if cell.startswith("'") and looks_like_formula(cell[1:]) else cell


def export_rows(words: list[dict[str, Any]]) -> str:
    """Words as CSV lines in export column order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for w in words:
        tags = " ".join(tags_from_column(w["tags"]))
        language = language_from_column(w["language"]) or ""
        cells = [w["word"], w["definition"], w["example"] or "", language, str(w["difficulty"])]
        writer.writerow([cell_to_export(cell) for cell in [*cells, tags]])
    return buffer.getvalue()


def column_names(cells: Sequence[str]) -> list[str] | None:
    """The columns a header row names (unknown ones as ""), or None when the row is data."""
    names = [COLUMN_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in cells]
    if {"word", "definition"} <= set(names):
        return [name if name in EXPORT_COLUMNS else "" for name in names]
    return None


def read_anki_header(lines: list[str]) -> AnkiHeader:
    """The "#key:value" lines at the top of a file (none in a plain CSV)."""
    header = AnkiHeader()
    for line in lines:
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        header.read(key.strip().lower(), value.strip())
        header.lines += 1
    return header


def sniff_separator(sample: str) -> str:
    """The field separator of a CSV or TSV sample."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    # A tab on every line is TSV, even when the text itself holds commas.
    if lines and all("\t" in line for line in lines):
        return "\t"
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def badly_quoted(record: list[str], separator: str, *, at_end: bool) -> bool:
    """Whether a record's lines hold a quoted field that is never closed, or closed in the
    middle of a field: the lenient reader would have swallowed the lines after the quote
    into one field. Records of one line keep the lenient reading (`5" screen` is text) unless
    they run to the end of the file with the quote still open."""
    try:
        for _ in csv.reader(record, delimiter=separator, strict=True):
            pass
    except csv.Error as exc:
        return len(record) > 1 or (at_end and "unexpected end of data" in str(exc))
    return False


def data_rows(
    lines: list[str], separator: str, first_line: int
) -> Iterator[tuple[int, tuple[str, ...] | str]]:
    """The rows of a CSV body (its lines, as the csv module splits them) that hold anything,
    each with the file line it starts on. A badly quoted field is reported at its line (as a
    string) and reading goes on from the line after it; after MAX_IMPORT_ERRORS of those, the
    rest is read leniently (each would cost a new reader)."""
    start, restarts = 0, 0
    while start < len(lines):
        reader = csv.reader(
            (lines[i] for i in range(start, len(lines))), delimiter=separator
        )  # no copy of the remaining lines on each restart
        line, restart = start, None
        for cells in reader:
            end = start + reader.line_num
            if (
                restarts < MAX_IMPORT_ERRORS
                and (end - line > 1 or end == len(lines))
                and badly_quoted(lines[line:end], separator, at_end=end == len(lines))
            ):
                yield first_line + line, UNCLOSED_QUOTE
                restart, restarts = line + 1, restarts + 1
                break
            if any(cell.strip() for cell in cells):
                # A tuple of strings: the collector stops tracking it, so a large file's rows
                # do not make every later collection longer while the import runs.
                yield first_line + line, tuple(cells)
            line = end
        if restart is None:
            return
        start = restart


def read_table(text: str) -> Table:
    """Parse an import file: Anki's header lines, then the rows, the first of which may name
    the columns (without any, the columns are in export order)."""
    # Lines as the csv module sees them (\n, \r or \r\n), so that line numbers agree.
    lines = io.StringIO(text, newline="").readlines()
    header = read_anki_header(lines)
    body = lines[header.lines :]
    # The csv module's sniffer takes time quadratic in its sample when quotes abound (64 KiB
    # of them took 20 s): a few KiB, the first lines, are enough to tell the separator.
    separator = header.separator or sniff_separator("".join(body[:50])[:4096])
    columns = header.column_names(separator)
    rows = list(data_rows(body, separator, first_line=header.lines + 1))
    if columns is None and rows and isinstance(rows[0][1], tuple):
        columns = column_names(rows[0][1])
        if columns is not None:  # a header row, not data
            rows = rows[1:]
    return Table(columns or list(EXPORT_COLUMNS), rows, header.html)


def decode_upload(data: bytes) -> str | None:
    """An uploaded file as text, or None when it is not UTF-8 text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def parse_upload(data: bytes) -> Table:
    """An uploaded file as a table; 422 when it is not readable UTF-8 CSV or TSV."""
    text = decode_upload(data)
    if text is None:
        raise UNREADABLE_FILE
    try:
        return read_table(text)
    except (csv.Error, ValueError):  # the csv module's verdict on a malformed file
        raise UNREADABLE_FILE from None


def html_to_text(value: str) -> str:
    """Anki's HTML fields as plain text."""
    return html.unescape(HTML_TAG.sub("", HTML_BREAK.sub("\n", value)))


def parse_row(table: Table, cells: Sequence[str]) -> WordCreate | str:
    """One data row as a validated new word, or the reason it is not one."""
    columns = table.columns
    if len(cells) > len(columns):
        return f"{len(cells)} fields, but the file has {len(columns)} columns"
    cells = [cell_from_import(cell) for cell in cells]
    fields: dict[str, Any] = {
        name: html_to_text(cell) if table.html else cell
        for name, cell in zip(columns, cells, strict=False)
        if name and trim(cell)
    }
    if "tags" in fields:
        fields["tags"] = [tag for tag in TAG_SEPARATOR.split(fields["tags"]) if trim(tag)]
    try:
        # Not strict: every cell is text, and "3" is a difficulty here.
        return WordCreate.model_validate(fields, strict=False)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else error["msg"]


@dataclass
class ImportPlan:
    """What an import will do: the words to create, the duplicates skipped, the bad rows."""

    words: list[Word] = field(default_factory=list)
    skipped: int = 0
    errors: list[ImportProblem] = field(default_factory=list)


async def stored_keys(user: User) -> set[tuple[str, str]]:
    """The duplicate keys (word key, language) of the user's words, read in chunks so that a
    large vocabulary does not hold the event loop."""
    keys: set[tuple[str, str]] = set()
    last_id = 0
    while True:
        page = (
            await Word.filter(user_id=user.id, id__gt=last_id)
            .order_by("id")
            .limit(10 * IMPORT_CHUNK)
            .values_list("id", "word_key", "language")
        )
        if not page:
            return keys
        keys.update((key, language) for _, key, language in page)
        last_id = page[-1][0]


def plan_import(
    table: Table,
    rows: list[tuple[int, tuple[str, ...] | str]],
    existing: set[tuple[str, str]],
    user_id: int,
    reverse_default: bool,
) -> ImportPlan:
    """Sort some rows of a file into new words, duplicates (of stored words or earlier rows,
    which join `existing`) and errors; a word that does not say gets `reverse_default`. CPU
    work only: it runs on a worker thread."""
    plan = ImportPlan()
    for line, cells in rows:
        parsed = parse_row(table, cells) if isinstance(cells, tuple) else cells
        if isinstance(parsed, str):
            plan.errors.append(ImportProblem(line=line, detail=parsed))
            continue
        fields = word_fields(parsed.model_dump())
        key = (fields["word_key"], fields["language"])
        if key in existing:
            plan.skipped += 1
            continue
        existing.add(key)
        if fields["reverse"] is None:
            fields["reverse"] = reverse_default
        plan.words.append(Word(user_id=user_id, **fields))
    return plan


async def create_many(user: User, words: list[Word]) -> int:
    """Insert some of the user's words with their cards in one transaction; returns how many were
    new. If a concurrent request added one of them meanwhile, fall back to row by row and
    skip the duplicates."""
    try:
        async with in_transaction():
            # Ids only grow: the words this insert makes are above the highest id before it.
            newest = await Word.all().order_by("-id").only("id").first()
            await Word.bulk_create(words, batch_size=IMPORT_CHUNK)
            cards = await cards_of_new_words(user, after_id=newest.id if newest else 0)
            await Card.bulk_create(cards, batch_size=IMPORT_CHUNK)
            await add_to_word_count(user, len(words))
        return len(words)
    except IntegrityError:
        created = 0
        async with in_transaction():
            for word in words:
                try:
                    async with in_transaction():  # a savepoint per row
                        await word.save()
                        await Card.bulk_create(new_cards(word))
                    created += 1
                except IntegrityError:
                    pass
            await add_to_word_count(user, created)
        return created


async def cards_of_new_words(user: User, *, after_id: int) -> list[Card]:
    """The cards of the words this transaction inserted in bulk (which gives them no ids):
    the user's words above `after_id` without a forward card (only those, so that each chunk
    of a large import reads its own words, not the whole vocabulary). Any other request's
    words have theirs already, or are not visible to this transaction."""
    with_cards = Card.filter(
        user_id=user.id, direction=Direction.FORWARD, word_id__gt=after_id
    ).values("word_id")
    new = Word.filter(user_id=user.id, id__gt=after_id, id__not_in=Subquery(with_cards))
    fields = ("id", "user_id", "created_at", "reverse", "suspended")
    return [card for row in await new.values(*fields) for card in new_cards(Word(**row))]


async def in_import_thread(function: Callable[..., T], *args: Any) -> T:
    """Run an import's CPU work off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(import_thread, function, *args)


async def import_table(user: User, table: Table) -> ImportResult:
    """Import a parsed file a chunk at a time: checked on the import thread, then inserted in a
    transaction of its own; only one chunk's words are in memory at once."""
    existing = await stored_keys(user)
    result = ImportResult(created=0, skipped=0, errors=[])
    for start in range(0, len(table.rows), IMPORT_CHUNK):
        rows = table.rows[start : start + IMPORT_CHUNK]
        plan = await in_import_thread(
            plan_import, table, rows, existing, user.id, user.reverse_cards
        )
        created = await create_many(user, plan.words)
        result.created += created
        result.skipped += plan.skipped + len(plan.words) - created
        result.errors += plan.errors[: MAX_IMPORT_ERRORS - len(result.errors)]
    return result


# Anki packages (.apkg, .colpkg) are zip files holding an SQLite collection. They are read
# defensively: entries by name only (nothing from the archive becomes a path), the collection
# streamed into a temporary file under a size and ratio cap, media never opened, the SQLite
# file opened read-only with a watchdog on every statement.

#: The collection entries in the order Anki's importer prefers them: collection.anki21b
#: (zstd-compressed, Anki 2.1.50+) when the `meta` entry announces it, else collection.anki21,
#: else collection.anki2. Modern packages also carry a dummy collection.anki2 whose one note
#: asks to update Anki: it is the last choice, never "the first found".
ANKI_MODERN, ANKI_LEGACY_2, ANKI_LEGACY_1 = (
    "collection.anki21b",
    "collection.anki21",
    "collection.anki2",
)
#: PackageMetadata.version in `meta` that means collection.anki21b (Anki's "latest").
ANKI_META_ZSTD = 3
#: The most a collection may unpack to, and (past ANKI_RATIO_FLOOR) how many times its packed
#: size: an SQLite file packs to a tenth or so; a bomb packs to a thousandth and less.
ANKI_COLLECTION_MAX_BYTES = 512 * 1024 * 1024
ANKI_MAX_RATIO = 200
ANKI_RATIO_FLOOR = 16 * 1024 * 1024
#: Zip entries (media files mostly) and central directory bytes a package may have: the zip
#: module reads its whole directory into memory, so it is checked before the zip is opened.
ANKI_MAX_ENTRIES = 100_000
ANKI_MAX_DIRECTORY_BYTES = 32 * 1024 * 1024
#: The longest reading a collection may take (a hostile one can hold queries that never end).
ANKI_READ_SECONDS = 300.0
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
ANKI_STATES = {0: State.NEW, 1: State.LEARNING, 2: State.REVIEW, 3: State.RELEARNING}
ANKI_RATINGS = {1: Rating.AGAIN, 2: Rating.HARD, 3: Rating.GOOD, 4: Rating.EASY}
#: Review log types that are reviews: learning, review, relearning, filtered deck (4 and 5
#: are manual rescheduling, which a learner never rated).
ANKI_REVIEW_TYPES = (0, 1, 2, 3)
#: A card's `due` above this is a time in epoch seconds (learning cards), else a day number.
ANKI_DUE_IS_TIME = 1_000_000_000
#: Note type field names that say what they hold (compared lower-cased); fields that say
#: nothing are taken by position: the first for the word, the next for the definition.
WORD_FIELD_NAMES = {"front", "word", "expression", "term", "vocab", "vocabulary", "headword"}
DEFINITION_FIELD_NAMES = {
    "back", "meaning", "definition", "definitions", "translation", "answer", "gloss", "english",
}  # fmt: skip
EXAMPLE_FIELD_NAMES = {"example", "examples", "sentence", "example sentence", "context", "usage"}
ANKI_SOUND = re.compile(r"\[sound:[^\]]*\]")
HTML_HIDDEN = re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
ANKI_SPACE = re.compile(r"\s+")
CLOZE = re.compile(r"\{\{c\d+::")
#: The thread that reads packages and prepares their rows (one per process, like the CSV one,
#: but its own: a package that takes a minute does not hold up a small synchronous import).
job_thread = ThreadPoolExecutor(1, "import-job")


class PackageError(Exception):
    """A package that cannot be imported; the message says why, for the client."""


class ImportCancelled(Exception):
    """The process is shutting down: reading stops where it is."""


class NoteProblem(BaseModel):
    """A note of an Anki package that could not be imported."""

    note: int = Field(description="The note's id in the Anki collection.")
    detail: str


class PackageResult(BaseModel):
    """What importing an Anki package did."""

    created: int
    skipped: int = Field(description="Notes whose word you already have (or that repeat one).")
    errors: list[NoteProblem]
    reviews_imported: int = Field(description="Review log entries imported as reviews.")


@dataclass
class AnkiCard:
    """One card of a note, as the collection has it."""

    id: int
    ord: int
    deck: int
    type: int
    queue: int
    due: int
    ivl: int
    factor: int
    reps: int
    lapses: int
    data: str
    #: Its review log: (epoch ms, ease, ivl, type, duration ms), oldest first, ratings only.
    log: list[tuple[int, int, int, int, int]] = field(default_factory=list)


@dataclass
class AnkiCollection:
    """What an import takes from a collection."""

    #: The collection's creation, at the hour its study days start (day numbers count from it).
    crt: int
    #: Note type id -> (field names, is cloze).
    notetypes: dict[int, tuple[list[str], bool]]
    decks: dict[int, str]
    #: (note id, note type id, tags, fields), in note id order.
    notes: list[tuple[int, int, str, str]]
    #: Note id -> its cards by ord.
    cards: dict[int, dict[int, AnkiCard]]


@dataclass
class PlannedWord:
    """A word an import will create, with each card's schedule and review log."""

    word: Word
    #: Direction -> schedule columns ({} for a new card).
    schedules: dict[Direction, dict[str, Any]]
    #: Direction -> review rows (Review columns without the ids).
    reviews: dict[Direction, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class PackagePlan:
    """What importing a package will do."""

    words: list[PlannedWord] = field(default_factory=list)
    skipped: int = 0
    errors: list[NoteProblem] = field(default_factory=list)
    notes: int = 0


def zip_directory_size(path: Path) -> tuple[int, int]:
    """The entry count and central directory size a zip file declares (zip64 included), read
    from its end record before the zip module loads the directory; PackageError when there is
    no end record (not a zip, or a truncated one)."""
    with open(path, "rb") as file:
        file.seek(0, io.SEEK_END)
        size = file.tell()
        tail_size = min(size, 22 + 65535)  # the end record, and a comment of at most 64 KiB
        file.seek(size - tail_size)
        tail = file.read(tail_size)
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or len(tail) - end < 22:
            raise PackageError("The file is not a complete zip archive (it may be truncated)")
        entries = int.from_bytes(tail[end + 10 : end + 12], "little")
        directory = int.from_bytes(tail[end + 12 : end + 16], "little")
        locator = tail.rfind(b"PK\x06\x07", 0, end)
        if locator >= 0 and (entries == 0xFFFF or directory == 0xFFFFFFFF):
            record = int.from_bytes(tail[locator + 8 : locator + 16], "little")
            file.seek(min(record, size))
            zip64 = file.read(56)
            if zip64[:4] == b"PK\x06\x06" and len(zip64) == 56:
                entries = int.from_bytes(zip64[32:40], "little")
                directory = int.from_bytes(zip64[40:48], "little")
    return entries, directory


def protobuf_varint(data: bytes, at: int) -> tuple[int, int]:
    """A protobuf varint at `at`: its value, and where the next field starts."""
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    raise ValueError("truncated varint")


def protobuf_int_field(data: bytes, number: int) -> int:
    """Top-level varint field `number` of a protobuf message (0, its default, when absent)."""
    at = 0
    try:
        while at < len(data):
            key, at = protobuf_varint(data, at)
            wire = key & 7
            if wire == 0:
                value, at = protobuf_varint(data, at)
                if key >> 3 == number:
                    return value
            elif wire == 2:
                length, at = protobuf_varint(data, at)
                at += length
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
            else:
                return 0
    except ValueError:
        return 0
    return 0


def open_package(path: Path) -> tuple[zipfile.ZipFile, zipfile.ZipInfo, bool]:
    """An Anki package's zip, its collection entry and whether that is zstd-compressed;
    PackageError for a package that is damaged, holds no collection, or would unpack to more
    than the caps allow (a zip bomb: judged from the sizes it declares, which the zip module
    then holds it to)."""
    entries, directory = zip_directory_size(path)
    if entries > ANKI_MAX_ENTRIES or directory > ANKI_MAX_DIRECTORY_BYTES:
        raise PackageError(f"The package holds more than {ANKI_MAX_ENTRIES} files")
    try:
        package = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise PackageError("The file is not a readable zip archive") from None
    try:
        names = set(package.namelist())
        version = 0
        if "meta" in names:
            meta = package.getinfo("meta")
            if meta.file_size <= 1024:
                version = protobuf_int_field(package.read(meta), 1)
        if ANKI_MODERN in names and (version >= ANKI_META_ZSTD or not names & {ANKI_LEGACY_2}):
            entry, zstd = package.getinfo(ANKI_MODERN), True
        elif version >= ANKI_META_ZSTD:
            raise PackageError(f"The package announces {ANKI_MODERN} but does not hold it")
        elif ANKI_LEGACY_2 in names:
            entry, zstd = package.getinfo(ANKI_LEGACY_2), False
        elif ANKI_LEGACY_1 in names:
            entry, zstd = package.getinfo(ANKI_LEGACY_1), False
        else:
            raise PackageError(
                "The zip archive is not an Anki package: it holds no collection.anki21b, "
                "collection.anki21 or collection.anki2"
            )
        if entry.flag_bits & 0x1:
            raise PackageError("The package's collection is encrypted")
        if not zstd:
            check_unpacked_size(entry.file_size, entry.compress_size)
    except PackageError:
        package.close()
        raise
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError):
        package.close()
        raise PackageError("The file is not a readable zip archive") from None
    return package, entry, zstd


def check_unpacked_size(unpacked: int, packed: int) -> None:
    """PackageError when a collection would unpack past the size cap or the ratio cap."""
    if unpacked > ANKI_COLLECTION_MAX_BYTES:
        raise PackageError(
            f"The package's collection unpacks to more than {ANKI_COLLECTION_MAX_BYTES} bytes"
        )
    if unpacked > ANKI_RATIO_FLOOR and unpacked > ANKI_MAX_RATIO * max(packed, 1):
        raise PackageError(
            f"The package's collection unpacks to more than {ANKI_MAX_RATIO} times its "
            "packed size (a zip or zstd bomb)"
        )


def unpack_collection(
    package: zipfile.ZipFile,
    entry: zipfile.ZipInfo,
    zstd: bool,
    destination: Path,
    cancel: threading.Event,
) -> None:
    """Stream a package's collection into `destination`, zstd frames undone as they come,
    stopping at the caps (a bomb never gets further than them on disk or in memory)."""
    written = 0
    try:
        with package.open(entry) as packed, open(destination, "wb") as out:
            source: Any = (
                zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True)
                if zstd
                else packed
            )
            while chunk := source.read(1024 * 1024):
                written += len(chunk)
                check_unpacked_size(written, entry.compress_size)
                out.write(chunk)
                if cancel.is_set():
                    raise ImportCancelled
    except (zstandard.ZstdError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        logger.info("unreadable collection in a package: %s", exc)
        raise PackageError("The package's collection is damaged and cannot be unpacked") from None


def read_collection(path: Path, cancel: threading.Event) -> AnkiCollection:
    """The notes, cards, review log, note types and decks of an unpacked collection, read
    with sqlite3 (read-only, every statement watched); PackageError when it is not an Anki
    collection (a broken schema, or not SQLite at all)."""
    deadline = time.monotonic() + ANKI_READ_SECONDS
    database = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    # Called every few thousand steps of any statement: non-zero aborts it.
    database.set_progress_handler(lambda: int(cancel.is_set() or time.monotonic() > deadline), 1000)
    try:
        database.execute("PRAGMA trusted_schema = OFF")
        return read_collection_tables(database)
    except sqlite3.OperationalError as exc:
        if cancel.is_set():
            raise ImportCancelled from None
        if "interrupted" in str(exc):
            raise PackageError("Reading the package's collection took too long") from None
        raise PackageError(
            f"The package's collection is not a readable Anki collection ({exc})"
        ) from None
    except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, AttributeError) as exc:
        logger.info("unreadable collection in a package: %s", exc)
        raise PackageError("The package's collection is not a readable Anki collection") from None
    finally:
        database.close()


def read_collection_tables(database: sqlite3.Connection) -> AnkiCollection:
    """read_collection's queries (any error on the way means a broken collection)."""
    tables = {
        name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    missing = {"col", "notes", "cards", "revlog"} - tables
    if missing:
        raise PackageError(
            "The package's collection is not an Anki collection (no "
            + ", ".join(sorted(missing))
            + " table)"
        )
    crt, models, decks_json = database.execute("SELECT crt, models, decks FROM col").fetchone()
    notetypes: dict[int, tuple[list[str], bool]] = {}
    decks: dict[int, str] = {}
    if "notetypes" in tables and "fields" in tables:  # the schema of Anki 2.1.28 and later
        for ntid, config in database.execute("SELECT id, config FROM notetypes"):
            notetypes[ntid] = ([], protobuf_int_field(bytes(config or b""), 1) == 1)
        for ntid, _, name in database.execute(
            "SELECT ntid, ord, name FROM fields ORDER BY ntid, ord"
        ):
            if ntid in notetypes:
                notetypes[ntid][0].append(str(name))
    else:  # older ones keep note types and decks as JSON in col
        for ntid, model in json.loads(models or "{}").items():
            fields = sorted(model.get("flds", []), key=lambda f: f.get("ord", 0))
            notetypes[int(ntid)] = ([str(f["name"]) for f in fields], model.get("type") == 1)
    if "decks" in tables:
        for deck_id, name in database.execute("SELECT id, name FROM decks"):
            decks[deck_id] = str(name).replace("\x1f", "::")
    else:
        decks = {int(i): str(d["name"]) for i, d in json.loads(decks_json or "{}").items()}
    notes = [
        (int(nid), int(mid), str(tags), str(flds))
        for nid, mid, tags, flds in database.execute(
            "SELECT id, mid, tags, flds FROM notes ORDER BY id"
        )
    ]
    cards: dict[int, dict[int, AnkiCard]] = {}
    by_id: dict[int, AnkiCard] = {}
    for row in database.execute(
        "SELECT id, nid, CASE WHEN odid THEN odid ELSE did END, ord, type, queue,"
        " CASE WHEN odid THEN odue ELSE due END, ivl, factor, reps, lapses, data FROM cards"
    ):
        card_id, nid, deck, ord_, kind, queue, due, ivl, factor, reps, lapses, data = row
        card = AnkiCard(
            int(card_id), int(ord_), int(deck), int(kind), int(queue), int(due), int(ivl),
            int(factor), int(reps), int(lapses), str(data or ""),
        )  # fmt: skip
        cards.setdefault(int(nid), {}).setdefault(card.ord, card)
        by_id[card.id] = card
    for cid, ms, ease, ivl, kind, duration in database.execute(
        "SELECT cid, id, ease, ivl, type, time FROM revlog ORDER BY cid, id"
    ):
        logged = by_id.get(cid)
        if logged is not None and ease in ANKI_RATINGS and kind in ANKI_REVIEW_TYPES:
            logged.log.append((int(ms), int(ease), int(ivl), int(kind), int(duration)))
    return AnkiCollection(int(crt), notetypes, decks, notes, cards)


def anki_text(value: str) -> str:
    """An Anki field as plain text on one line: sounds dropped, HTML as text, every run of
    whitespace (line breaks included) one space."""
    text = html_to_text(HTML_HIDDEN.sub("", ANKI_SOUND.sub("", value)))
    return ANKI_SPACE.sub(" ", text).strip()


def field_roles(names: Sequence[str]) -> dict[str, int]:
    """Which field of a note type is the word, the definition and the example: by name where
    the names say so, else by position (the example only by name)."""
    roles: dict[str, int] = {}
    for role, known in (
        ("word", WORD_FIELD_NAMES),
        ("definition", DEFINITION_FIELD_NAMES),
        ("example", EXAMPLE_FIELD_NAMES),
    ):
        for index, name in enumerate(names):
            if name.strip().lower() in known and index not in roles.values():
                roles[role] = index
                break
    unnamed = (i for i in range(max(len(names), 2)) if i not in roles.values())
    for role in ("word", "definition"):
        if role not in roles:
            roles[role] = next(unnamed)
    return roles


def anki_tag(text: str) -> str:
    """A deck name or Anki tag as a vocab tag: no spaces, at most 32 characters."""
    return trim(TAG_SEPARATOR.sub("_", text))[:32]


def anki_due(card: AnkiCard, crt: int) -> datetime:
    """When a card that is not new is due: learning cards store a time, others a day number
    counted from the collection's first day."""
    when = card.due if card.due > ANKI_DUE_IS_TIME else crt + card.due * 86400
    return datetime.fromtimestamp(min(max(when, 0), 253402214400), tz=UTC)


def at_ms(ms: int) -> datetime:
    """An Anki review log id (epoch milliseconds) as a time."""
    return datetime.fromtimestamp(min(max(ms, 0), 253402214400000) / 1000, tz=UTC)


def memory_states(
    collection: AnkiCollection, model: fsrs_rs_python.FSRS
) -> dict[int, list[tuple[float, float]]]:
    """Each reviewed card's FSRS memory state after each of its reviews, rebuilt from its
    review log (days between reviews counted in the collection's study days)."""
    logged = [
        card for note_cards in collection.cards.values() for card in note_cards.values() if card.log
    ]
    items = []
    for card in logged:
        days = [(ms // 1000 - collection.crt) // 86400 for ms, *_ in card.log]
        reviews = [
            fsrs_rs_python.FSRSReview(ease, max(day - previous, 0))
            for (_, ease, *_), day, previous in zip(card.log, days, [days[0], *days], strict=False)
        ]
        items.append(fsrs_rs_python.FSRSItem(reviews))
    states = []
    # In slices: one call holds the interpreter throughout, and large batches cost more than
    # their share (24,000 items: 130 ms in one call, 25 ms in slices of 500).
    for start in range(0, len(items), 500):
        states += model.historical_memory_state_batch(items[start : start + 500])
    return {
        card.id: [(s.stability, s.difficulty) for s in history]
        for card, history in zip(logged, states, strict=True)
    }


def stored_memory(card: AnkiCard) -> tuple[float, float, int | None] | None:
    """The FSRS memory state Anki stored with a card (stability, difficulty, last review in
    epoch seconds), when it stored a sane one."""
    try:
        data = json.loads(card.data) if card.data else {}
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    s, d, lrt = data.get("s"), data.get("d"), data.get("lrt")
    if not (isinstance(s, int | float) and isinstance(d, int | float)):
        return None
    if isinstance(s, bool) or isinstance(d, bool) or not (0 < s < 1e6 and 1 <= d <= 10):
        return None
    return float(s), float(d), int(lrt) if isinstance(lrt, int) and lrt > 0 else None


def anki_schedule(
    card: AnkiCard,
    crt: int,
    history: list[tuple[float, float]] | None,
    model: fsrs_rs_python.FSRS,
) -> dict[str, Any]:
    """A card's schedule columns from its Anki state: FSRS memory from what Anki stored,
    else from its review log, else converted from its SM-2 ease and interval."""
    state = ANKI_STATES.get(card.type, State.NEW)
    if state == State.NEW:
        return {}
    memory = stored_memory(card)
    last = at_ms(card.log[-1][0]) if card.log else None
    if memory is not None:
        stability, difficulty, lrt = memory
        if lrt is not None:
            last = datetime.fromtimestamp(lrt, tz=UTC)
    elif history:
        stability, difficulty = history[-1]
    else:
        ease = card.factor / 1000 if card.factor >= 1300 else 2.5
        sm2 = model.memory_state_from_sm2(ease, float(max(card.ivl, 1)), 0.9)
        stability, difficulty = sm2.stability, sm2.difficulty
    due = anki_due(card, crt)
    if last is None:
        last = due - timedelta(days=max(card.ivl, 0))
    return {
        "state": state,
        "step": 0 if state in (State.LEARNING, State.RELEARNING) else None,
        "stability": stability,
        "fsrs_difficulty": difficulty,
        "due_at": due,
        "reps": max(card.reps, 0),
        "lapses": max(card.lapses, 0),
        "last_reviewed_at": last,
    }


def anki_reviews(card: AnkiCard, history: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """A card's review log as vocab reviews, each with the schedule before and after it."""
    rows: list[dict[str, Any]] = []
    before: dict[str, Any] = {
        "state": State.NEW, "stability": None, "difficulty": None, "due": None, "at": None,
    }  # fmt: skip
    for (ms, ease, ivl, kind, duration), (stability, difficulty) in zip(
        card.log, history, strict=True
    ):
        at = at_ms(ms)
        if ivl > 0:
            state, due = State.REVIEW, at + timedelta(days=min(ivl, 36500))
        else:
            relearning = kind == 2 or (kind == 1 and ease == 1)
            state = State.RELEARNING if relearning else State.LEARNING
            due = at + timedelta(seconds=min(-ivl, 86400 * 365))
        rows.append(
            {
                "rating": ANKI_RATINGS[ease],
                "reviewed_at": at,
                "reviewed_on": at.date(),
                "duration_ms": min(max(duration, 0), MAX_ID),
                "state_before": before["state"],
                "step_before": 0 if before["state"] in (State.LEARNING, State.RELEARNING) else None,
                "stability_before": before["stability"],
                "difficulty_before": before["difficulty"],
                "due_before": before["due"] or at,
                "last_reviewed_before": before["at"],
                "state_after": state,
                "step_after": 0 if state in (State.LEARNING, State.RELEARNING) else None,
                "stability_after": stability,
                "difficulty_after": difficulty,
                "due_after": due,
            }
        )
        before = {
            "state": state, "stability": stability, "difficulty": difficulty, "due": due, "at": at,
        }  # fmt: skip
    return rows


def plan_note(
    note: tuple[int, int, str, str],
    collection: AnkiCollection,
) -> WordCreate | str:
    """A note as a validated new word, or the reason it is not one."""
    note_id, notetype_id, tags_text, fields_text = note
    names, cloze = collection.notetypes.get(notetype_id, ([], False))
    values = fields_text.split("\x1f")
    if cloze or CLOZE.search(fields_text):
        return "Cloze notes cannot be imported as words"
    roles = field_roles(names or [""] * len(values))
    texts = {
        role: anki_text(values[index]) if index < len(values) else ""
        for role, index in roles.items()
    }
    if not texts["word"]:
        return "The note's word field is empty (once HTML and sounds are removed)"
    if not texts["definition"]:
        return "The note's definition field is empty (once HTML and sounds are removed)"
    tags = [anki_tag(tag) for tag in tags_text.split()]
    cards = collection.cards.get(note_id, {})
    first = cards[min(cards)] if cards else None
    if first is not None and first.deck in collection.decks:
        tags.append(anki_tag(collection.decks[first.deck]))
    unique = list({tag_key(tag): tag for tag in reversed(tags) if tag}.values())[::-1]
    fields: dict[str, Any] = {
        "word": texts["word"],
        "definition": texts["definition"],
        "tags": unique,
    }
    if texts.get("example"):
        fields["example"] = texts["example"]
    try:
        return WordCreate.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else error["msg"]


def plan_package(
    collection: AnkiCollection,
    existing: set[tuple[str, str]],
    user_id: int,
    progress: "JobProgress",
    cancel: threading.Event,
) -> PackagePlan:
    """Sort a collection's notes into new words (with their cards' schedules and review logs),
    duplicates and errors. CPU work only: it runs on the job thread."""
    plan = PackagePlan(notes=len(collection.notes))
    progress.total = len(collection.notes)
    model = fsrs_rs_python.FSRS(list(DEFAULT_PARAMETERS))
    histories = memory_states(collection, model)
    for done, note in enumerate(collection.notes, 1):
        if done % 1000 == 0 and cancel.is_set():
            raise ImportCancelled
        parsed = plan_note(note, collection)
        if isinstance(parsed, str):
            if len(plan.errors) < MAX_IMPORT_ERRORS:
                plan.errors.append(NoteProblem(note=note[0], detail=parsed))
            continue
        fields = word_fields(parsed.model_dump())
        key = (fields["word_key"], fields["language"])
        if key in existing:
            plan.skipped += 1
            continue
        existing.add(key)
        cards = collection.cards.get(note[0], {})
        ords = sorted(cards)
        by_direction = {Direction.FORWARD: cards[ords[0]]} if ords else {}
        if len(ords) > 1 and ords[1] == 1:
            by_direction[Direction.REVERSE] = cards[1]
        forward = by_direction.get(Direction.FORWARD)
        reverse = by_direction.get(Direction.REVERSE)
        # A suspended forward card sets the word aside; a suspended reverse card alone turns
        # the word's reverse off (its history is kept).
        fields["suspended"] = forward is not None and forward.queue == -1
        fields["reverse"] = reverse is not None and reverse.queue != -1
        planned = PlannedWord(Word(user_id=user_id, **fields), {Direction.FORWARD: {}})
        for direction, card in by_direction.items():
            history = histories.get(card.id)
            planned.schedules[direction] = anki_schedule(card, collection.crt, history, model)
            if history:
                planned.reviews[direction] = anki_reviews(card, history)
        plan.words.append(planned)
    return plan


def read_package(
    path: Path,
    existing: set[tuple[str, str]],
    user_id: int,
    progress: "JobProgress",
    cancel: threading.Event,
) -> PackagePlan:
    """Read an Anki package and plan its import (on the job thread): PackageError when it is
    damaged, hostile or not a package. Its collection is unpacked into a temporary file,
    removed before this returns."""
    package, entry, zstd = open_package(path)
    with package, tempfile.TemporaryDirectory(prefix="vocab-anki-") as scratch:
        collection_path = Path(scratch) / "collection.sqlite3"
        unpack_collection(package, entry, zstd, collection_path, cancel)
        collection = read_collection(collection_path, cancel)
    return plan_package(collection, existing, user_id, progress, cancel)


transfer_router = APIRouter(
    prefix="/words",
    tags=["import and export"],
    responses=error_responses(401),
    # The file is the body: room for IMPORT_MAX_BYTES inside a multipart envelope.
    route_class=body_limit(IMPORT_MAX_BYTES + MULTIPART_OVERHEAD),
)


@transfer_router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "All the user's words as CSV: " + ",".join(EXPORT_COLUMNS),
        }
    },
)
async def export_words(user: CurrentUser) -> StreamingResponse:
    """Download all the user's words as CSV (tags space-separated), starting with a UTF-8 byte
    order mark; a cell that a spreadsheet would run as a formula starts with a '."""

    async def csv_chunks() -> AsyncIterator[str]:
        # A byte order mark first, so that spreadsheet programs read the file as UTF-8.
        yield "\ufeff" + ",".join(EXPORT_COLUMNS) + "\n"
        last_id = 0
        while True:  # pages by id, so memory stays flat however many words there are
            page = (
                await Word.filter(user_id=user.id, id__gt=last_id)
                .order_by("id")
                .limit(500)
                .values("id", *EXPORT_COLUMNS)
            )
            if not page:
                return
            yield export_rows(page)
            last_id = page[-1]["id"]

    return StreamingResponse(
        csv_chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vocab-words.csv"'},
    )


@transfer_router.post("/import", responses=error_responses(413), dependencies=[IDEMPOTENT_IN_STEPS])
async def import_words(file: UploadFile, user: CurrentUser, request: Request) -> ImportResult:
    """Add words from a CSV or TSV file (an export, or an Anki notes export as plain text)."""
    if len((await request.form()).getlist("file")) > 1:  # the form FastAPI has parsed already
        raise TOO_MANY_FILES
    data = await file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        raise HTTPException(413, detail=f"File is larger than {IMPORT_MAX_BYTES} bytes")
    table = await in_import_thread(parse_upload, data)
    return await import_table(user, table)


# --- Import jobs ---
# POST /imports takes a CSV/TSV file or an Anki package and answers 202 at once; the import runs
# in this process as a background task: the file is read and planned on the job thread, then
# written in batches inside ONE transaction (a job that fails or is cut short leaves no
# partial words), which also records the job as done. Progress and a heartbeat go to the
# job's row from a task of their own (outside that transaction), so that any worker or replica
# answers GET /imports/{id}; a queued or running job whose heartbeat has stopped belonged to
# a process that died, and is marked failed at start-up (and when read).
# On SQLite the write transaction holds the database's one connection: other requests wait
# for it, so everything is read and prepared before it begins and it only inserts.

#: How often a running job's row is brought up to date, and how long without that before a
#: job counts as abandoned by a dead process.
JOB_HEARTBEAT_SECONDS = 2.0
JOB_STALE_SECONDS = 60.0
#: Words (with their cards and reviews) inserted per batch of a job, and reviews per INSERT
#: (preparing one INSERT's rows holds the event loop: a few milliseconds at this size).
JOB_BATCH = 500
REVIEW_BATCH = 250
#: The interpreter's thread switch interval while a job runs (see responsive_loop).
JOB_SWITCH_INTERVAL = 0.0005
#: How long shutdown waits for running jobs to roll back before it goes on.
JOB_STOP_SECONDS = 5.0
ABANDONED = (
    "The import was interrupted: the server running it stopped (a restart or a crash). "
    "Nothing was imported; send the file again."
)
SHUT_DOWN = (
    "The import was interrupted: the server shut down. Nothing was imported; send the file again."
)
JOB_FAILED = "The import failed unexpectedly. Nothing was imported; send the file again."
DUPLICATE_MEANWHILE = (
    "A word of this file was added by another request while the import ran. Nothing was "
    "imported; send the file again."
)
JOB_NOT_FOUND = not_found("Import")
NOT_AN_IMPORT = HTTPException(
    422,
    detail=[
        {
            "type": "value_error",
            "loc": ["body", "file"],
            "msg": "The file is neither an Anki package (.apkg, .colpkg) nor UTF-8 CSV or TSV",
        }
    ],
)


@dataclass
class JobProgress:
    """How far a running job is (written to its row by the heartbeat)."""

    done: int = 0
    total: int = 0


class ProgressOut(BaseModel):
    """How far an import is: notes (or rows) handled, of how many."""

    done: int
    total: int


class ImportJobOut(BaseModel):
    """An import running in the background, or its outcome."""

    id: int
    status: JobStatus = Field(description="`queued`, `running`, `done` or `failed`.")
    filename: str
    progress: ProgressOut
    result: PackageResult | ImportResult | None = Field(
        description="Once done: what the import did (an Anki package's errors name notes, a "
        "CSV/TSV file's name lines)."
    )
    error: str | None = Field(description="Once failed: why (nothing was imported).")
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: ImportJob) -> Self:
        """The job as the API shows it."""
        result: PackageResult | ImportResult | None = None
        if job.result is not None:
            model = PackageResult if job.kind == "anki" else ImportResult
            result = model.model_validate(job.result)
        return cls(
            id=job.id,
            status=job.status,
            filename=job.filename,
            progress=ProgressOut(done=job.done, total=job.total),
            result=result,
            error=job.error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class ImportJobPage(BaseModel):
    """One page of the user's imports, newest first."""

    items: list[ImportJobOut]
    total: int
    limit: int
    offset: int


def save_upload(source: Any, destination: Path, limit: int | None) -> int:
    """Copy an upload into a file of ours a chunk at a time (never whole in memory); returns
    its size, or -1 as soon as it passes `limit`."""
    size = 0
    with open(destination, "wb") as out:
        while chunk := source.read(1024 * 1024):
            size += len(chunk)
            if limit is not None and size > limit:
                return -1
            out.write(chunk)
    return size


def recognise_upload(path: Path) -> str:
    """What a file is, by its content: "anki" for an Anki package (checked as far as can be
    without unpacking it), "table" for UTF-8 text; PackageError for a zip that is no usable
    package, ValueError for anything else."""
    with open(path, "rb") as file:
        start = file.read(64 * 1024)
    if start[:4] in ZIP_MAGIC:
        package, entry, zstd = open_package(path)
        with package:
            if zstd:  # a zstd frame may declare its size: a declared bomb goes no further
                with package.open(entry) as packed:
                    declared = zstandard.frame_content_size(packed.read(18))
                if declared > 0:
                    check_unpacked_size(declared, entry.compress_size)
        return "anki"
    try:
        # The first 64 KiB may end inside a character; the whole file is decoded later.
        start.decode("utf-8-sig") if len(start) < 64 * 1024 else start[:-4].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    if b"\x00" in start or not start.strip():
        raise ValueError("not text")
    return "large table" if path.stat().st_size > IMPORT_MAX_BYTES else "table"


def clean_filename(name: str | None) -> str:
    """The client's name for a file as shown back: no control characters, at most 255."""
    text = "".join(c for c in unicodedata.normalize("NFC", name or "") if c not in CONTROL)
    return trim(text)[:255] or "upload"


def read_table_file(path: Path) -> Table:
    """A CSV/TSV upload as a table (UnreadableFile's 422 detail as a PackageError)."""
    try:
        return parse_upload(path.read_bytes())
    except HTTPException:
        raise PackageError("The file is not readable UTF-8 CSV or TSV") from None


def plan_table(
    table: Table,
    existing: set[tuple[str, str]],
    user: User,
    progress: JobProgress,
    cancel: threading.Event,
) -> tuple[list[PlannedWord], ImportResult]:
    """A CSV/TSV file's rows sorted into new words, duplicates and errors (on the job thread)."""
    progress.total = len(table.rows)
    result = ImportResult(created=0, skipped=0, errors=[])
    words: list[PlannedWord] = []
    for start in range(0, len(table.rows), IMPORT_CHUNK):
        if cancel.is_set():
            raise ImportCancelled
        rows = table.rows[start : start + IMPORT_CHUNK]
        plan = plan_import(table, rows, existing, user.id, user.reverse_cards)
        for word in plan.words:
            schedules: dict[Direction, dict[str, Any]] = {Direction.FORWARD: {}}
            if word.reverse:
                schedules[Direction.REVERSE] = {}
            words.append(PlannedWord(word, schedules))
        result.skipped += plan.skipped
        result.errors += plan.errors[: MAX_IMPORT_ERRORS - len(result.errors)]
    return words, result


def cards_of_planned(
    words: list[PlannedWord], stored: dict[tuple[str, str], tuple[int, datetime]]
) -> list[Card]:
    """The cards of planned words just inserted (their ids and creation times in `stored`)."""
    cards = []
    for planned in words:
        word = planned.word
        word_id, created = stored[(word.word_key, word.language)]
        for direction, schedule in planned.schedules.items():
            studied = not word.suspended and (direction == Direction.FORWARD or word.reverse)
            columns = {"due_at": created, **schedule}
            cards.append(
                Card(
                    word_id=word_id,
                    user_id=word.user_id,
                    direction=direction,
                    active=studied,
                    **columns,
                )
            )
    return cards


def reviews_of_planned(
    words: list[PlannedWord],
    stored: dict[tuple[str, str], tuple[int, datetime]],
    card_ids: dict[tuple[int, str], int],
) -> list[Review]:
    """The reviews of planned words whose cards were just inserted."""
    reviews = []
    for planned in words:
        word = planned.word
        word_id, _ = stored[(word.word_key, word.language)]
        for direction, rows in planned.reviews.items():
            card_id = card_ids[(word_id, direction)]
            for row in rows:
                reviews.append(
                    Review(
                        card_id=card_id,
                        direction=direction,
                        word_id=word_id,
                        user_id=word.user_id,
                        **row,
                    )
                )
    return reviews


async def in_job_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a job's CPU work (reading, planning, building rows) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(job_thread, function, *args)


async def insert_planned(user: User, words: list[PlannedWord]) -> int:
    """Insert a batch of planned words with their cards and reviews (in the job's transaction);
    returns how many reviews went in. Bulk inserts give rows no ids, so each table's new rows
    are read back: the user's rows above the highest word id before the batch."""
    newest = await Word.all().order_by("-id").only("id").first()
    after = newest.id if newest else 0
    await Word.bulk_create([planned.word for planned in words], batch_size=IMPORT_CHUNK)
    rows = await Word.filter(user_id=user.id, id__gt=after).values_list(
        "id", "word_key", "language", "created_at"
    )
    stored = {(key, language): (word_id, created) for word_id, key, language, created in rows}
    cards = await in_job_thread(cards_of_planned, words, stored)
    await Card.bulk_create(cards, batch_size=IMPORT_CHUNK)
    if not any(planned.reviews for planned in words):
        return 0
    card_rows = await Card.filter(user_id=user.id, word_id__gt=after).values_list(
        "id", "word_id", "direction"
    )
    card_ids = {(word_id, str(direction)): card_id for card_id, word_id, direction in card_rows}
    reviews = await in_job_thread(reviews_of_planned, words, stored, card_ids)
    await Review.bulk_create(reviews, batch_size=REVIEW_BATCH)
    return len(reviews)


class JobAbandoned(Exception):
    """The job's row was marked failed (as abandoned) while it ran: its words are rolled back."""


async def write_job(
    job_id: int,
    user: User,
    words: list[PlannedWord],
    result: PackageResult | ImportResult,
    progress: JobProgress,
) -> None:
    """Write a job's words in batches, all in one transaction that also marks the job done,
    so that a job is done exactly when its words are there (and a failed one left none)."""
    unwritten = progress.total - len(words)  # errors and duplicates: nothing to write
    try:
        async with in_transaction():
            reviews = 0
            for start in range(0, len(words), JOB_BATCH):
                reviews += await insert_planned(user, words[start : start + JOB_BATCH])
                progress.done = unwritten + min(start + JOB_BATCH, len(words))
            await add_to_word_count(user, len(words))
            if isinstance(result, PackageResult):
                result.reviews_imported = reviews
            marked = await ImportJob.filter(id=job_id, status=JobStatus.RUNNING).update(
                status=JobStatus.DONE,
                result=result.model_dump(),
                done=progress.total,
                total=progress.total,
                finished_at=utcnow(),
            )
            if not marked:
                raise JobAbandoned
    except IntegrityError:  # a request added one of these words since the plan was made
        raise PackageError(DUPLICATE_MEANWHILE) from None


async def import_file(
    job_id: int, user: User, kind: str, path: Path, progress: JobProgress, cancel: threading.Event
) -> None:
    """Do one job's import: read and plan the file on the job thread, then write it."""
    existing = await stored_keys(user)
    result: PackageResult | ImportResult
    if kind == "anki":
        plan = await in_job_thread(read_package, path, existing, user.id, progress, cancel)
        words = plan.words
        result = PackageResult(
            created=len(words), skipped=plan.skipped, errors=plan.errors, reviews_imported=0
        )
    else:
        table = await in_job_thread(read_table_file, path)
        words, result = await in_job_thread(plan_table, table, existing, user, progress, cancel)
        result.created = len(words)
    await write_job(job_id, user, words, result, progress)


async def fail_job(job_id: int, error: str) -> None:
    """Mark a queued or running job failed."""
    await ImportJob.filter(id=job_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
        status=JobStatus.FAILED, error=error[:1000], finished_at=utcnow()
    )


async def fail_abandoned_jobs(user: User | None = None) -> int:
    """Mark failed the queued and running jobs (of one user, or everyone's) whose process
    stopped writing their heartbeat: it died, and its transaction died with it."""
    stale = utcnow() - timedelta(seconds=JOB_STALE_SECONDS)
    query = ImportJob.filter(
        status__in=(JobStatus.QUEUED, JobStatus.RUNNING), heartbeat_at__lt=stale
    )
    if user is not None:
        query = query.filter(user_id=user.id)
    return await query.update(status=JobStatus.FAILED, error=ABANDONED, finished_at=utcnow())


async def fail_jobs_left_behind() -> None:
    """At start-up: mark failed the jobs of processes that died (see fail_abandoned_jobs). A
    database that cannot be reached yet does not stop the start-up (/health reports it); the
    jobs are marked when they are next read."""
    try:
        async with asyncio.timeout(settings.DATABASE_TIMEOUT_SECONDS + 1):
            abandoned = await fail_abandoned_jobs()
    except (TimeoutError, OperationalError, *DATABASE_DOWN) as exc:
        logger.warning("could not look for interrupted imports at start-up: %s", exc)
        return
    if abandoned:
        logger.warning("marked %s import(s) failed: their process had stopped", abandoned)


async def keep_job_alive(job_id: int, progress: JobProgress) -> None:
    """Write a job's progress and heartbeat to its row every JOB_HEARTBEAT_SECONDS (a task of
    its own, outside the job's transaction, so that other workers see them)."""
    while True:
        try:
            await ImportJob.filter(
                id=job_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
            ).update(done=progress.done, total=progress.total, heartbeat_at=utcnow())
        except (OperationalError, *DATABASE_DOWN) as exc:  # the next beat tries again
            logger.warning("could not record the progress of import %s: %s", job_id, exc)
        await asyncio.sleep(JOB_HEARTBEAT_SECONDS)


@asynccontextmanager
async def responsive_loop() -> AsyncIterator[None]:
    """While a job runs, hand the interpreter back to the event loop sooner.

    The job thread computes for seconds on end; each time the event loop wakes up for I/O it
    waits for that thread to let go of the interpreter, up to the switch interval (5 ms) per
    wake-up, and a request wakes it several times: /health went from 4 ms to 13 ms median and
    over 100 ms at p99 during a large import. A 0.5 ms interval makes those waits short."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, JOB_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class ImportJobs:
    """The import jobs this process runs: one at a time (the others queue), each a task
    that shutdown cancels (their transactions roll back, their rows say why)."""

    def __init__(self) -> None:
        self.tasks: dict[asyncio.Task[None], int] = {}
        self.cancel = threading.Event()
        self.turn: asyncio.Lock | None = None

    def start(self) -> None:
        """Take jobs (in the app's event loop)."""
        self.cancel = threading.Event()
        self.turn = asyncio.Lock()

    def submit(self, job_id: int, user_id: int, kind: str, path: Path) -> None:
        """Run a job in the background; it owns `path` and removes it."""
        task = asyncio.create_task(self.run(job_id, user_id, kind, path), name=f"import-{job_id}")
        self.tasks[task] = job_id
        task.add_done_callback(self.tasks.pop)

    async def run(self, job_id: int, user_id: int, kind: str, path: Path) -> None:
        """One job, from queued to done or failed."""
        assert self.turn is not None, "ImportJobs.start() runs in the lifespan"
        progress, cancel = JobProgress(), self.cancel
        heartbeat = asyncio.create_task(keep_job_alive(job_id, progress))
        try:
            async with self.turn, responsive_loop():
                await ImportJob.filter(id=job_id, status=JobStatus.QUEUED).update(
                    status=JobStatus.RUNNING
                )
                user = await User.get_or_none(id=user_id)
                if user is not None:  # else the account (and the job) has been deleted
                    await import_file(job_id, user, kind, path, progress, cancel)
        except PackageError as exc:
            await fail_job(job_id, str(exc))
        except (JobAbandoned, ImportCancelled):
            pass  # already marked, or shutdown marks it
        except Exception:
            logger.exception("import %s failed", job_id)
            await fail_job(job_id, JOB_FAILED)
        finally:
            heartbeat.cancel()
            path.unlink(missing_ok=True)  # noqa: ASYNC240 (a local file: instant)

    async def stop(self) -> None:
        """Cancel the running and queued jobs and mark them failed (shutdown never waits
        for an import to finish)."""
        self.cancel.set()  # the job thread stops at its next check
        jobs = dict(self.tasks)
        for task in jobs:
            task.cancel()
        if not jobs:
            return
        await asyncio.wait(jobs, timeout=JOB_STOP_SECONDS)
        try:
            async with asyncio.timeout(JOB_STOP_SECONDS):
                for job_id in jobs.values():
                    await fail_job(job_id, SHUT_DOWN)
        except (TimeoutError, OperationalError, *DATABASE_DOWN) as exc:
            # Their heartbeats have stopped: the next start-up marks them failed.
            logger.warning("could not mark interrupted imports failed: %s", exc)


import_jobs = ImportJobs()
imports_router = APIRouter(
    prefix="/imports",
    tags=["import and export"],
    responses=error_responses(401),
    route_class=body_limit((settings.IMPORT_PACKAGE_MAX_BYTES or 2**62) + MULTIPART_OVERHEAD),
)
ImportId = Annotated[int, PathParam(description="The import's id.")]


@imports_router.get("")
async def read_imports(
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ImportJobPage:
    """Your imports, newest first."""
    await fail_abandoned_jobs(user)
    query = ImportJob.filter(user_id=user.id)
    total = await query.count()
    jobs = await query.order_by("-id").offset(offset).limit(limit)
    items = [ImportJobOut.of(job) for job in jobs]
    return ImportJobPage(items=items, total=total, limit=limit, offset=offset)


# Its job starts once the request is answered, in steps of its own: the response is kept
# after the job is queued (a crash in between, and a retry queues a second job, whose words
# the first one has already made: all skipped).
@imports_router.post(
    "",
    status_code=202,
    dependencies=[IDEMPOTENT_IN_STEPS],
    responses={
        **error_responses(413),
        202: {
            "headers": {"Location": {"description": "/imports/{id}", "schema": {"type": "string"}}}
        },
    },
)
async def create_import(
    file: UploadFile, user: CurrentUser, request: Request, response: Response
) -> ImportJobOut:
    """Import an Anki package (.apkg or .colpkg: words, cards, scheduling and review history)
    or a CSV/TSV file in the background; poll the job at its Location."""
    if len((await request.form()).getlist("file")) > 1:
        raise TOO_MANY_FILES
    handle, name = tempfile.mkstemp(prefix="vocab-import-")
    os.close(handle)
    path = Path(name)
    try:
        limit = settings.IMPORT_PACKAGE_MAX_BYTES
        if await in_import_thread(save_upload, file.file, path, limit) < 0:
            raise HTTPException(413, detail=f"File is larger than {limit} bytes")
        try:
            kind = await in_import_thread(recognise_upload, path)
        except PackageError as exc:
            raise HTTPException(
                422, detail=[{"type": "value_error", "loc": ["body", "file"], "msg": str(exc)}]
            ) from None
        except (ValueError, OSError):
            raise NOT_AN_IMPORT from None
        if kind == "large table":
            raise HTTPException(
                413, detail=f"CSV and TSV files are limited to {IMPORT_MAX_BYTES} bytes"
            )
        job = await ImportJob.create(
            user_id=user.id,
            filename=clean_filename(file.filename),
            kind=kind,
            heartbeat_at=utcnow(),
        )
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 (a local file: instant)
        raise
    import_jobs.submit(job.id, user.id, kind, path)
    response.headers["Location"] = f"/imports/{job.id}"
    return ImportJobOut.of(job)


@imports_router.get("/{import_id:int}", responses=error_responses(404))
async def read_import(import_id: ImportId, user: CurrentUser) -> ImportJobOut:
    """One of your imports: its status, progress and, once finished, its result or error."""
    await fail_abandoned_jobs(user)
    job = await ImportJob.get_or_none(id=valid_id(import_id), user_id=user.id)
    if job is None:
        raise JOB_NOT_FOUND
    return ImportJobOut.of(job)


# --- Operations ---


class HealthOut(BaseModel):
    """Whether the service and its database are up."""

    status: Literal["ok", "error"]
    database: Literal["ok", "unavailable"]


operations_router = APIRouter(tags=["operations"])


@operations_router.get("/health", responses={503: {"model": HealthOut}}, response_model=HealthOut)
async def read_health(request: Request) -> JSONResponse:
    """Report whether the API can reach its database."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:
        outage.refuse(exc, request.state.request_id)  # logged once per outage
        return JSONResponse(
            {"status": "error", "database": "unavailable"}, status_code=503, headers=RETRY_AFTER
        )
    return JSONResponse({"status": "ok", "database": "ok"})


#: Prometheus sends METRICS_TOKEN as a bearer token (`authorization` in its scrape config).
metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="`METRICS_TOKEN`, which `/metrics` needs in production.",
)


async def metrics_allowed(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> None:
    """Open in development; in production only to METRICS_TOKEN, and absent without one."""
    if settings.ENVIRONMENT != "production":
        return
    if settings.METRICS_TOKEN is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    expected = settings.METRICS_TOKEN.get_secret_value().encode()
    sent = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(sent, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Invalid metrics token",
            headers={"WWW-Authenticate": "Bearer"},
        )


@operations_router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(metrics_allowed)],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **error_responses(401, 404),
    },
)
async def read_metrics() -> Response:
    """Prometheus metrics: request counts and latency histograms by route template.

    In production it needs `Authorization: Bearer <METRICS_TOKEN>` (401 without it) and is
    404 while no METRICS_TOKEN is set; in development it is open."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- Study page ---
# Plain HTML, CSS and ES modules in static/, a client of this same API; no build step.

STATIC = ROOT / "static"
#: The page runs only its own files: no inline code, nothing from other hosts.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
page_router = APIRouter(include_in_schema=False)


@page_router.get("/")
async def read_study_page() -> FileResponse:
    """The browser front end (a client of this same API)."""
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


# --- Plumbing: logging, metrics, middleware, error handlers ---


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the request fields the access log adds.

    Ours rather than python-json-logger's: it writes a fixed list of fields (a library's stray
    `extra`, a token say, never reaches the log) and took 6.7 µs a record against 9.5 µs."""

    FIELDS = ("request_id", "user_id", "method", "path", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, when there are several
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    """Log to stderr at LOG_LEVEL, as JSON lines unless LOG_FORMAT=text."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if settings.LOG_FORMAT == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=settings.LOG_LEVEL, handlers=[handler])
    # No record needs the caller's file and line (the logging HOWTO's "Optimization"): looking
    # them up walked the stack for every access-log line.
    logging._srcfile = None
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # it logs its whole config at start


access_log = logging.getLogger("vocab.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUESTS = Counter(
    "vocab_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
LATENCY = Histogram(
    "vocab_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
#: Headers an API response should carry: no MIME sniffing, no framing, no referrer leaks.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/words/{word_id}`), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or "unmatched"


class HTTPMiddleware:
    """A pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): `handle` sees
    HTTP requests; lifespan and other messages pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Process one HTTP request."""
        raise NotImplementedError


class RequestContextMiddleware(HTTPMiddleware):
    """Tag every response with X-Request-ID and security headers, and log one line and count
    one metric per request.

    Our own rather than asgi-correlation-id (request ids) with prometheus-fastapi-instrumentator
    or starlette-exporter (metrics): each is an ASGI layer with a `send` wrapper of its own, and
    none writes the access-log line, so they would add two layers to every request and keep this
    one. Measured in process on a one-route app: 50 µs a request with this, 140 µs with those two
    plus the access log."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
        method = scope["method"]  # as sent: HeadMiddleware, further in, turns HEAD into GET
        # This request's own copy of the lifespan state (uvicorn copies it; not every server does).
        state = scope["state"] = dict(scope.get("state", {}))
        state["request_id"] = request_id
        started = perf_counter()
        response_status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            duration = perf_counter() - started
            route = route_template(scope)
            REQUESTS.labels(method, route, str(response_status)).inc()
            LATENCY.labels(method, route).observe(duration)
            access_log.info(
                "%s %s %d",
                method,
                scope["path"],
                response_status,
                extra={
                    "request_id": request_id,
                    "user_id": state.get("user_id"),
                    "method": method,
                    "path": scope["path"],
                    "status": response_status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": (scope.get("client") or ("unknown",))[0],
                },
            )


class HeadMiddleware(HTTPMiddleware):
    """HEAD on every GET route: the request is served as the GET it mirrors, and the response
    keeps its status and headers (Content-Length included) but sends no body. Outside the
    error handling, so that a failure's answer loses its body too; a route without GET
    answers HEAD with 405 as it would GET."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_headers_only)


def head_operation(get: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation of HEAD beside a GET: its parameters and statuses, no bodies."""
    head = copy.deepcopy(get)
    head["operationId"] = get["operationId"].removesuffix("_get") + "_head"
    head["summary"] = f"{get.get('summary', '')} (headers only)".strip()
    head["description"] = "As the GET of this path, with the same status and headers, no body."
    for response in head["responses"].values():
        response.pop("content", None)
    return head


def with_head_operations(make_schema: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's OpenAPI schema (made once and cached by FastAPI), with the HEAD operation
    beside every GET (see HeadMiddleware) added the first time."""
    schema = make_schema()
    for path_item in schema["paths"].values():
        if "get" in path_item and "head" not in path_item:
            path_item["head"] = head_operation(path_item["get"])
    return schema


#: Methods that change nothing, so that their 503 can say so.
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class DatabaseOutage:
    """Logs an outage of the database once, however many requests it refuses: a warning when a
    request first finds the database unavailable, and one when it answers again, with how long
    it was away and how many requests were refused meanwhile. While it lasts, a probe asks the
    database once a second whether it is back, so the second line comes without traffic too."""

    PROBE_SECONDS = 1.0

    def __init__(self) -> None:
        self.refused = 0
        self.started = 0.0
        self.probe: asyncio.Task[None] | None = None

    def refuse(self, error: BaseException, request_id: str | None) -> None:
        """Count a request answered 503 because of the database."""
        self.refused += 1
        logger.debug("database unavailable: %r", error, extra={"request_id": request_id})
        if self.probe is None:
            self.started = perf_counter()
            logger.warning("database unavailable (%r); requests answer 503 until it is back", error)
            self.probe = asyncio.get_running_loop().create_task(self.wait_until_back())

    async def wait_until_back(self) -> None:
        """Probe the database until it answers, then say so."""
        while True:
            await asyncio.sleep(self.PROBE_SECONDS)
            try:
                await connections.get("default").execute_query("SELECT 1")
            except Exception:  # still away (each try bounded by DATABASE_TIMEOUT_SECONDS)
                continue
            logger.warning(
                "database available again after %.1f s (requests refused meanwhile: %d)",
                perf_counter() - self.started,
                self.refused,
            )
            self.refused, self.probe = 0, None
            return

    async def stop(self) -> None:
        """End the probe as the app shuts down (saying so if the database is still away)."""
        if self.probe is None:
            return
        self.probe.cancel()
        await asyncio.gather(self.probe, return_exceptions=True)
        logger.warning(
            "shutting down with the database still unavailable (requests refused: %d)",
            self.refused,
        )
        self.refused, self.probe = 0, None


outage = DatabaseOutage()


class ErrorMiddleware(HTTPMiddleware):
    """Bound every request by REQUEST_TIMEOUT_SECONDS and turn failures into bare JSON errors:
    503 when the database is unavailable or the request ran out of time, saying whether the
    request may have changed anything; 500 otherwise (no traceback or SQL reaches the client).
    It sits inside CORS, so that a browser can read these too.

    A request cut by the deadline is cancelled where it waits: a transaction it had open rolls
    back as it would on any error, before the 503 goes out. A response that has started is
    never cut: the deadline ends there (a long CSV export streams to its end)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        deadline = asyncio.timeout(settings.REQUEST_TIMEOUT_SECONDS)

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if deadline.expired():
                    # Too late: the deadline's cancellation arrives here, and the 503 goes
                    # out instead of a response it would cut short.
                    await asyncio.sleep(0)
                else:
                    deadline.reschedule(None)
                started = True
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:  # the response has begun: all we can do is cut it short
                raise
            failure = self.failure(scope, exc, timed_out=deadline.expired())
            await failure(scope, receive, send)

    @staticmethod
    def failure(scope: Scope, exc: Exception, *, timed_out: bool) -> JSONResponse:
        """The answer to a request that failed with `exc` before its response started."""
        request_id = scope["state"].get("request_id")
        if scope["method"] in SAFE_METHODS:
            outcome = "nothing was changed; try again shortly"
        else:
            outcome = "the request may or may not have been applied"
        if timed_out:
            logger.warning(
                "request cut after REQUEST_TIMEOUT_SECONDS (%s s)",
                settings.REQUEST_TIMEOUT_SECONDS,
                extra={"request_id": request_id},
            )
            detail = f"The request took too long; {outcome}"
        elif error := database_unavailable(exc):
            outage.refuse(error, request_id)  # logged once per outage
            detail = f"The database is unavailable; {outcome}"
        else:
            logger.exception("unhandled error", extra={"request_id": request_id})
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        return JSONResponse({"detail": detail}, status_code=503, headers=RETRY_AFTER)


class ExitStatus:
    """Exit status 0 after a graceful shutdown on SIGTERM, where it would be 143.

    While uvicorn serves it handles SIGTERM itself; once it has shut down cleanly it puts back
    the handler that was there before and raises the signal again, for that handler to act on
    (its "cooperative signal handling", since 0.29). Python's default handler ends the process
    by the signal: status 143 (-15 in `subprocess`), as if it had been killed. A single
    uvicorn worker imports the app before it takes the signal over, so `install` (at import,
    only where SIGTERM still has the default handler) puts `handle` there for uvicorn to hand
    the signal back to: after the app's lifespan ended under uvicorn it returns, and the
    process exits 0; at any other moment (during import, in the tests or the command line,
    which import vocab too) it ends the process as the default would. Workers started with
    `--workers` import the app after uvicorn took the signal over and are left alone (their
    parent exits 0 already). Neither the lifespan nor the hashing threads play a part."""

    def __init__(self) -> None:
        self.shut_down_cleanly = False

    def install(self) -> None:
        """Handle SIGTERM from now on, if nothing else does."""
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self.handle)

    def lifespan_ended(self) -> None:
        """Note that the app has shut down, and whether uvicorn stopped it."""
        handler = signal.getsignal(signal.SIGTERM)
        self.shut_down_cleanly = isinstance(getattr(handler, "__self__", None), uvicorn.Server)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM: nothing more to do after uvicorn's graceful shutdown, else the default."""
        if not self.shut_down_cleanly:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


exit_status = ExitStatus()


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's error list, without echoing the submitted values (passwords)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's handling, except for the framework's 400 for a body it cannot parse at all
    (JSON that is not UTF-8, a broken multipart envelope): that is 422 with FastAPI's error
    list, like every other invalid body. The app itself never answers 400."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        error = {"type": "body_invalid", "loc": ["body"], "msg": str(exc.detail)}
        return JSONResponse({"detail": [error]}, status_code=422)
    return await http_exception_handler(request, exc)


# --- App ---

configure_logging()
exit_status.install()
app = FastAPIOffline(
    title="vocab",
    summary="Learn words with spaced repetition.",
    version="1.0.0",
    lifespan=lifespan,
    # Any request can meet an oversized body or an unreachable database.
    responses=error_responses(413, 503),
    exception_handlers={
        RequestValidationError: validation_error,
        StarletteHTTPException: http_error,
    },
)
# Outermost last: proxy headers, request context, CORS, HEAD, then errors (so that error answers
# carry CORS headers and a request id, and lose their body on HEAD).
app.add_middleware(ErrorMiddleware)
app.add_middleware(HeadMiddleware)
if settings.cors_origins:  # else no browser page of another origin may call the API at all
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", IDEMPOTENCY_HEADER],
        expose_headers=["X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed"],
    )
app.add_middleware(RequestContextMiddleware)
# Outermost, so that logs and rate limits see the same client: the one a trusted proxy names.
# Applied here rather than left to uvicorn's --proxy-headers alone, so that it holds under any
# server (and in tests); behind uvicorn both read FORWARDED_ALLOW_IPS and agree.
app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.FORWARDED_ALLOW_IPS)
for router in (
    auth_router,
    users_router,
    words_router,
    learning_router,
    transfer_router,
    imports_router,
    operations_router,
    page_router,
):
    app.include_router(router)
app.mount("/static", StaticFiles(directory=STATIC), name="static")
# FastAPI's documented way to extend its schema is to replace this method.
app.openapi = partial(with_head_operations, app.openapi)  # type: ignore[method-assign]


# --- Command line ---


async def migrate_once() -> None:
    """Apply migrations outside the server (the container runs this before it starts), with
    no limit on how long a statement may take: a migration may rewrite a large table."""
    connection = database_connection(limit_statements=False)
    await Tortoise.init(config={**TORTOISE_ORM, "connections": {"default": connection}})
    try:
        applied = await migrate()
        print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
    finally:
        await Tortoise.close_connections()


def backup(destination: Path) -> None:
    """Copy the SQLite database into a new file with SQLite's online backup API: a consistent
    snapshot, taken while the server keeps running (PostgreSQL: pg_dump, see README)."""
    source = TORTOISE_ORM["connections"]["default"]["credentials"].get("file_path")
    if DIALECT != "sqlite" or source == ":memory:":
        sys.exit("backup copies a SQLite database file; for PostgreSQL use pg_dump (see README)")
    if not Path(source).is_file():
        sys.exit(f"no SQLite database at {source}")
    if destination.exists():
        sys.exit(f"{destination} already exists; choose a new file name")
    # Written under a temporary name, then renamed: a backup that stopped half-way never
    # lies around under the name of a good one. Owner-only: it holds password hashes.
    draft = destination.with_name(f".{destination.name}.partial")
    draft.touch(mode=0o600)
    database, copy = sqlite3.connect(source), sqlite3.connect(draft)
    try:
        database.backup(copy)
    finally:
        copy.close()
        database.close()
    draft.rename(destination)
    print(f"backed up {source} to {destination}")


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["migrate"]:
            asyncio.run(migrate_once())
        case ["backup", destination]:
            backup(Path(destination))
        case _:
            sys.exit("usage: python vocab.py migrate | python vocab.py backup FILE")
