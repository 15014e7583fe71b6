"""Safe retries: `Idempotency-Key` on every POST that creates or changes data (`/auth/register`,
`/words`, `/words/{id}/reviews`, `/words/import`), as the README's "Safe retries" section and
the OpenAPI schema describe it. The first response to a key is kept and replayed, with
`Idempotent-Replayed: true`, to a retry with the same body; another body is 422, a retry while
the first request runs 409; keys lapse after IDEMPOTENCY_KEY_TTL_SECONDS.

Faults with real processes (a frozen or stopped database, a killed app, two SQLite workers),
retried with keys, are in test_faults.py.
"""

import asyncio
import os
from datetime import timedelta

import pytest
from conftest import DEFAULT_PASSWORD, Auth, make_word

import vocab
from models import Card, IdempotencyKey, Review, User, Word

WORD = {"word": "serendipity", "definition": "a happy accident"}
IN_FLIGHT = {
    "detail": "A request with this Idempotency-Key is still being processed; retry it shortly"
}
REUSED = {
    "detail": [
        {
            "type": "idempotency_key_reused",
            "loc": ["header", "Idempotency-Key"],
            "msg": "This Idempotency-Key was used for a different request (another body or "
            "path); use a new key for a new request",
        }
    ]
}
BAD_KEY = {
    "detail": [
        {
            "type": "idempotency_key_invalid",
            "loc": ["header", "Idempotency-Key"],
            "msg": "Idempotency-Key must be one header of 1 to 255 visible ASCII characters "
            "(no spaces), such as a UUID",
        }
    ]
}
IDEMPOTENT_OPERATIONS = [
    ("/auth/register", "post"),
    ("/words", "post"),
    ("/words/{word_id}/reviews", "post"),
    ("/words/import", "post"),
    ("/imports", "post"),
]
on_postgres = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="in-memory SQLite runs one statement at a time: a second request cannot start "
    "while the first holds its transaction (other workers meet the marker: test_faults.py)",
)


def keyed(auth: Auth, key: str) -> dict[str, str]:
    return {**auth.headers, "Idempotency-Key": key}


async def stored_keys() -> list[tuple[str, int | None]]:
    return [(row.key, row.status_code) for row in await IdempotencyKey.all().order_by("id")]


# --- Replays ---


async def test_create_word_retried_with_its_key_is_replayed_and_stored_once(client, auth):
    first = await client.post("/words", headers=keyed(auth, "word-1"), json=WORD)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    # The same value, written another way, is the same body.
    again = '{ "definition": "a happy accident",  "word": "serendipity" }'
    retry = await client.post(
        "/words",
        headers={**keyed(auth, "word-1"), "Content-Type": "application/json"},
        content=again,
    )
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Content-Type"] == "application/json"
    assert await Word.filter(user_id=auth.id).count() == 1
    assert await Card.filter(user_id=auth.id).count() == 1
    assert (await User.get(id=auth.id)).word_count == 1
    assert await stored_keys() == [("word-1", 201)]


async def test_review_retried_with_its_key_is_recorded_once(client, auth):
    word = await make_word(client, auth.headers)
    path = f"/words/{word['id']}/reviews"
    first = await client.post(path, headers=keyed(auth, "review-1"), json={"rating": "good"})
    assert first.status_code == 201, first.text
    for _ in range(3):
        retry = await client.post(path, headers=keyed(auth, "review-1"), json={"rating": "good"})
        assert retry.status_code == 201, retry.text
        assert retry.json() == first.json()
        assert retry.headers["Idempotent-Replayed"] == "true"
    assert await Review.filter(word_id=word["id"]).count() == 1
    assert (await Card.get(word_id=word["id"])).reps == 1
    # A new key is a new review.
    second = await client.post(path, headers=keyed(auth, "review-2"), json={"rating": "good"})
    assert second.status_code == 201, second.text
    assert second.json()["review"]["id"] != first.json()["review"]["id"]
    assert await Review.filter(word_id=word["id"]).count() == 2


async def test_import_retried_with_its_key_is_replayed_despite_a_new_multipart_boundary(
    client, auth
):
    data = b"word,definition\nhaus,house\nbaum,tree\n"
    sent = []
    for _ in range(2):  # httpx draws a new boundary for every request, as browsers do
        r = await client.post(
            "/words/import",
            headers=keyed(auth, "import-1"),
            files={"file": ("words.csv", data, "text/csv")},
        )
        assert r.status_code == 200, r.text
        sent.append(r)
    assert sent[0].json() == sent[1].json() == {"created": 2, "skipped": 0, "errors": []}
    assert sent[1].headers["Idempotent-Replayed"] == "true"
    assert await Word.filter(user_id=auth.id).count() == 2
    # Another file under the same key is another request.
    r = await client.post(
        "/words/import",
        headers=keyed(auth, "import-1"),
        files={"file": ("words.csv", data + b"tisch,table\n", "text/csv")},
    )
    assert r.status_code == 422, r.text
    assert r.json() == REUSED
    assert await Word.filter(user_id=auth.id).count() == 2


async def test_import_job_retried_with_its_key_is_one_job(client, auth, monkeypatch):
    """POST /imports with a key: the retry (a new multipart boundary) answers the same job,
    and a body larger than the part kept in memory streams through a temporary file."""
    monkeypatch.setattr(vocab, "SPOOL_IN_MEMORY", 1024)
    rows = "".join(f"word {n},meaning number {n}\n" for n in range(300))
    data = ("word,definition\n" + rows).encode()
    assert len(data) > 4 * 1024
    sent = []
    for _ in range(2):
        r = await client.post(
            "/imports",
            headers=keyed(auth, "job-1"),
            files={"file": ("words.csv", data, "text/csv")},
        )
        assert r.status_code == 202, r.text
        sent.append(r)
    assert sent[1].headers["Idempotent-Replayed"] == "true"
    assert sent[0].json()["id"] == sent[1].json()["id"]
    assert sent[1].headers["Location"] == f"/imports/{sent[0].json()['id']}"
    job_id = sent[0].json()["id"]
    for _ in range(500):
        r = await client.get(f"/imports/{job_id}", headers=auth.headers)
        if r.json()["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.02)
    assert r.json()["status"] == "done", r.text
    assert r.json()["result"]["created"] == 300
    assert await vocab.ImportJob.filter(user_id=auth.id).count() == 1
    assert await Word.filter(user_id=auth.id).count() == 300
    # Another file under the same key is another request.
    r = await client.post(
        "/imports",
        headers=keyed(auth, "job-1"),
        files={"file": ("words.csv", data + b"tisch,table\n", "text/csv")},
    )
    assert r.status_code == 422, r.text
    assert r.json() == REUSED
    assert await vocab.ImportJob.filter(user_id=auth.id).count() == 1


async def test_import_cut_off_half_way_is_finished_by_its_retry_without_doubles(
    client, auth, monkeypatch
):
    """An import commits a chunk at a time (other writers are not held up for a large file):
    cut off after its first chunk, its retry with the same key imports the rest and skips
    what is there."""
    monkeypatch.setattr(vocab, "IMPORT_CHUNK", 1)
    create_many = vocab.create_many
    chunks = 0

    async def dies_after_one_chunk(user, words):
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise RuntimeError("the worker died")
        return await create_many(user, words)

    monkeypatch.setattr(vocab, "create_many", dies_after_one_chunk)
    files = {"file": ("words.csv", b"word,definition\nhaus,house\nbaum,tree\n", "text/csv")}
    r = await client.post("/words/import", headers=keyed(auth, "big"), files=files)
    assert r.status_code == 500, r.text
    assert await Word.filter(user_id=auth.id).count() == 1
    assert await stored_keys() == []  # not answered: the key is free for the retry
    r = await client.post("/words/import", headers=keyed(auth, "big"), files=files)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "skipped": 1, "errors": []}
    assert sorted(await Word.filter(user_id=auth.id).values_list("word", flat=True)) == [
        "baum",
        "haus",
    ]
    assert await stored_keys() == [("big", 200)]


async def test_register_retried_with_its_key_is_replayed_and_creates_one_account(client):
    body = {"email": "new@example.com", "password": DEFAULT_PASSWORD}
    headers = {"Idempotency-Key": "register-1"}
    first = await client.post("/auth/register", headers=headers, json=body)
    assert first.status_code == 201, first.text
    retry = await client.post("/auth/register", headers=headers, json=body)
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await User.filter(email="new@example.com").count() == 1
    # Without the password nobody gets the account's details back from the key.
    other = {"email": "new@example.com", "password": "another password"}
    r = await client.post("/auth/register", headers=headers, json=other)
    assert r.status_code == 422, r.text
    assert r.json() == REUSED
    # Keys of registrations are per email address: another address may use the same key.
    r = await client.post(
        "/auth/register",
        headers=headers,
        json={"email": "else@example.com", "password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 201, r.text
    assert await User.all().count() == 2
    stored = await IdempotencyKey.all()
    assert len({row.scope for row in stored}) == 2
    assert all(row.user_id is None and "new@" not in row.scope for row in stored)


async def test_refusal_after_processing_is_replayed(client, auth):
    await make_word(client, auth.headers, **WORD)
    first = await client.post("/words", headers=keyed(auth, "dup"), json=WORD)
    assert first.status_code == 409, first.text
    retry = await client.post("/words", headers=keyed(auth, "dup"), json=WORD)
    assert retry.status_code == 409, retry.text
    assert retry.json() == first.json() == {"detail": vocab.WORD_CONFLICT}
    assert retry.headers["Idempotent-Replayed"] == "true"
    missing = await client.post(
        "/words/999/reviews", headers=keyed(auth, "gone"), json={"rating": "good"}
    )
    assert missing.status_code == 404, missing.text
    assert await stored_keys() == [("dup", 409), ("gone", 404)]
    assert await Word.filter(user_id=auth.id).count() == 1


async def test_request_refused_before_processing_leaves_its_key_free(client, auth):
    # A body that fails validation, and bad credentials: nothing kept, the key can be used.
    r = await client.post("/words", headers=keyed(auth, "k"), json={"word": "no definition"})
    assert r.status_code == 422, r.text
    r = await client.post(
        "/words", headers={"Authorization": "Bearer nope", "Idempotency-Key": "k"}, json=WORD
    )
    assert r.status_code == 401, r.text
    assert await stored_keys() == []
    r = await client.post("/words", headers=keyed(auth, "k"), json=WORD)
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers
    assert await stored_keys() == [("k", 201)]


async def test_token_of_a_deleted_user_with_a_key_is_401(client, auth):
    headers = keyed(auth, "k")
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    r = await client.post("/words", headers=headers, json=WORD)
    assert r.status_code == 401, r.text
    assert await IdempotencyKey.all().count() == 0
    assert await Word.all().count() == 0


async def test_register_refused_by_the_rate_limit_is_not_kept(client, monkeypatch):
    monkeypatch.setattr(vocab, "REGISTER_LIMIT", vocab.rate_limit("1/hour"))
    monkeypatch.setattr(vocab, "rate_limiter", vocab.MovingWindowRateLimiter(
        vocab.storage_from_string("async+memory://")
    ))  # fmt: skip
    body = {"email": "limited@example.com", "password": DEFAULT_PASSWORD}
    r = await client.post("/auth/register", json={**body, "email": "first@example.com"})
    assert r.status_code == 201, r.text
    r = await client.post("/auth/register", headers={"Idempotency-Key": "r"}, json=body)
    assert r.status_code == 429, r.text
    assert "Idempotent-Replayed" not in r.headers
    assert await IdempotencyKey.all().count() == 0


# --- Misuse of a key ---


async def test_same_key_with_another_body_or_path_is_422_and_changes_nothing(client, auth):
    word = await make_word(client, auth.headers)
    r = await client.post("/words", headers=keyed(auth, "once"), json={**WORD, "word": "one"})
    assert r.status_code == 201, r.text
    r = await client.post("/words", headers=keyed(auth, "once"), json={**WORD, "word": "two"})
    assert r.status_code == 422, r.text
    assert r.json() == REUSED
    r = await client.post(
        f"/words/{word['id']}/reviews", headers=keyed(auth, "once"), json={"rating": "good"}
    )
    assert r.status_code == 422, r.text
    assert r.json() == REUSED
    assert sorted(await Word.filter(user_id=auth.id).values_list("word", flat=True)) == [
        "one",
        "serendipity",
    ]
    assert await Review.all().count() == 0


async def test_keys_are_per_user(client, auth, other_auth):
    mine = await client.post("/words", headers=keyed(auth, "shared"), json=WORD)
    theirs = await client.post("/words", headers=keyed(other_auth, "shared"), json=WORD)
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await Word.all().count() == 2


@pytest.mark.parametrize(
    "key",
    [b"", b" ", b"two words", b"tab\tinside", b"x" * 256, "schl\u00fcssel".encode("latin-1")],
    ids=["empty", "space", "inner-space", "tab", "too-long", "not-ascii"],
)
async def test_create_word_with_invalid_key_is_422(client, auth, key):
    r = await client.post("/words", headers={**auth.headers, "Idempotency-Key": key}, json=WORD)
    assert r.status_code == 422, r.text
    assert r.json() == BAD_KEY
    assert await Word.all().count() == 0
    assert await IdempotencyKey.all().count() == 0


async def test_create_word_with_two_keys_is_422(client, auth):
    headers = [*auth.headers.items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    r = await client.post("/words", headers=headers, json=WORD)
    assert r.status_code == 422, r.text
    assert r.json() == BAD_KEY
    assert await Word.all().count() == 0


async def test_longest_and_oddest_valid_keys_are_accepted(client, auth):
    for n, key in enumerate(["k" * 255, '"quoted"', "!#$%&'*+-.^_`|~", "0"]):
        r = await client.post("/words", headers=keyed(auth, key), json={**WORD, "word": f"w{n}"})
        assert r.status_code == 201, r.text
    assert await IdempotencyKey.all().count() == 4


# --- In flight ---


async def pretend_in_flight(key: str) -> None:
    """The key's request as another worker would leave it while it runs (or had it when it
    crashed): a marker, no response, and the write not (or no longer) there."""
    await IdempotencyKey.filter(key=key).update(
        status_code=None, response_body=None, response_headers=None,
        expires_at=vocab.utcnow() + timedelta(seconds=vocab.settings.REQUEST_TIMEOUT_SECONDS + 1),
    )  # fmt: skip


async def test_retry_while_first_request_runs_is_409_until_its_marker_lapses(client, auth, clock):
    word = await make_word(client, auth.headers)
    path = f"/words/{word['id']}/reviews"
    r = await client.post(path, headers=keyed(auth, "busy"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    await Review.all().delete()  # the first request crashed before it committed
    await pretend_in_flight("busy")
    r = await client.post(path, headers=keyed(auth, "busy"), json={"rating": "good"})
    assert r.status_code == 409, r.text
    assert r.json() == IN_FLIGHT
    assert r.headers["Retry-After"] == "1"
    assert await Review.all().count() == 0
    # Another body is still another request, in flight or not.
    r = await client.post(path, headers=keyed(auth, "busy"), json={"rating": "easy"})
    assert r.status_code == 422, r.text
    # A crashed request's marker lapses with REQUEST_TIMEOUT_SECONDS: the retry then runs.
    clock.advance(seconds=vocab.settings.REQUEST_TIMEOUT_SECONDS + 1)
    r = await client.post(path, headers=keyed(auth, "busy"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers
    assert await Review.all().count() == 1
    assert await stored_keys() == [("busy", 201)]


@on_postgres
async def test_concurrent_retry_while_first_request_runs_is_409(client, auth, monkeypatch):
    running, finish = asyncio.Event(), asyncio.Event()
    add_to_word_count = vocab.add_to_word_count

    async def slow_count(user, change):
        running.set()
        await finish.wait()
        await add_to_word_count(user, change)

    monkeypatch.setattr(vocab, "add_to_word_count", slow_count)
    first = asyncio.create_task(client.post("/words", headers=keyed(auth, "slow"), json=WORD))
    await asyncio.wait_for(running.wait(), 5)
    retry = await client.post("/words", headers=keyed(auth, "slow"), json=WORD)
    assert retry.status_code == 409, retry.text
    assert retry.json() == IN_FLIGHT
    finish.set()
    assert (await first).status_code == 201
    retry = await client.post("/words", headers=keyed(auth, "slow"), json=WORD)
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await Word.all().count() == 1


async def test_request_whose_marker_was_taken_over_rolls_back(client, auth, monkeypatch):
    """The first request outlived its marker (it lapsed, say, on a hung database) and a retry
    took the key: the first must not commit its write too."""
    add_to_word_count = vocab.add_to_word_count

    async def taken_over(user, change):
        await add_to_word_count(user, change)
        await IdempotencyKey.filter(key="late").delete()  # a retry's purge of the lapsed marker

    monkeypatch.setattr(vocab, "add_to_word_count", taken_over)
    r = await client.post("/words", headers=keyed(auth, "late"), json=WORD)
    assert r.status_code == 409, r.text
    assert r.json() == IN_FLIGHT
    assert await Word.all().count() == 0
    assert (await User.get(id=auth.id)).word_count == 0
    # No response kept (the test's delete was in the request's transaction and rolled back
    # with it; a real retry's is its own, and its marker stands).
    assert await stored_keys() == [("late", None)]


# --- Expiry ---


async def test_key_lapses_after_its_ttl_and_lapsed_keys_are_purged(client, auth, clock):
    word = await make_word(client, auth.headers)
    path = f"/words/{word['id']}/reviews"
    r = await client.post(path, headers=keyed(auth, "daily"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    clock.advance(seconds=vocab.settings.IDEMPOTENCY_KEY_TTL_SECONDS - 1)
    r = await client.post(path, headers=keyed(auth, "daily"), json={"rating": "good"})
    assert r.headers["Idempotent-Replayed"] == "true"
    assert await Review.all().count() == 1
    clock.advance(seconds=2)
    r = await client.post(path, headers=keyed(auth, "daily"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers
    assert await Review.all().count() == 2
    # Lapsed keys of anyone are deleted as keyed requests come (at most once a minute).
    r = await client.post(path, headers=keyed(auth, "other"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    clock.advance(seconds=vocab.settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)
    vocab.next_purge = 0.0
    r = await client.post(path, headers=keyed(auth, "third"), json={"rating": "good"})
    assert r.status_code == 201, r.text
    assert await stored_keys() == [("third", 201)]


def test_key_ttl_is_a_setting(monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_KEY_TTL_SECONDS", "3600")
    assert vocab.Settings().IDEMPOTENCY_KEY_TTL_SECONDS == 3600
    monkeypatch.setenv("IDEMPOTENCY_KEY_TTL_SECONDS", "59")
    with pytest.raises(ValueError):
        vocab.Settings()
    monkeypatch.delenv("IDEMPOTENCY_KEY_TTL_SECONDS")
    assert vocab.Settings().IDEMPOTENCY_KEY_TTL_SECONDS == 24 * 3600


# --- Without a key, and the account's end ---


async def test_requests_without_key_never_touch_the_keys(client, auth, monkeypatch):
    async def no_claim(*args):
        raise AssertionError("a request without Idempotency-Key claimed a key")

    monkeypatch.setattr(vocab, "claim_key", no_claim)
    word = await make_word(client, auth.headers)
    r = await client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
    )
    assert r.status_code == 201, r.text
    r = await client.post("/words", headers=auth.headers, json={**WORD, "word": "other"})
    assert r.status_code == 201, r.text
    assert await IdempotencyKey.all().count() == 0


async def test_delete_account_deletes_its_kept_responses(client, auth, other_auth):
    for who in (auth, other_auth):
        r = await client.post("/words", headers=keyed(who, "k"), json=WORD)
        assert r.status_code == 201, r.text
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert [row.user_id for row in await IdempotencyKey.all()] == [other_auth.id]


# --- The contract ---


async def test_openapi_documents_the_key_on_every_write_that_takes_one(client):
    schema = (await client.get("/openapi.json")).json()
    for path, method in IDEMPOTENT_OPERATIONS:
        operation = schema["paths"][path][method]
        header = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert len(header) == 1, path
        assert header[0]["in"] == "header" and not header[0]["required"]
        assert header[0]["schema"]["anyOf"][0]["maxLength"] == 255
        assert {"409", "422"} <= operation["responses"].keys(), path
        success = next(code for code in operation["responses"] if code.startswith("2"))
        assert "Idempotent-Replayed" in operation["responses"][success]["headers"], path
    keyed_operations = {
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert keyed_operations == set(IDEMPOTENT_OPERATIONS)


async def test_cors_lets_a_browser_send_the_key_and_read_the_replay_header(client):
    from conftest import ALLOWED_ORIGIN

    r = await client.options(
        "/words",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "idempotency-key",
        },
    )
    assert r.status_code == 200, r.text
    assert "idempotency-key" in r.headers["Access-Control-Allow-Headers"].lower()
    r = await client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert "Idempotent-Replayed" in r.headers["Access-Control-Expose-Headers"]
