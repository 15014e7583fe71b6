"""The ceiling vocab is measured against: Starlette routing, an asyncpg pool and orjson.

It answers the benchmark's requests the way vocab does (same tables, same SQL where it matters
for the database's work, same JSON shape, same tokens), without an ORM or a validation layer:

    GET  /words?limit=&offset=&q=   {items, total, limit, offset}, newest first
    GET  /words/{id}                one word
    POST /words                     add a word and its forward card (word_key, language, tags)
    GET  /study?limit=              {items, due_total, new_left_today, reviews_left_today}: due
                                    reviewed cards, then new cards, within the daily limits,
                                    each with the four ratings' previews (the same `fsrs`
                                    package and call as vocab: what a review would compute)
    GET  /stats/forecast?days=      {items: [{date, due}]}: the same GROUP BY over the user's
                                    study days' bounds as vocab (computed with zoneinfo)
    POST /words/{id}/reviews        FSRS review of a card, with SELECT ... FOR UPDATE
    POST /auth/token                argon2 verify in a thread, refresh-token row, token pair
    GET  /health

Bearer tokens are vocab's HS256 JWTs, checked the same way (signature, exp, type "access", sub,
jti) with the standard library's hmac; the user is then looked up by id. Configuration comes
from the environment: DATABASE_URL (postgres://...), SECRET_KEY, DATABASE_POOL_SIZE,
ACCESS_TOKEN_MINUTES, REFRESH_TOKEN_DAYS. Run it with
`uvicorn raw_server:app --app-dir bench --loop uvloop --http httptools --no-access-log`.
Like vocab it writes one JSON access-log line per request at LOG_LEVEL=INFO (to stderr).
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import asyncpg
import fsrs
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DATABASE_URL = os.environ["DATABASE_URL"]
SECRET = os.environ["SECRET_KEY"].encode()
POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "10"))
ACCESS_SECONDS = 60 * int(os.environ.get("ACCESS_TOKEN_MINUTES", "15"))
REFRESH_SECONDS = 86_400 * int(os.environ.get("REFRESH_TOKEN_DAYS", "30"))
MAX_ID = 2**31 - 1

# A word with its forward card, joined as vocab's ORM joins them (LEFT OUTER JOIN with the
# direction in WHERE); reverse cards are read after, for the words that have `reverse` on.
WORD_COLUMNS = (
    'w."id", w."word", w."definition", w."example", w."language", w."difficulty", w."tags", '
    'w."created_at", w."updated_at", w."reverse", w."suspended", c."state", c."due_at", '
    'c."stability", c."fsrs_difficulty", c."reps", c."lapses", c."last_reviewed_at"'
)
FORWARD = (
    'FROM "words" w LEFT OUTER JOIN "cards" c ON w."id"=c."word_id" '
    "WHERE c.\"direction\"='forward' AND "
)
CARD_COLUMNS = (
    '"state", "due_at", "stability", "fsrs_difficulty", "reps", "lapses", "last_reviewed_at"'
)
REVERSE_CARDS = (
    f'SELECT "word_id", {CARD_COLUMNS} FROM "cards" '
    'WHERE "word_id" = ANY($1) AND "direction"=\'reverse\''
)
# The same predicates and orders as the SQL vocab's ORM emits, so that PostgreSQL does the same
# work for both servers and the comparison measures the Python layers.
LIST_COUNT = 'SELECT COUNT(*) FROM "words" WHERE "user_id"=$1'
LIST_PAGE = (
    f'SELECT {WORD_COLUMNS} {FORWARD} w."user_id"=$1 '
    'ORDER BY w."created_at" DESC, w."id" DESC LIMIT $2 OFFSET $3'
)
SEARCH = (
    "(CAST(w.\"word_fold\" AS VARCHAR) LIKE $2 ESCAPE '\\' "
    "OR CAST(w.\"definition_fold\" AS VARCHAR) LIKE $2 ESCAPE '\\')"
)
SEARCH_COUNT = f'SELECT COUNT(*) FROM "words" w WHERE w."user_id"=$1 AND {SEARCH}'
SEARCH_PAGE = (
    f'SELECT {WORD_COLUMNS} {FORWARD} w."user_id"=$1 AND {SEARCH} '
    'ORDER BY w."created_at" DESC, w."id" DESC LIMIT $3 OFFSET $4'
)
ONE_WORD = (
    f'SELECT {WORD_COLUMNS}, c."direction" FROM "words" w '
    'LEFT OUTER JOIN "cards" c ON w."id"=c."word_id" WHERE w."id"=$1 AND w."user_id"=$2'
)
CARDS_LOCKED = (
    'SELECT c."id", c."direction", c."state", c."due_at", c."stability", c."fsrs_difficulty", '
    'c."reps", c."lapses", c."last_reviewed_at", c."step", w."id", w."word", w."definition", '
    'w."example", w."language", w."difficulty", w."tags", w."created_at", w."updated_at", '
    'w."reverse", w."suspended" FROM "cards" c LEFT OUTER JOIN "words" w ON w."id"=c."word_id" '
    'WHERE c."word_id"=$1 AND c."user_id"=$2 ORDER BY c."id" FOR UPDATE OF c'
)
INSERT_WORD = (
    'INSERT INTO "words" ("word","word_key","definition","example","language","difficulty",'
    '"tags","created_at","updated_at","reverse","suspended","user_id","word_fold",'
    '"definition_fold","tags_key") '
    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,FALSE,FALSE,$9,$10,$11,$12) RETURNING id"
)
INSERT_CARD = (
    'INSERT INTO "cards" ("word_id","user_id","direction","active","state","due_at","reps",'
    "\"lapses\") VALUES ($1,$2,'forward',TRUE,'new',$3,0,0)"
)
STUDIED = 'FROM "cards" WHERE "user_id"=$1 AND "active"'
DUE_COUNT = f'SELECT COUNT(*) {STUDIED} AND ("state"=\'new\' OR "due_at"<=$2)'
# A card as a review (and so a preview) needs it.
PICKED = (
    '"word_id", "direction", "id", "state", "step", "stability", "fsrs_difficulty", "due_at", '
    '"last_reviewed_at"'
)
DUE_PAGE = (
    f'SELECT {PICKED} {STUDIED} AND "due_at"<=$2 '
    'AND ("state"<>\'new\' OR "state" IS NULL) ORDER BY "due_at" ASC,"id" ASC LIMIT $3'
)
NEW_PAGE = f'SELECT {PICKED} {STUDIED} AND "state"=\'new\' ORDER BY "due_at" ASC,"id" ASC LIMIT $2'
TODAY_COUNTS = (
    'SELECT "state_before", COUNT(*) FROM "reviews" WHERE "user_id"=$1 AND "reviewed_at">=$2 '
    'GROUP BY "state_before"'
)
STUDY_WORDS = (
    f'SELECT {WORD_COLUMNS}, c."direction" FROM "words" w '
    'LEFT OUTER JOIN "cards" c ON w."id"=c."word_id" WHERE w."id" = ANY($1) AND w."user_id"=$2'
)
INSERT_REVIEW = (
    'INSERT INTO "reviews" ("card_id","direction","word_id","user_id","rating","reviewed_at",'
    '"reviewed_on","duration_ms","state_before","step_before","stability_before",'
    '"difficulty_before","due_before","last_reviewed_before","state_after","step_after",'
    '"stability_after","difficulty_after","due_after") '
    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) RETURNING id"
)
UPDATE_SCHEDULE = (
    'UPDATE "cards" SET "state"=$1,"step"=$2,"stability"=$3,"fsrs_difficulty"=$4,"due_at"=$5,'
    '"reps"=$6,"lapses"=$7,"last_reviewed_at"=$8 WHERE "id"=$9'
)
USER_BY_ID = (
    'SELECT "id","desired_retention","fsrs_parameters","timezone","day_starts_at",'
    '"new_per_day","reviews_per_day" FROM "users" WHERE "id"=$1'
)
USER_BY_EMAIL = 'SELECT "id","password_hash" FROM "users" WHERE "email"=$1'
INSERT_REFRESH = (
    'INSERT INTO "refresh_tokens" ("id","family","expires_at","used_at","revoked_at",'
    '"created_at","user_id") VALUES ($1,$2,$3,NULL,NULL,$4,$5)'
)

DUMPS_OPTIONS = orjson.OPT_UTC_Z  # "...Z" like Pydantic, not "+00:00"


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, option=DUMPS_OPTIONS), status, headers, "application/json")


def error(status: int, detail: str) -> Response:
    return respond({"detail": detail}, status)


UNAUTHORIZED = orjson.dumps({"detail": "Could not validate credentials"})


def unauthorized() -> Response:
    return Response(UNAUTHORIZED, 401, {"WWW-Authenticate": "Bearer"}, "application/json")


# --- Tokens: HS256 JWTs, the same claims and checks as vocab's ---


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEADER = b64encode(orjson.dumps({"alg": "HS256", "typ": "JWT"}))


def sign(claims: dict[str, Any]) -> str:
    signing_input = f"{HEADER}.{b64encode(orjson.dumps(claims))}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64encode(signature)}"


def user_id_of(request: Request) -> int | None:
    """The `sub` of a valid access token in the Authorization header, else None."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    try:
        head, payload, signature = header[7:].strip().split(".")
        if orjson.loads(b64decode(head)).get("alg") != "HS256":
            return None
        expected = hmac.new(SECRET, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64decode(signature)):
            return None
        claims = orjson.loads(b64decode(payload))
        if claims["type"] != "access" or int(claims["exp"]) <= time.time():
            return None
        int(claims["iat"])
        uuid.UUID(claims["jti"])
        user_id = int(claims["sub"])
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        return None
    if not 0 < user_id <= MAX_ID:
        return None
    request.state.user_id = user_id  # for the access log
    return user_id


def token(user_id: int, kind: str, lifetime: int, **extra: str) -> tuple[str, str]:
    now = int(time.time())
    jti = str(uuid.uuid4())
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "jti": jti, "type": kind}
    return sign({**claims, **extra}), jti


async def current_user(request: Request, conn: asyncpg.Connection) -> asyncpg.Record | None:
    user_id = user_id_of(request)
    return None if user_id is None else await conn.fetchrow(USER_BY_ID, user_id)


# --- Words ---

DEFAULT_PARAMETERS = tuple(fsrs.scheduler.DEFAULT_PARAMETERS)


def parameters_of(user: asyncpg.Record) -> tuple[float, ...]:
    """The user's FSRS parameters (asyncpg gives JSONB as text), or the defaults."""
    return tuple(orjson.loads(user[2])) if user[2] else DEFAULT_PARAMETERS


def retrievability(
    stability: float | None, last: datetime | None, now: datetime, parameters: tuple[float, ...]
) -> float | None:
    """FSRS' forgetting curve now, over fractional days, as vocab computes it."""
    if stability is None or last is None:
        return None
    decay = -parameters[20]
    factor = 0.9 ** (1 / decay) - 1
    days = max(0.0, (now - last).total_seconds() / 86400)
    return float((1 + factor * days / stability) ** decay)


def schedule_out(c: Any, now: datetime, parameters: tuple[float, ...]) -> dict[str, Any]:
    """A card's columns (state, due_at, stability, fsrs_difficulty, reps, lapses, last) shaped
    like vocab's schedule."""
    return {
        "state": c[0],
        "due_at": c[1],
        "stability": c[2],
        "difficulty": c[3],
        "retrievability": retrievability(c[2], c[6], now, parameters),
        "reps": c[4],
        "lapses": c[5],
        "last_reviewed_at": c[6],
    }


def word_out(r: Any, reverse: Any, now: datetime, parameters: tuple[float, ...]) -> dict[str, Any]:
    """A row of WORD_COLUMNS (and the reverse card's columns, or None) shaped like vocab's."""
    return {
        "id": r[0],
        "word": r[1],
        "definition": r[2],
        "example": r[3],
        "language": r[4] or None,
        "difficulty": r[5],
        "tags": r[6].split(),
        "created_at": r[7],
        "updated_at": r[8],
        "reverse": r[9],
        "suspended": r[10],
        "schedule": schedule_out(r[11:18], now, parameters),
        "reverse_schedule": (
            schedule_out(reverse, now, parameters) if r[9] and reverse is not None else None
        ),
    }


async def reverse_cards(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> dict[int, Any]:
    """The reverse cards of the rows' words that have `reverse` on, by word id."""
    ids = [r[0] for r in rows if r[9]]
    if not ids:
        return {}
    return {c[0]: c[1:] for c in await conn.fetch(REVERSE_CARDS, ids)}


def words_out(
    rows: list[asyncpg.Record], now: datetime, parameters: tuple[float, ...]
) -> dict[int, dict[str, Any]]:
    """Rows of WORD_COLUMNS + direction (one per card) as words, by id, in order."""
    forward = {r[0]: r for r in rows if r[18] == "forward"}
    reverse = {r[0]: r[11:18] for r in rows if r[18] == "reverse"}
    return {
        word_id: word_out(r, reverse.get(word_id), now, parameters)
        for word_id, r in forward.items()
    }


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = int(request.query_params.get(name, default))
    if not low <= value <= high:
        raise ValueError(name)
    return value


async def list_words(request: Request) -> Response:
    try:
        limit = int_param(request, "limit", 50, 1, 100)
        offset = int_param(request, "offset", 0, 0, MAX_ID)
    except ValueError:
        return error(422, "limit must be 1–100 and offset 0 or more")
    q = request.query_params.get("q")
    if q is not None and len(q) > 100:
        return error(422, "q is longer than 100 characters")
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        if q:
            key = fold(q.strip())
            pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            total = await conn.fetchval(SEARCH_COUNT, user[0], pattern)
            rows = await conn.fetch(SEARCH_PAGE, user[0], pattern, limit, offset)
        else:
            total = await conn.fetchval(LIST_COUNT, user[0])
            rows = await conn.fetch(LIST_PAGE, user[0], limit, offset)
        reverse = await reverse_cards(conn, rows)
    now, parameters = datetime.now(UTC), parameters_of(user)
    items = [word_out(r, reverse.get(r[0]), now, parameters) for r in rows]
    return respond({"items": items, "total": total, "limit": limit, "offset": offset})


async def get_word(request: Request) -> Response:
    word_id = request.path_params["word_id"]
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        rows = await conn.fetch(ONE_WORD, word_id, user[0]) if 0 < word_id <= MAX_ID else []
    words = words_out(rows, datetime.now(UTC), parameters_of(user))
    return respond(words[word_id]) if words else error(404, "Word not found")


def canonical_language(code: str) -> str:
    first, *rest = code.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2:
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts) if code else ""


def fold(text: str) -> str:
    """A search key like vocab's (case and accents ignored); the benchmark's words are ASCII."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


async def create_word(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
        word = unicodedata.normalize("NFC", body["word"]).strip()
        definition = unicodedata.normalize("NFC", body["definition"]).strip()
        example = (body.get("example") or "").strip() or None
        language = canonical_language((body.get("language") or "").strip())
        difficulty = int(body.get("difficulty", 3))
        tags = " " + " ".join(dict.fromkeys(body.get("tags") or ())) + " "
        if not word or not definition:
            raise ValueError("empty")
    except (ValueError, TypeError, KeyError, AttributeError):
        return error(422, "word and definition are required")
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        try:
            async with conn.transaction():
                word_id = await conn.fetchval(
                    INSERT_WORD,
                    word,
                    word.lower(),
                    definition,
                    example,
                    language,
                    difficulty,
                    tags,
                    now,
                    user[0],
                    fold(word)[:600],
                    fold(definition),
                    " " + " ".join(dict.fromkeys(tag.casefold() for tag in tags.split())) + " ",
                )
                await conn.execute(INSERT_CARD, word_id, user[0], now)
        except asyncpg.UniqueViolationError:
            return error(409, "You already have this word in this language")
    new = ("new", now, None, None, 0, 0, None)
    row = (word_id, word, definition, example, language, difficulty, tags, now, now, False, False)
    return respond(
        word_out((*row, *new), None, now, DEFAULT_PARAMETERS),
        201,
        {"Location": f"/words/{word_id}"},
    )


# --- Learning ---

FSRS_STATE = {
    "new": fsrs.State.Learning,
    "learning": fsrs.State.Learning,
    "review": fsrs.State.Review,
    "relearning": fsrs.State.Relearning,
}
STATE_NAME = {
    fsrs.State.Learning: "learning",
    fsrs.State.Review: "review",
    fsrs.State.Relearning: "relearning",
}
RATINGS = {
    "again": fsrs.Rating.Again,
    "hard": fsrs.Rating.Hard,
    "good": fsrs.Rating.Good,
    "easy": fsrs.Rating.Easy,
}


@lru_cache(maxsize=64)
def scheduler(desired_retention: float, parameters: tuple[float, ...]) -> fsrs.Scheduler:
    return fsrs.Scheduler(
        parameters=parameters, desired_retention=desired_retention, enable_fuzzing=False
    )


async def review_word(request: Request) -> Response:
    word_id = request.path_params["word_id"]
    try:
        body = orjson.loads(await request.body())
        rating = body["rating"]
        grade = RATINGS[rating]
        direction = body.get("direction", "forward")
        if direction not in ("forward", "reverse"):
            raise ValueError("direction")
        duration_ms = body.get("duration_ms")
        if duration_ms is not None and not 0 <= int(duration_ms) <= 86_400_000:
            raise ValueError("duration_ms")
    except (ValueError, TypeError, KeyError, AttributeError):
        return error(422, "rating must be again, hard, good or easy")
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        parameters = parameters_of(user)
        async with conn.transaction():
            cards = {c[1]: c for c in await conn.fetch(CARDS_LOCKED, word_id, user[0])}
            if not cards:
                return error(404, "Word not found")
            c = cards.get(direction)
            w = cards["forward"][10:]
            if c is None or (direction == "reverse" and not w[9]):
                return error(422, "This word has no reverse card")
            now = datetime.now(UTC)
            state = c[2]
            before = fsrs.Card(
                card_id=c[0],
                state=FSRS_STATE[state],
                step=0 if state == "new" else c[9],
                stability=c[4],
                difficulty=c[5],
                due=c[3],
                last_review=c[8],
            )
            rules = scheduler(user[1], parameters)
            after, _ = rules.review_card(before, grade, review_datetime=now)
            state_after = STATE_NAME[after.state]
            review_id = await conn.fetchval(
                INSERT_REVIEW,
                c[0],
                direction,
                w[0],
                user[0],
                rating,
                now,
                now.date(),
                duration_ms,
                state,
                c[9],
                c[4],
                c[5],
                c[3],
                c[8],
                state_after,
                after.step,
                after.stability,
                after.difficulty,
                after.due,
            )
            lapses = c[7] + (1 if rating == "again" and state == "review" else 0)
            await conn.execute(
                UPDATE_SCHEDULE,
                state_after,
                after.step,
                after.stability,
                after.difficulty,
                after.due,
                c[6] + 1,
                lapses,
                now,
                c[0],
            )
    schedules = {d: (x[2], x[3], x[4], x[5], x[6], x[7], x[8]) for d, x in cards.items()}
    schedules[direction] = (
        state_after,
        after.due,
        after.stability,
        after.difficulty,
        c[6] + 1,
        lapses,
        now,
    )
    out = word_out((*w, *schedules["forward"]), schedules.get("reverse"), now, parameters)
    review = {
        "id": review_id,
        "direction": direction,
        "rating": rating,
        "reviewed_at": now,
        "duration_ms": duration_ms,
    }
    return respond({"review": review, "word": out}, 201)


def day_start(zone: ZoneInfo, hour: int, day: date) -> datetime:
    """The UTC instant a study day begins (as vocab's StudyDays.start)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


def study_today(user: asyncpg.Record, now: datetime) -> tuple[ZoneInfo, date]:
    """The user's zone and the study day `now` falls in."""
    zone = ZoneInfo(user[3])
    day = now.astimezone(zone).date()
    return zone, day if now >= day_start(zone, user[4], day) else day - timedelta(days=1)


def previews(c: Any, rules: fsrs.Scheduler, now: datetime) -> dict[str, Any]:
    """What each rating of a PICKED card row would schedule now."""
    card = fsrs.Card(
        card_id=c[2],
        state=FSRS_STATE[c[3]],
        step=0 if c[3] == "new" else c[4],
        stability=c[5],
        difficulty=c[6],
        due=c[7],
        last_review=c[8],
    )
    out = {}
    for name, grade in RATINGS.items():
        due = rules.review_card(card, grade, review_datetime=now)[0].due
        out[name] = {"due_at": due, "interval_seconds": round((due - now).total_seconds())}
    return out


async def study(request: Request) -> Response:
    try:
        limit = int_param(request, "limit", 20, 1, 100)
    except ValueError:
        return error(422, "limit must be 1–100")
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        zone, today = study_today(user, now)
        done = dict(await conn.fetch(TODAY_COUNTS, user[0], day_start(zone, user[4], today)))
        new_left = max(0, user[5] - done.pop("new", 0))
        reviews_left = max(0, user[6] - sum(done.values()))
        due_total = await conn.fetchval(DUE_COUNT, user[0], now)
        picked = []
        if reviews_left:
            picked = await conn.fetch(DUE_PAGE, user[0], now, min(limit, reviews_left))
        if len(picked) < limit and new_left:
            picked += await conn.fetch(NEW_PAGE, user[0], min(limit - len(picked), new_left))
        rows = await conn.fetch(STUDY_WORDS, list({p[0] for p in picked}), user[0])
    parameters = parameters_of(user)
    words = words_out(rows, now, parameters)
    rules = scheduler(user[1], parameters)
    items = [
        {**words[p[0]], "direction": p[1], "previews": previews(p, rules, now)} for p in picked
    ]
    return respond(
        {
            "items": items,
            "due_total": due_total,
            "new_left_today": new_left,
            "reviews_left_today": reviews_left,
        }
    )


def day_of(column: str, bounds: list[datetime], values: list[Any]) -> str:
    """vocab's bucketing: a binary search of CASEs over the days' bounds ($n placeholders)."""

    def within(first: int, last: int) -> str:
        if last - first == 1:
            return str(first)
        middle = (first + last) // 2
        values.append(bounds[middle])
        bound = f"${len(values)}"
        return (
            f"CASE WHEN {column} < {bound} THEN {within(first, middle)} "
            f"ELSE {within(middle, last)} END"
        )

    return within(0, len(bounds) - 1)


async def forecast(request: Request) -> Response:
    try:
        days = int_param(request, "days", 30, 1, 365)
    except ValueError:
        return error(422, "days must be 1–365")
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return unauthorized()
        zone, today = study_today(user, now)
        bounds = [day_start(zone, user[4], today + timedelta(days=n)) for n in range(days + 1)]
        values: list[Any] = [user[0], True, "new", bounds[-1]]
        sql = (
            f"SELECT {day_of('due_at', bounds, values)}, COUNT(*) FROM cards WHERE user_id = $1 "
            "AND active = $2 AND state <> $3 AND due_at < $4 GROUP BY 1"
        )
        due = dict(await conn.fetch(sql, *values))
    items = [{"date": today + timedelta(days=n), "due": due.get(n, 0)} for n in range(days)]
    return respond({"items": items})


# --- Auth ---

password_hasher = PasswordHasher()  # verify() takes the cost from the stored hash
DUMMY_HASH = password_hasher.hash(uuid.uuid4().hex)
LOGIN_ERROR = orjson.dumps({"detail": "Incorrect email or password"})


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return password_hasher.verify(password_hash, password)
    except Argon2Error:
        return False


async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    try:
        email = form["username"][0].strip().lower()
        password = form["password"][0]
    except (KeyError, IndexError):
        return error(422, "username and password are required")
    pool = request.app.state.pool
    user = await pool.fetchrow(USER_BY_EMAIL, email)
    stored = user[1] if user else DUMMY_HASH
    if not await run_in_threadpool(password_matches, stored, password) or user is None:
        return Response(LOGIN_ERROR, 401, {"WWW-Authenticate": "Bearer"}, "application/json")
    family = uuid.uuid4()
    refresh_token, jti = token(user[0], "refresh", REFRESH_SECONDS, fam=str(family))
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=REFRESH_SECONDS)
    await pool.execute(INSERT_REFRESH, uuid.UUID(jti), family, expires, now, user[0])
    access_token, _ = token(user[0], "access", ACCESS_SECONDS)
    return respond(
        {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": ACCESS_SECONDS,
        }
    )


async def health(request: Request) -> Response:
    await request.app.state.pool.fetchval("SELECT 1")
    return respond({"status": "ok", "database": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # vocab's pool: 1 connection at start, up to DATABASE_POOL_SIZE, the same timeouts
    # (DATABASE_TIMEOUT_SECONDS' default: to connect, and per statement on both sides).
    app.state.pool = await asyncpg.create_pool(
        DATABASE_URL,
        min_size=1,
        max_size=POOL_SIZE,
        timeout=5,
        command_timeout=5.5,
        server_settings={"statement_timeout": "5000ms"},
    )
    try:
        yield
    finally:
        await app.state.pool.close()


# --- The access log: one JSON line per request, as vocab writes it in production ---

access_log = logging.getLogger("raw.access")


class JsonLines(logging.Formatter):
    """vocab's JSON log line (time, level, logger, pid, message and the request's fields)."""

    FIELDS = ("request_id", "user_id", "method", "path", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        return orjson.dumps(entry).decode()


def configure_logging() -> None:
    """LOG_LEVEL (vocab's variable) to stderr, which the benchmark sends to a file."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), handlers=[handler])
    logging._srcfile = None  # as vocab: no caller lookup per record


class AccessLog:
    """A request id (X-Request-ID) and one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (b"x-request-id", request_id.encode())
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            access_log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "request_id": request_id,
                    "user_id": scope.get("state", {}).get("user_id"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "client": (scope.get("client") or ("unknown",))[0],
                },
            )


configure_logging()
app = Starlette(
    middleware=[Middleware(AccessLog)],
    routes=[
        Route("/words", list_words, methods=["GET"]),
        Route("/words", create_word, methods=["POST"]),
        Route("/words/{word_id:int}", get_word, methods=["GET"]),
        Route("/words/{word_id:int}/reviews", review_word, methods=["POST"]),
        Route("/study", study, methods=["GET"]),
        Route("/stats/forecast", forecast, methods=["GET"]),
        Route("/auth/token", login, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ],
    lifespan=lifespan,
)
