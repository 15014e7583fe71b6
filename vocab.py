"""vocab: a vocabulary-learning HTTP API.

People register, sign in and keep their own list of words, which they study with spaced
repetition. Run it with `uvicorn vocab:app` (SQLite in a local file, no configuration needed) and
explore it at http://127.0.0.1:8000/docs. `python vocab.py migrate` applies the database
migrations and exits. The HTTP contract is documented in the OpenAPI schema at /openapi.json.
"""

import asyncio
import csv
import html
import io
import json
import logging
import math
import re
import secrets
import sys
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
import fsrs
import limits
from aerich import Command
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, UploadFile, status
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
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
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import Tortoise, connections, timezone
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.contrib.fastapi import RegisterTortoise
from tortoise.contrib.pydantic import pydantic_model_creator
from tortoise.exceptions import DBConnectionError, IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models import Rating, RefreshToken, Review, State, User, Word

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
    RATE_LIMIT_LOGIN: str = "5/minute"
    RATE_LIMIT_REGISTER: str = "10/hour"
    #: Where rate-limit counters live: per process by default; `redis://host:6379` shares them
    #: between workers and replicas.
    RATE_LIMIT_STORAGE: str = "memory://"
    #: asyncpg pool size per worker, and how long to wait for the database before answering 503.
    DATABASE_POOL_SIZE: int = Field(default=10, ge=2, le=100)
    DATABASE_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=120)
    LOG_FORMAT: Literal["json", "text"] = "json"

    @field_validator("RATE_LIMIT_LOGIN", "RATE_LIMIT_REGISTER")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip().lower() != "off":
            limits.parse(value)  # raises ValueError on e.g. "5 per fortnight"
        return value.strip()

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


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the request fields the access log adds."""

    FIELDS = ("request_id", "user_id", "method", "path", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


settings = Settings()
log_handler = logging.StreamHandler()
log_handler.setFormatter(
    JsonFormatter()
    if settings.LOG_FORMAT == "json"
    else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
)
logging.basicConfig(level=settings.LOG_LEVEL, handlers=[log_handler])
logger = logging.getLogger("vocab")
access_log = logging.getLogger("vocab.access")
logging.getLogger("tortoise").setLevel(logging.WARNING)  # it logs its whole config at start

# --- Database ---

DIALECT = "sqlite" if settings.DATABASE_URL.startswith("sqlite") else "postgres"


async def keep_session(connection: asyncpg.Connection) -> None:
    """Give a connection back to the pool without asyncpg's reset query.

    Tortoise borrows a pooled connection for every query, and asyncpg's default reset (RESET
    ALL, UNLISTEN *, CLOSE ALL, unlock advisory locks) is one more round trip each time: a
    fifth of the CPU of a simple read. vocab never changes session state, listens or keeps a
    cursor, and its one advisory lock is released explicitly; an open transaction is still
    rolled back by asyncpg before this runs."""


def database_connection() -> dict[str, Any]:
    """DATABASE_URL as Tortoise connection settings, with bounded waits on PostgreSQL."""
    connection = expand_db_url(settings.DATABASE_URL)
    if DIALECT == "postgres":
        credentials = connection["credentials"]
        credentials.setdefault("minsize", 1)
        credentials.setdefault("maxsize", settings.DATABASE_POOL_SIZE)
        # An unreachable or hung database must give a quick 503, not a request that hangs.
        credentials.setdefault("timeout", settings.DATABASE_TIMEOUT_SECONDS)
        credentials.setdefault("command_timeout", 3 * settings.DATABASE_TIMEOUT_SECONDS)
        credentials.setdefault("reset", keep_session)
    return connection


TORTOISE_ORM: dict[str, Any] = {
    "connections": {"default": database_connection()},
    "apps": {"models": {"models": ["models", "aerich.models"], "default_connection": "default"}},
    "use_tz": True,
    "timezone": "UTC",
}
#: Aerich writes SQL in one dialect, so each database has its own migration set.
MIGRATIONS = ROOT / "migrations" / DIALECT


def utcnow() -> datetime:
    """Now, in UTC: the one clock that due dates, reviews and statistics read (tests set it)."""
    return timezone.now()


#: Ids are 32-bit on both databases; a larger one cannot exist (and would make PostgreSQL fail).
MAX_ID = 2**31 - 1
MIGRATION_LOCK = 7283421  # any number, the same in every process


async def migrate() -> list[str]:
    """Apply pending migrations; returns the files applied (none on a second run)."""
    command = Command(tortoise_config=TORTOISE_ORM, app="models", location=str(MIGRATIONS))
    if DIALECT == "sqlite":  # one connection, one process: nothing to coordinate
        await command.init()
        return await command.upgrade(run_in_transaction=True)
    # Replicas and workers start together: one migrates while the others wait for its lock
    # (held on a connection of its own), then find nothing left to do.
    async with connections.get("default").acquire_connection() as lock:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await command.init()
            return await command.upgrade(run_in_transaction=True)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


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
        yield


# --- Auth ---

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

CREDENTIALS_ERROR = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="Could not validate credentials",
    headers={"WWW-Authenticate": "Bearer"},
)
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

# Failed sign-ins are counted per email and per client, registrations per client. The counters
# live in RATE_LIMIT_STORAGE: this process's memory by default (each worker or replica counts
# on its own, so N replicas allow up to N times the limit), or Redis shared by all of them.
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
REGISTER_LIMIT = rate_limit(settings.RATE_LIMIT_REGISTER)


#: One lock per rate-limit key while an attempt is checked, judged and counted.
attempt_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def one_attempt_at_a_time(
    limit: limits.RateLimitItem | None, *keys: str
) -> AsyncIterator[None]:
    """Let one attempt per key through at a time while limits are on.

    Only failures count, and a failure is known only after the password check, so attempts
    sent together would otherwise all pass the check before any of them is counted. With
    several processes each may have one attempt in flight: the overshoot stays that small."""
    if limit is None:
        yield
        return
    async with AsyncExitStack() as stack:
        for key in keys:  # always in the same order, so two attempts never wait on each other
            lock = attempt_locks.get(key)
            if lock is None:
                lock = attempt_locks[key] = asyncio.Lock()
            await stack.enter_async_context(lock)
        yield


async def ensure_not_limited(limit: limits.RateLimitItem | None, *keys: str) -> None:
    """429 with Retry-After when any key has used up its limit."""
    if limit is None:
        return
    for key in keys:
        if not await rate_limiter.test(limit, key):
            stats = await rate_limiter.get_window_stats(limit, key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"Too many attempts; try again in {retry_after} seconds",
                headers={"Retry-After": str(retry_after)},
            )


async def count_attempt(limit: limits.RateLimitItem | None, *keys: str) -> None:
    """Count one attempt against each key's limit."""
    if limit is not None:
        for key in keys:
            await rate_limiter.hit(limit, key)


def client_address(request: Request) -> str:
    """The client's IP (behind a proxy, uvicorn's --proxy-headers makes it the real one)."""
    return request.client.host if request.client else "unknown"


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)


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


def encode_token(
    user_id: int, kind: TokenType, lifetime: timedelta, **extra: str
) -> tuple[str, str]:
    """Sign a JWT of the given type; returns the token and its `jti`."""
    now = int(timezone.now().timestamp())
    jti = str(uuid.uuid4())
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": jti,
        "type": kind,
        **extra,
    }
    return jwt.encode({"alg": ALGORITHM}, claims, SIGNING_KEY, algorithms=[ALGORITHM]), jti


def decode_token(token: str, kind: TokenType, error: HTTPException) -> dict[str, Any]:
    """Verify a JWT's signature, expiry and type; raise `error` on any failure."""
    claims_registry = jwt.JWTClaimsRegistry(
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        type={"essential": True, "value": kind},
    )
    try:
        claims = jwt.decode(token, SIGNING_KEY, algorithms=[ALGORITHM]).claims
        claims_registry.validate(claims)
        if not 0 < int(claims["sub"]) <= MAX_ID:
            raise ValueError("no such user id")
        uuid.UUID(claims["jti"])
    except (JoseError, ValueError, TypeError):
        raise error from None
    return claims


async def issue_tokens(user_id: int, family: uuid.UUID | None = None) -> "TokenPair":
    """A new access token and a new refresh token in the given login family (or a new one)."""
    family = family or uuid.uuid4()
    lifetime = timedelta(days=settings.REFRESH_TOKEN_DAYS)
    refresh_token, jti = encode_token(user_id, "refresh", lifetime, fam=str(family))
    await RefreshToken.create(
        id=jti, user_id=user_id, family=family, expires_at=timezone.now() + lifetime
    )
    access_lifetime = timedelta(minutes=settings.ACCESS_TOKEN_MINUTES)
    access_token, _ = encode_token(user_id, "access", access_lifetime)
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(access_lifetime.total_seconds()),
    )


async def spend_refresh_token(token: str) -> RefreshToken:
    """Mark a refresh token used, once; presenting a spent token revokes its whole login."""
    claims = decode_token(token, "refresh", REFRESH_ERROR)
    now = timezone.now()
    live = RefreshToken.filter(
        id=claims["jti"], user_id=int(claims["sub"]), used_at=None, revoked_at=None
    )
    # One conditional UPDATE, so two concurrent refreshes cannot both spend the same token.
    if await live.filter(expires_at__gt=now).update(used_at=now):
        return await RefreshToken.get(id=claims["jti"])
    stored = await RefreshToken.get_or_none(id=claims["jti"])
    if stored is not None and stored.used_at is not None:
        # A spent token came back: it was stolen or leaked, so end that login everywhere.
        await RefreshToken.filter(family=stored.family, revoked_at=None).update(revoked_at=now)
        logger.warning("refresh token reuse detected, login %s revoked", stored.family)
    raise REFRESH_ERROR


async def get_current_user(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """The user named by a valid access token, who must still exist."""
    if token is None:
        raise CREDENTIALS_ERROR
    claims = decode_token(token, "access", CREDENTIALS_ERROR)
    user = await User.get_or_none(id=int(claims["sub"]))
    if user is None:
        raise CREDENTIALS_ERROR
    request.state.user_id = user.id  # for the access log
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

# --- Schemas ---

Tortoise.init_models(["models"], "models")  # lets the generated schemas see relations

#: A user as the API shows them (the password hash is excluded on the model).
UserOut = pydantic_model_creator(User, name="UserOut")


def empty_to_none(value: Any) -> Any:
    """Treat "" like a missing value (for optional text fields)."""
    return None if isinstance(value, str) and not value.strip() else value


#: Text that is stored or searched for may not contain NUL, which PostgreSQL cannot store
#: ("invalid byte sequence for encoding UTF8: 0x00" would be a 500): it is a 422 instead.
NO_NUL = r"^[^\x00]*$"
Email = Annotated[EmailStr, StringConstraints(max_length=320)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
WordText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NO_NUL)
]
Definition = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=NO_NUL)
]
Example = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=NO_NUL)]
    | None,
    BeforeValidator(empty_to_none),
]
LanguageCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=16, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
    ),
]
Language = Annotated[
    LanguageCode | None,
    BeforeValidator(empty_to_none),
    Field(description="A language code such as `en`, `de` or `pt-BR`; null for none."),
]
Difficulty = Annotated[int, Field(ge=1, le=5, description="The learner's own rating, 1–5.")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[^\s\x00]+$")]
Tags = Annotated[
    list[Tag],
    Field(max_length=20, description="Up to 20 tags of up to 32 characters, without spaces."),
]


class UserCreate(BaseModel):
    """Registration: an email and a password of 8–128 characters."""

    email: Email
    password: Password


class UserUpdate(BaseModel):
    """A password change (needs `current_password`) and/or a new desired retention."""

    model_config = ConfigDict(extra="forbid")

    password: Password | None = None
    current_password: Annotated[str, StringConstraints(max_length=128)] | None = None
    desired_retention: Annotated[float, Field(ge=0.7, le=0.99)] | None = None

    @model_validator(mode="after")
    def _not_null(self) -> "UserUpdate":
        for name in ("password", "desired_retention"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TokenPair(BaseModel):
    """A short-lived access token and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    """A refresh token, to renew (`/auth/refresh`) or end (`/auth/logout`) a login."""

    refresh_token: Annotated[str, StringConstraints(max_length=4096)]


class WordCreate(BaseModel):
    """A new word."""

    model_config = ConfigDict(extra="forbid")

    word: WordText
    definition: Definition
    example: Example = None
    language: Language = None
    difficulty: Difficulty = 3
    tags: Tags = []


class WordUpdate(BaseModel):
    """A partial update of a word; the schedule is not writable."""

    model_config = ConfigDict(extra="forbid")

    word: WordText | None = None
    definition: Definition | None = None
    example: Example = None
    language: Language = None
    difficulty: Difficulty | None = None
    tags: Tags | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> "WordUpdate":
        for name in ("word", "definition", "difficulty", "tags"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ScheduleOut(BaseModel):
    """A word's spaced-repetition state (FSRS)."""

    state: State
    due_at: datetime
    stability: float | None
    difficulty: float | None = Field(description="FSRS' difficulty, 1–10; null while new.")
    reps: int
    lapses: int
    last_reviewed_at: datetime | None


# Hand-written rather than generated: the API nests the schedule and shows tags as a list.
#: What a word's API shape is made of: read paths fetch these as plain rows, no ORM objects.
WORD_COLUMNS = (
    "id", "word", "definition", "example", "language", "difficulty", "tags", "created_at",
    "updated_at", "state", "due_at", "stability", "fsrs_difficulty", "reps", "lapses",
    "last_reviewed_at",
)  # fmt: skip


class WordOut(BaseModel):
    """A word as the API shows it."""

    id: int
    word: str
    definition: str
    example: str | None
    language: str | None
    difficulty: int
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    schedule: ScheduleOut

    @classmethod
    def of(cls, row: dict[str, Any]) -> "WordOut":
        """Shape a stored word (a row of WORD_COLUMNS) for the API.

        The values come from the database, which already enforces their types, so the
        models are built without validating them again (a tenth of a list request's CPU)."""
        schedule = ScheduleOut.model_construct(
            state=State(row["state"]),
            due_at=row["due_at"],
            stability=row["stability"],
            difficulty=row["fsrs_difficulty"],
            reps=row["reps"],
            lapses=row["lapses"],
            last_reviewed_at=row["last_reviewed_at"],
        )
        return cls.model_construct(
            id=row["id"],
            word=row["word"],
            definition=row["definition"],
            example=row["example"],
            language=row["language"] or None,
            difficulty=row["difficulty"],
            tags=row["tags"].split(),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            schedule=schedule,
        )

    @classmethod
    def of_word(cls, word: Word) -> "WordOut":
        """Shape a word object (after a write) for the API."""
        return cls.of({column: getattr(word, column) for column in WORD_COLUMNS})


class WordPage(BaseModel):
    """One page of words."""

    items: list[WordOut]
    total: int = Field(description="How many words match, on all pages.")
    limit: int
    offset: int


class ReviewCreate(BaseModel):
    """A review: how well the word was recalled, and optionally how long it took."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None


#: A review as the API shows it (the replay columns stay on the server).
ReviewOut = pydantic_model_creator(
    Review, name="ReviewOut", include=("id", "rating", "reviewed_at", "duration_ms")
)


class ReviewResult(BaseModel):
    """The review just recorded, and the word with its new schedule."""

    review: ReviewOut  # type: ignore[valid-type]
    word: WordOut


class ReviewPage(BaseModel):
    """One page of a word's reviews, newest first."""

    items: list[ReviewOut]  # type: ignore[valid-type]
    total: int
    limit: int
    offset: int


class StudyQueue(BaseModel):
    """What to study now: overdue words first, then new words."""

    items: list[WordOut]
    due_total: int = Field(description="How many words are due now, on all pages.")


class StatsOut(BaseModel):
    """A learner's progress."""

    words: int
    new: int
    due: int = Field(description="Words due now; equals `/study`'s `due_total`.")
    reviews_today: int = Field(description="Reviews since midnight UTC.")
    reviews_total: int
    retention_30d: float | None = Field(
        description="Share of the last 30 days' reviews of words in review state that were "
        "not rated `again`; null when there were none."
    )
    streak_days: int = Field(
        description="Consecutive UTC days with a review, ending today or yesterday."
    )
    by_state: dict[State, int]
    by_difficulty: dict[str, int] = Field(description='Words per difficulty, "1" to "5".')


class ImportProblem(BaseModel):
    """A row that could not be imported."""

    line: int = Field(description="1-based line number in the file (header and # lines count).")
    detail: str


class ImportResult(BaseModel):
    """What an import did."""

    created: int
    skipped: int = Field(description="Rows whose word you already have in that language.")
    errors: list[ImportProblem]


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
    WordSort.WORD: ("word_key", "id"),
    WordSort.WORD_DESC: ("-word_key", "-id"),
    WordSort.DUE: ("due_at", "id"),
}


class ErrorOut(BaseModel):
    """An error: what went wrong, for a person to read."""

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {code: {"model": ErrorOut} for code in codes}


# --- Helpers ---


WORD_NOT_FOUND = HTTPException(status.HTTP_404_NOT_FOUND, detail="Word not found")


def word_query(word_id: int, user: User) -> Any:
    """The user's word with this id, as a query; another user's word is as missing as a
    deleted one, and an id beyond the column's range matches nothing."""
    return Word.filter(id=word_id if 0 < word_id <= MAX_ID else 0, user_id=user.id).limit(1)


async def get_word_or_404(word_id: int, user: User, *, for_update: bool = False) -> Word:
    """The user's word with this id, or 404."""
    query = word_query(word_id, user)
    word = await (query.select_for_update() if for_update else query).first()
    if word is None:
        raise WORD_NOT_FOUND
    return word


@asynccontextmanager
async def conflict_as_409(detail: str) -> AsyncIterator[None]:
    """Turn a unique-constraint violation into 409 with a fixed message (never the SQL)."""
    try:
        # A savepoint, so a violation does not poison an enclosing PostgreSQL transaction.
        async with in_transaction():
            yield
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=detail) from None


WORD_CONFLICT = "You already have this word in this language"


async def add_to_word_count(user: User, change: int) -> None:
    """Keep the user's word count in step with an insert or delete (call it in the same
    transaction)."""
    if change:
        await User.filter(id=user.id).update(word_count=F("word_count") + change)


async def create_many(user: User, words: list[Word]) -> int:
    """Insert the user's words in one transaction; returns how many were new. If a concurrent
    request added one of them meanwhile, fall back to row by row and skip the duplicates."""
    try:
        async with in_transaction():
            await Word.bulk_create(words, batch_size=500)
            await add_to_word_count(user, len(words))
        return len(words)
    except IntegrityError:
        created = 0
        async with in_transaction():
            for word in words:
                try:
                    async with in_transaction():  # a savepoint per row
                        await word.save()
                    created += 1
                except IntegrityError:
                    pass
            await add_to_word_count(user, created)
        return created


def canonical_language(code: str) -> str:
    """A language tag in its usual case (`PT-br` -> `pt-BR`), so case never makes two languages."""
    first, *rest = code.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2:  # region
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():  # script
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts) if code else ""


def word_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Map validated word input to model columns (normal forms for the unique key and tags)."""
    fields = dict(data)
    if "word" in fields:
        fields["word_key"] = fields["word"].casefold()
    if "language" in fields:
        fields["language"] = canonical_language(fields["language"] or "")
    if "tags" in fields:
        fields["tags"] = " " + " ".join(dict.fromkeys(fields["tags"])) + " "
    return fields


# FSRS has no "new" state: a word never reviewed is a learning card at its first step.
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


@lru_cache(maxsize=64)
def scheduler(desired_retention: float) -> fsrs.Scheduler:
    """The FSRS scheduler for one desired retention (FSRS-6 default parameters).

    Fuzzing is off so that a review's outcome is reproducible from its inputs."""
    return fsrs.Scheduler(desired_retention=desired_retention, enable_fuzzing=False)


def card_of(word: Word) -> fsrs.Card:
    """The word's schedule as an FSRS card."""
    return fsrs.Card(
        card_id=word.id,
        state=FSRS_STATE[word.state],
        step=0 if word.state == State.NEW else word.step,
        stability=word.stability,
        difficulty=word.fsrs_difficulty,
        due=word.due_at,
        last_review=word.last_reviewed_at,
    )


async def record_review(word_id: int, user: User, body: ReviewCreate) -> tuple[Review, Word]:
    """Apply a review to the word's schedule and log it, as one transaction."""
    async with in_transaction():
        # The row lock makes concurrent reviews of one word queue up instead of overwriting
        # each other (SQLite serialises writers anyway).
        word = await get_word_or_404(word_id, user, for_update=True)
        now = utcnow()
        before = card_of(word)
        after, _ = scheduler(user.desired_retention).review_card(
            before, FSRS_RATING[body.rating], review_datetime=now
        )
        review = Review(
            word_id=word.id,
            user_id=user.id,
            rating=body.rating,
            reviewed_at=now,
            reviewed_on=now.date(),
            duration_ms=body.duration_ms,
            state_before=word.state,
            step_before=word.step,
            stability_before=word.stability,
            difficulty_before=word.fsrs_difficulty,
            due_before=word.due_at,
            last_reviewed_before=word.last_reviewed_at,
            state_after=STATE_OF_FSRS[after.state],
            step_after=after.step,
            stability_after=after.stability,
            difficulty_after=after.difficulty,
            due_after=after.due,
        )
        await review.save()
        if body.rating == Rating.AGAIN and word.state == State.REVIEW:
            word.lapses += 1
        word.reps += 1
        word.state = review.state_after
        word.step = after.step
        word.stability = after.stability
        word.fsrs_difficulty = after.difficulty
        word.due_at = after.due
        word.last_reviewed_at = now
        await word.save(update_fields=SCHEDULE_COLUMNS)
    return review, word


SCHEDULE_COLUMNS = [
    "state",
    "step",
    "stability",
    "fsrs_difficulty",
    "due_at",
    "reps",
    "lapses",
    "last_reviewed_at",
    "updated_at",
]


def due_words(user: User, now: datetime) -> Any:
    """The user's words that are due now: new ones, and reviewed ones whose time has come."""
    return Word.filter(Q(state=State.NEW) | Q(due_at__lte=now), user_id=user.id)


async def streak_days(user: User, today: date) -> int:
    """Consecutive UTC days with a review, ending today or yesterday."""
    days = (
        await Review.filter(user_id=user.id, reviewed_on__lte=today)
        .distinct()
        .order_by("-reviewed_on")
        .values_list("reviewed_on", flat=True)
    )
    expected = today if days and days[0] == today else today - timedelta(days=1)
    streak = 0
    for day in days:
        if day != expected:
            break
        streak += 1
        expected -= timedelta(days=1)
    return streak


# --- Import and export ---

EXPORT_COLUMNS = ("word", "definition", "example", "language", "difficulty", "tags")
#: Anki's names for the first two fields of a basic note.
COLUMN_ALIASES = {"front": "word", "back": "definition", "term": "word", "meaning": "definition"}
ANKI_SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t", "space": " ", "pipe": "|"}
#: What Anki's "#<name> column:N" lines name; deck, note type and guid columns are left out.
ANKI_COLUMNS = {"tags": "tags", "deck": "", "notetype": "", "guid": ""}
#: An import reports at most this many bad rows.
MAX_IMPORT_ERRORS = 1000
HTML_TAG = re.compile(r"<[^>]*>")
HTML_BREAK = re.compile(r"<br\s*/?>|</div>|</p>", re.IGNORECASE)


def export_rows(words: list[dict[str, Any]]) -> str:
    """Words as CSV lines in export column order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for w in words:
        tags = " ".join(w["tags"].split())
        row = [w["word"], w["definition"], w["example"] or "", w["language"], w["difficulty"], tags]
        writer.writerow(row)
    return buffer.getvalue()


def column_names(cells: list[str]) -> list[str] | None:
    """The columns a header row names (unknown ones as ""), or None when the row is data."""
    names = [COLUMN_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in cells]
    if {"word", "definition"} <= set(names):
        return [name if name in EXPORT_COLUMNS else "" for name in names]
    return None


def anki_columns(special: dict[int, str], width: int = 64) -> list[str]:
    """Columns from Anki's "#tags column:3"-style lines: the rest are the note's fields."""
    fields = iter(("word", "definition", "example"))
    return [special[i] if i in special else next(fields, "") for i in range(1, width + 1)]


@dataclass
class Table:
    """An import file, parsed: column names, data rows with their line numbers, HTML or not."""

    columns: list[str]
    rows: list[tuple[int, list[str]]]
    html: bool = False


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


def read_table(text: str) -> Table:
    """Parse an import file; Anki's "#key:value" lines before the notes are understood."""
    lines = text.splitlines(keepends=True)
    separator: str | None = None
    header: str | None = None
    special: dict[int, str] = {}
    html = False
    skipped = 0
    while skipped < len(lines) and lines[skipped].startswith("#"):
        key, _, value = lines[skipped][1:].strip().partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "separator":
            separator = ANKI_SEPARATORS.get(value.lower(), value[:1] or None)
        elif key == "columns":
            header = value  # split once the separator is known
        elif key == "html":
            html = value.lower() == "true"
        elif key.endswith(" column") and value.isdigit():
            special[int(value)] = ANKI_COLUMNS.get(key.removesuffix(" column"), "")
        skipped += 1
    body = "".join(lines[skipped:])
    separator = separator or sniff_separator(body[: 64 * 1024])
    columns: list[str] | None = None
    if header is not None:
        columns = column_names(header.split(separator))
    elif special:
        columns = anki_columns(special)
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=separator)
    rows: list[tuple[int, list[str]]] = []
    first_line = 1
    for cells in reader:
        line = skipped + first_line
        first_line = reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if columns is None:  # the first row: a header, or already data in export order
            columns = column_names(cells)
            if columns is not None:
                continue
            columns = list(EXPORT_COLUMNS)
        rows.append((line, cells))
    return Table(columns or list(EXPORT_COLUMNS), rows, html)


def html_to_text(value: str) -> str:
    """Anki's HTML fields as plain text."""
    return html.unescape(HTML_TAG.sub("", HTML_BREAK.sub("\n", value)))


def parse_row(table: Table, cells: list[str]) -> WordCreate:
    """One data row as a validated new word (raises ValueError with a readable reason)."""
    columns = table.columns
    if len(cells) > len(columns):
        raise ValueError(f"{len(cells)} fields, but the file has {len(columns)} columns")
    fields: dict[str, Any] = {
        name: html_to_text(cell) if table.html else cell
        for name, cell in zip(columns, cells, strict=False)
        if name and cell.strip()
    }
    if "tags" in fields:
        fields["tags"] = fields["tags"].split()
    try:
        return WordCreate.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{where}: {error['msg']}" if where else error["msg"]) from None


# --- App ---

app = FastAPIOffline(
    title="vocab",
    summary="Learn words with spaced repetition.",
    version="1.0.0",
    lifespan=lifespan,
    # Any request can meet an oversized body or an unreachable database.
    responses=error_responses(413, 503),
)

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
DATABASE_DOWN = (
    OSError,  # includes connection refused and timeouts
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error (or what caused it) means the database cannot be reached."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DATABASE_DOWN):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
    one metric per request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
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
            REQUESTS.labels(scope["method"], route, str(response_status)).inc()
            LATENCY.labels(scope["method"], route).observe(duration)
            access_log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                response_status,
                extra={
                    "request_id": request_id,
                    "user_id": state.get("user_id"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": response_status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": (scope.get("client") or ("unknown",))[0],
                },
            )


class ErrorMiddleware(HTTPMiddleware):
    """Turn failures into bare JSON errors: 503 when the database is unreachable, 500
    otherwise (no traceback or SQL reaches the client). It sits inside CORS, so that a browser
    can read these too."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:  # the response has begun: all we can do is cut it short
                raise
            request_id = scope["state"].get("request_id")
            if database_unavailable(exc):
                logger.warning("database unavailable: %r", exc, extra={"request_id": request_id})
                failure = JSONResponse(
                    {"detail": "The database is unavailable; try again shortly"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
            else:
                logger.exception("unhandled error", extra={"request_id": request_id})
                failure = JSONResponse({"detail": "Internal Server Error"}, status_code=500)
            await failure(scope, receive, send)


#: Imports carry files; everything else is JSON and capped by MAX_BODY_BYTES.
IMPORT_MAX_BYTES = 5 * 1024 * 1024
#: Room for a multipart envelope around a 5 MB file.
MULTIPART_OVERHEAD = 64 * 1024


class BodyLimitMiddleware(HTTPMiddleware):
    """Answer 413 for an oversized request body, from Content-Length before reading anything,
    or as soon as a streamed body passes the limit."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_import = scope["path"] == "/words/import"
        limit = IMPORT_MAX_BYTES + MULTIPART_OVERHEAD if is_import else settings.MAX_BODY_BYTES
        too_large = HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"Request body is larger than {limit} bytes",
        )
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"detail": too_large.detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large  # FastAPI turns it into the JSON 413
            return message

        await self.app(scope, receive_within_limit, send)


# Outermost last: request context, then CORS, then errors and the body limit (so that their
# answers carry CORS headers and a request id).
app.add_middleware(BodyLimitMiddleware)
app.add_middleware(ErrorMiddleware)
app.add_middleware(
    CORSMiddleware,
    allow_origins=settings.cors_origins,
    allow_methods=["GET", "POST", "PATCH", "DELETE"],
    allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
    expose_headers=["X-Request-ID", "Location", "Retry-After"],
)
app.add_middleware(RequestContextMiddleware)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Any, exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's error list, without echoing the submitted values (passwords)."""
    errors = [
        {k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's handling, except for the framework's 400 for a body it cannot parse at all
    (JSON that is not UTF-8, a broken multipart envelope): that is 422 with FastAPI's error
    list, like every other invalid body. The app itself never answers 400."""
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        error = {"type": "body_invalid", "loc": ["body"], "msg": str(exc.detail)}
        return JSONResponse({"detail": [error]}, status_code=422)
    return await http_exception_handler(request, exc)


# --- Operations ---


class HealthOut(BaseModel):
    """Whether the service and its database are up."""

    status: Literal["ok", "error"]
    database: Literal["ok", "unavailable"]


@app.get(
    "/health", tags=["operations"], responses={503: {"model": HealthOut}}, response_model=HealthOut
)
async def read_health() -> JSONResponse:
    """Report whether the API can reach its database."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:
        logger.warning("health check: database unavailable", exc_info=True)
        return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@app.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def read_metrics() -> Response:
    """Prometheus metrics: request counts and latency histograms by route."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- Auth ---


@app.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    tags=["auth"],
    responses=error_responses(409, 429),
)
async def register(body: UserCreate, request: Request) -> UserOut:  # type: ignore[valid-type]
    """Create an account."""
    client = f"register:{client_address(request)}"
    async with one_attempt_at_a_time(REGISTER_LIMIT, client):
        await ensure_not_limited(REGISTER_LIMIT, client)
        await count_attempt(REGISTER_LIMIT, client)
    email = body.email.lower()
    if await User.exists(email=email):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="Email already registered")
    user = User(email=email, password_hash=await hash_password(body.password))
    async with conflict_as_409("Email already registered"):
        await user.save()
    return await UserOut.from_tortoise_orm(user)


@app.post("/auth/token", tags=["auth"], responses=error_responses(401, 429))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request
) -> TokenPair:
    """Sign in with email (as `username`) and password; returns an access and a refresh token."""
    email = form.username.strip().lower()
    counters = (f"login-email:{email}", f"login-client:{client_address(request)}")
    async with one_attempt_at_a_time(LOGIN_LIMIT, *counters):
        await ensure_not_limited(LOGIN_LIMIT, *counters)
        # No email holds NUL, and PostgreSQL cannot even compare it: such a name is unknown.
        user = None if "\x00" in email else await User.get_or_none(email=email)
        valid, new_hash = await verify_password(
            form.password, user.password_hash if user else DUMMY_HASH
        )
        if user is None or not valid:
            await count_attempt(LOGIN_LIMIT, *counters)
            raise LOGIN_ERROR
    if new_hash:  # the hash parameters were raised since this password was set
        user.password_hash = new_hash
        await user.save(update_fields=["password_hash"])
    return await issue_tokens(user.id)


@app.post("/auth/refresh", tags=["auth"], responses=error_responses(401))
async def refresh(body: RefreshRequest) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token is spent."""
    spent = await spend_refresh_token(body.refresh_token)
    return await issue_tokens(spent.user_id, family=spent.family)  # type: ignore[attr-defined]


@app.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=error_responses(401),
)
async def logout(body: RefreshRequest) -> None:
    """End a login: every refresh token of it is revoked."""
    spent = await spend_refresh_token(body.refresh_token)
    await RefreshToken.filter(family=spent.family, revoked_at=None).update(
        revoked_at=timezone.now()
    )


# --- Users ---


@app.get("/users/me", tags=["users"], responses=error_responses(401))
async def read_me(user: CurrentUser) -> UserOut:  # type: ignore[valid-type]
    """The signed-in user."""
    return await UserOut.from_tortoise_orm(user)


@app.patch("/users/me", tags=["users"], responses=error_responses(401, 403))
async def update_me(body: UserUpdate, user: CurrentUser) -> UserOut:  # type: ignore[valid-type]
    """Change the password (with the current one) and/or the desired retention."""
    if body.password is not None:
        valid = (
            body.current_password is not None
            and (await verify_password(body.current_password, user.password_hash))[0]
        )
        if not valid:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Current password is incorrect")
        user.password_hash = await hash_password(body.password)
        # A new password ends every existing login.
        await RefreshToken.filter(user_id=user.id, revoked_at=None).update(
            revoked_at=timezone.now()
        )
    if body.desired_retention is not None:
        user.desired_retention = body.desired_retention
    # Only these columns: a word added meanwhile keeps its place in the word count.
    await user.save(update_fields=["password_hash", "desired_retention"])
    return await UserOut.from_tortoise_orm(user)


@app.delete(
    "/users/me",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    responses=error_responses(401),
)
async def delete_me(user: CurrentUser) -> None:
    """Delete the account with all its words and reviews; its tokens stop working at once."""
    await user.delete()


# --- Words ---

WordId = Annotated[int, PathParam(description="The word's id.")]


@app.get("/words", tags=["words"], responses=error_responses(401))
async def read_words(
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    q: Annotated[
        str | None,
        Query(
            max_length=100, pattern=NO_NUL, description="Case-insensitive, in word or definition."
        ),
    ] = None,
    difficulty: Annotated[int | None, Query(ge=1, le=5)] = None,
    tag: Annotated[
        str | None, Query(max_length=32, pattern=NO_NUL, description="Case-insensitive.")
    ] = None,
    language: Annotated[str | None, Query(max_length=16, pattern=NO_NUL)] = None,
    due: Annotated[
        bool | None, Query(description="true: only words due now; false: only those not due.")
    ] = None,
    sort: WordSort = WordSort.NEWEST,
) -> WordPage:
    """List the user's words, filtered, sorted and paged."""
    filters: list[Q] = []
    if q:
        filters.append(Q(word__icontains=q) | Q(definition__icontains=q))
    if difficulty is not None:
        filters.append(Q(difficulty=difficulty))
    if tag:
        filters.append(Q(tags__icontains=f" {tag} "))
    if language is not None:
        filters.append(Q(language__iexact=language))
    if due is not None:
        filters.append(Q(due_at__lte=utcnow()) if due else Q(due_at__gt=utcnow()))
    query = Word.filter(*filters, user_id=user.id)
    rows = await query.order_by(*WORD_ORDER[sort]).offset(offset).limit(limit).values(*WORD_COLUMNS)
    if not filters:
        total = user.word_count  # kept up to date: no COUNT over a large vocabulary
    elif offset == 0 and len(rows) < limit:
        total = len(rows)  # a first page that is not full holds every match
    else:
        total = await query.count()
    return WordPage(items=[WordOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@app.post(
    "/words",
    status_code=status.HTTP_201_CREATED,
    tags=["words"],
    responses=error_responses(401, 409),
)
async def create_word(body: WordCreate, user: CurrentUser, response: Response) -> WordOut:
    """Add a word; it is new and due for study at once."""
    word = Word(user_id=user.id, due_at=utcnow(), **word_fields(body.model_dump()))
    async with in_transaction():
        async with conflict_as_409(WORD_CONFLICT):
            await word.save()
        await add_to_word_count(user, 1)
    response.headers["Location"] = f"/words/{word.id}"
    return WordOut.of_word(word)


@app.get("/words/{word_id:int}", tags=["words"], responses=error_responses(401, 404))
async def read_word(word_id: WordId, user: CurrentUser) -> WordOut:
    """One of the user's words."""
    return WordOut.of_word(await get_word_or_404(word_id, user))


@app.patch("/words/{word_id:int}", tags=["words"], responses=error_responses(401, 404, 409))
async def update_word(word_id: WordId, body: WordUpdate, user: CurrentUser) -> WordOut:
    """Change some of a word's fields."""
    word = await get_word_or_404(word_id, user)
    changes = word_fields(body.model_dump(exclude_unset=True))
    if changes:
        word.update_from_dict(changes)
        # Only the changed columns: a review running meanwhile keeps its schedule update.
        async with conflict_as_409(WORD_CONFLICT):
            await word.save(update_fields=[*changes, "updated_at"])
    return WordOut.of_word(word)


@app.delete(
    "/words/{word_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["words"],
    responses=error_responses(401, 404),
)
async def delete_word(word_id: WordId, user: CurrentUser) -> None:
    """Delete a word and its review history."""
    word = await get_word_or_404(word_id, user)
    async with in_transaction():
        # Counted only if this request deleted it, not a concurrent one. (The number the
        # delete returns may include the word's reviews: it is a yes or no here.)
        if await Word.filter(id=word.id).delete():
            await add_to_word_count(user, -1)


# --- Import and export ---


@app.get(
    "/words/export",
    tags=["import and export"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "All the user's words as CSV: " + ",".join(EXPORT_COLUMNS),
        },
        **error_responses(401),
    },
)
async def export_words(user: CurrentUser) -> StreamingResponse:
    """Download all the user's words as CSV (tags space-separated)."""

    async def csv_chunks() -> AsyncIterator[str]:
        yield ",".join(EXPORT_COLUMNS) + "\n"
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


@app.post(
    "/words/import",
    tags=["import and export"],
    responses=error_responses(401, 413),
)
async def import_words(file: UploadFile, user: CurrentUser) -> ImportResult:
    """Add words from a CSV or TSV file (an export, or an Anki notes export as plain text)."""
    data = await file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        raise HTTPException(413, detail=f"File is larger than {IMPORT_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
        if "\x00" in text:
            raise ValueError("binary file")
        table = read_table(text)
    except (UnicodeDecodeError, ValueError, csv.Error):
        # FastAPI's error list, like every other 422 (and as the schema documents it).
        problem = "The file is not readable UTF-8 CSV or TSV"
        error = {"type": "value_error", "loc": ["body", "file"], "msg": problem}
        raise HTTPException(422, detail=[error]) from None
    existing = {
        (key, language)
        for key, language in await Word.filter(user_id=user.id).values_list("word_key", "language")
    }
    now = utcnow()
    new_words: list[Word] = []
    errors: list[ImportProblem] = []
    skipped = 0
    for line, cells in table.rows:
        try:
            fields = word_fields(parse_row(table, cells).model_dump())
        except ValueError as exc:
            errors.append(ImportProblem(line=line, detail=str(exc)))
            continue
        key = (fields["word_key"], fields["language"])
        if key in existing:
            skipped += 1
            continue
        existing.add(key)
        new_words.append(Word(user_id=user.id, due_at=now, **fields))
    created = await create_many(user, new_words)
    skipped += len(new_words) - created
    return ImportResult(created=created, skipped=skipped, errors=errors[:MAX_IMPORT_ERRORS])


# --- Learning ---


@app.post(
    "/words/{word_id:int}/reviews",
    status_code=status.HTTP_201_CREATED,
    tags=["learning"],
    responses=error_responses(401, 404),
)
async def review_word(word_id: WordId, body: ReviewCreate, user: CurrentUser) -> ReviewResult:
    """Record a review; the word's schedule moves on by FSRS (a word not yet due may be
    reviewed too)."""
    review, word = await record_review(word_id, user, body)
    return ReviewResult(review=ReviewOut.model_validate(review), word=WordOut.of_word(word))


@app.get("/words/{word_id:int}/reviews", tags=["learning"], responses=error_responses(401, 404))
async def read_reviews(
    word_id: WordId,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> ReviewPage:
    """A word's reviews, newest first."""
    word = await get_word_or_404(word_id, user)
    query = Review.filter(word_id=word.id)
    total = await query.count()
    reviews = await query.order_by("-reviewed_at", "-id").offset(offset).limit(limit)
    items = [ReviewOut.model_validate(r) for r in reviews]
    return ReviewPage(items=items, total=total, limit=limit, offset=offset)


@app.get("/study", tags=["learning"], responses=error_responses(401))
async def read_study_queue(
    user: CurrentUser, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> StudyQueue:
    """Words to study now: reviewed words that are due, most overdue first, then new words,
    oldest first."""
    now = utcnow()
    due_total = await due_words(user, now).count()
    rows = (
        await Word.filter(user_id=user.id, due_at__lte=now, state__not=State.NEW)
        .order_by("due_at", "id")
        .limit(limit)
        .values(*WORD_COLUMNS)
    )
    if len(rows) < limit:
        rows += (
            await Word.filter(user_id=user.id, state=State.NEW)
            .order_by("created_at", "id")
            .limit(limit - len(rows))
            .values(*WORD_COLUMNS)
        )
    return StudyQueue(items=[WordOut.of(r) for r in rows], due_total=due_total)


@app.get("/stats", tags=["learning"], responses=error_responses(401))
async def read_stats(user: CurrentUser) -> StatsOut:
    """Counts of words and reviews, 30-day retention and the daily streak."""
    now = utcnow()
    today = now.date()
    by_state = dict.fromkeys(State, 0) | dict(
        await Word.filter(user_id=user.id)
        .annotate(n=Count("id"))
        .group_by("state")
        .values_list("state", "n")
    )
    by_difficulty = {str(d): 0 for d in range(1, 6)} | {
        str(d): n
        for d, n in await Word.filter(user_id=user.id)
        .annotate(n=Count("id"))
        .group_by("difficulty")
        .values_list("difficulty", "n")
    }
    reviews = Review.filter(user_id=user.id)
    recent = reviews.filter(reviewed_at__gte=now - timedelta(days=30), state_before=State.REVIEW)
    recent_total = await recent.count()
    recalled = await recent.filter(rating__not=Rating.AGAIN).count()
    return StatsOut(
        words=sum(by_state.values()),
        new=by_state[State.NEW],
        due=await due_words(user, now).count(),
        reviews_today=await reviews.filter(reviewed_on=today).count(),
        reviews_total=await reviews.count(),
        retention_30d=recalled / recent_total if recent_total else None,
        streak_days=await streak_days(user, today),
        by_state=by_state,
        by_difficulty=by_difficulty,
    )


# --- Study page ---

STATIC = ROOT / "static"
#: The page runs only its own files: no inline code, nothing from other hosts.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
app.mount("/static", StaticFiles(directory=STATIC), name="static")


@app.get("/", include_in_schema=False)
async def read_study_page() -> FileResponse:
    """The browser front end (a client of this same API)."""
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


# --- Command line ---


async def migrate_once() -> None:
    """Apply migrations outside the server (the container runs this before it starts)."""
    await Tortoise.init(config=TORTOISE_ORM)
    try:
        applied = await migrate()
        print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
    finally:
        await Tortoise.close_connections()


def backup(destination: Path) -> None:
    """Copy the SQLite database into a new file with SQLite's online backup API: a consistent
    snapshot, taken while the server keeps running (PostgreSQL: pg_dump, see README)."""
    import sqlite3  # imported here: only this command needs it

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
