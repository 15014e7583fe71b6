"""Sessions (issue 15): the refresh-token reuse grace window, and access tokens that end at
once on a password change or an account deletion.

Time is `session_clock` (conftest), the clock tokens are issued, checked and spent by: frozen,
moved by the tests, never slept through.
"""

import asyncio
import time
import uuid

import httpx
import pytest
from conftest import TEST_SECRET_KEY, Auth, past_reuse_grace
from joserfc import jwt
from joserfc.jwk import OctKey
from tortoise import connections

import vocab
from models import RefreshToken, User

BAD_REFRESH = {"detail": "Invalid refresh token"}
BAD_CREDENTIALS = {"detail": "Could not validate credentials"}
NEW_PASSWORD = "a brand new passphrase"


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refresh_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == BAD_REFRESH
    assert r.headers["WWW-Authenticate"] == "Bearer"


def assert_access_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == BAD_CREDENTIALS
    assert r.headers["WWW-Authenticate"] == "Bearer"


async def login_rows(user_id: int) -> list[RefreshToken]:
    return await RefreshToken.filter(user_id=user_id).order_by("created_at", "id")


# --- Refresh grace window ---


async def test_refresh_token_again_within_grace_gets_a_pair_in_the_same_login(
    client, auth, session_clock
):
    first = await refresh(client, auth.refresh_token)
    assert first.status_code == 200, first.text
    session_clock.advance(seconds=vocab.settings.REFRESH_REUSE_GRACE_SECONDS - 0.5)
    again = await refresh(client, auth.refresh_token)
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] != first.json()["refresh_token"]

    rows = await login_rows(auth.id)
    assert len(rows) == 3  # the one spent and its two successors
    assert len({row.family for row in rows}) == 1
    assert all(row.revoked_at is None for row in rows)
    # Each successor is a live token of that login, for the tab that holds it.
    for pair in (first.json(), again.json()):
        r = await client.get("/users/me", headers=bearer(pair["access_token"]))
        assert r.status_code == 200, r.text
        r = await refresh(client, pair["refresh_token"])
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("tabs", [2, 5])
async def test_refresh_token_sent_by_several_tabs_at_once_keeps_the_login(client, auth, tabs):
    """Two tabs (or five) renew with the same token at the same moment: every one gets a pair
    and the login lives on (on PostgreSQL the spending UPDATEs really race)."""
    responses = await asyncio.gather(*(refresh(client, auth.refresh_token) for _ in range(tabs)))
    assert [r.status_code for r in responses] == [200] * tabs, [r.text for r in responses]
    tokens = {r.json()["refresh_token"] for r in responses}
    assert len(tokens) == tabs

    rows = await login_rows(auth.id)
    assert len(rows) == 1 + tabs
    assert all(row.revoked_at is None for row in rows)
    assert sum(row.used_at is not None for row in rows) == 1  # only the shared token is spent
    for token in tokens:
        r = await refresh(client, token)
        assert r.status_code == 200, r.text


async def test_refresh_token_again_after_grace_ends_the_whole_login(client, auth, session_clock):
    first = await refresh(client, auth.refresh_token)
    assert first.status_code == 200, first.text
    newest = first.json()["refresh_token"]
    session_clock.advance(**past_reuse_grace())

    assert_refresh_401(await refresh(client, auth.refresh_token))
    assert_refresh_401(await refresh(client, newest))  # the whole login is over
    rows = await login_rows(auth.id)
    assert len(rows) == 2
    assert all(row.revoked_at is not None for row in rows)


async def test_refresh_token_again_at_the_end_of_grace_ends_the_login(client, auth, session_clock):
    """The window is REFRESH_REUSE_GRACE_SECONDS long: at that age the token is reused."""
    assert (await refresh(client, auth.refresh_token)).status_code == 200
    session_clock.advance(seconds=vocab.settings.REFRESH_REUSE_GRACE_SECONDS)
    assert_refresh_401(await refresh(client, auth.refresh_token))
    assert await RefreshToken.filter(user_id=auth.id, revoked_at=None).count() == 0


async def test_refresh_token_again_with_grace_off_ends_the_login(
    client, auth, session_clock, monkeypatch
):
    monkeypatch.setattr(vocab.settings, "REFRESH_REUSE_GRACE_SECONDS", 0)
    assert (await refresh(client, auth.refresh_token)).status_code == 200
    assert_refresh_401(await refresh(client, auth.refresh_token))
    assert await RefreshToken.filter(user_id=auth.id, revoked_at=None).count() == 0


async def test_refresh_token_within_grace_of_an_ended_login_is_401(client, auth, session_clock):
    """A login signed out meanwhile stays signed out, whatever the window."""
    first = await refresh(client, auth.refresh_token)
    assert first.status_code == 200, first.text
    r = await client.post("/auth/logout", json={"refresh_token": first.json()["refresh_token"]})
    assert r.status_code == 204, r.text
    session_clock.advance(seconds=1)
    assert_refresh_401(await refresh(client, auth.refresh_token))


async def test_logout_with_token_spent_within_grace_ends_the_login(client, auth, session_clock):
    """One tab renewed; the other, still holding the old token, signs out: both are out."""
    first = await refresh(client, auth.refresh_token)
    assert first.status_code == 200, first.text
    session_clock.advance(seconds=1)
    r = await client.post("/auth/logout", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 204, r.text
    assert_refresh_401(await refresh(client, first.json()["refresh_token"]))


async def test_refresh_token_past_its_expiry_is_401(client, auth, session_clock):
    session_clock.advance(days=vocab.settings.REFRESH_TOKEN_DAYS, seconds=1)
    assert_refresh_401(await refresh(client, auth.refresh_token))
    other = Auth(client, email=auth.email)  # control: a login of that day renews
    assert (await other.login()).status_code == 200
    assert (await refresh(client, other.refresh_token)).status_code == 200


# --- Password change and deletion end access tokens at once ---


async def change_password(client: httpx.AsyncClient, user: Auth) -> httpx.Response:
    return await client.patch(
        "/users/me",
        headers=user.headers,
        json={"password": NEW_PASSWORD, "current_password": user.password},
    )


async def test_update_me_password_ends_every_access_token_issued_before_it(client, auth):
    other_login = Auth(client, email=auth.email)
    assert (await other_login.login()).status_code == 200
    r = await change_password(client, auth)
    assert r.status_code == 200, r.text

    for login in (auth, other_login):
        assert_access_401(await client.get("/users/me", headers=login.headers))
        assert_access_401(await client.get("/words", headers=login.headers))
    fresh = Auth(client, email=auth.email, password=NEW_PASSWORD)
    assert (await fresh.login()).status_code == 200
    r = await client.get("/users/me", headers=fresh.headers)
    assert r.status_code == 200, r.text
    assert (await User.get(id=auth.id)).token_version == 1


async def test_update_me_password_in_the_same_second_tells_tokens_apart(
    client, auth, session_clock
):
    """The clock does not move: the old token, the change and the new token share one second
    (one `iat`), and still only the token issued after the change works."""
    before = Auth(client, email=auth.email)
    assert (await before.login()).status_code == 200
    assert (await change_password(client, auth)).status_code == 200
    after = Auth(client, email=auth.email, password=NEW_PASSWORD)
    assert (await after.login()).status_code == 200

    old, new = (
        jwt.decode(t, vocab.SIGNING_KEY).claims for t in (before.access_token, after.access_token)
    )
    assert old["iat"] == new["iat"]
    assert (old["ver"], new["ver"]) == (0, 1)
    assert_access_401(await client.get("/users/me", headers=before.headers))
    r = await client.get("/users/me", headers=after.headers)
    assert r.status_code == 200, r.text


async def test_update_me_password_refused_refresh_token_from_before_even_if_not_revoked(
    client, auth
):
    """A refresh that raced the change (its new token written after the change revoked the
    rest) still carries the old version: it renews nothing."""
    assert (await change_password(client, auth)).status_code == 200
    await RefreshToken.filter(user_id=auth.id).update(revoked_at=None)  # the race, simulated
    assert_refresh_401(await refresh(client, auth.refresh_token))


async def test_update_me_retention_only_keeps_tokens(client, auth):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": 0.8})
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=auth.headers)).status_code == 200
    assert (await refresh(client, auth.refresh_token)).status_code == 200
    assert (await User.get(id=auth.id)).token_version == 0


async def test_update_me_with_empty_body_changes_nothing(client, auth):
    r = await client.patch("/users/me", headers=auth.headers, json={})
    assert r.status_code == 200, r.text
    assert r.json() == auth.user
    assert (await client.get("/users/me", headers=auth.headers)).status_code == 200


async def test_delete_me_ends_every_access_token_even_after_the_email_registers_again(client, auth):
    other_login = Auth(client, email=auth.email)
    assert (await other_login.login()).status_code == 200
    assert (await client.delete("/users/me", headers=auth.headers)).status_code == 204
    newcomer = await Auth(client, email=auth.email).setup()  # the same email, a new account
    for login in (auth, other_login):
        assert_access_401(await client.get("/users/me", headers=login.headers))
        assert_refresh_401(await refresh(client, login.refresh_token))
    r = await client.get("/users/me", headers=newcomer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] != auth.id


def signed(user_id: int, **claims: object) -> str:
    now = int(time.time())
    payload = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "type": "access",
        **claims,
    }
    return jwt.encode({"alg": "HS256"}, payload, OctKey.import_key(TEST_SECRET_KEY))


@pytest.mark.parametrize(
    ("version", "status"),
    [
        pytest.param({}, 200, id="no-version-claim"),  # signed before versions existed
        pytest.param({"ver": 0}, 200, id="current"),
        pytest.param({"ver": 1}, 401, id="future"),
        pytest.param({"ver": "0"}, 401, id="string"),
        pytest.param({"ver": False}, 401, id="boolean"),
        pytest.param({"ver": 0.0}, 401, id="float"),
    ],
)
async def test_read_me_judges_the_token_version_claim(client, auth, version, status):
    r = await client.get("/users/me", headers=bearer(signed(auth.id, **version)))
    assert r.status_code == status, r.text


async def test_read_me_reads_the_database_once(client, auth, monkeypatch):
    """The token version rides on the user row the request reads anyway."""
    connection = connections.get("default")
    statements: list[str] = []
    for method in ("execute_query", "execute_query_dict"):
        original = getattr(connection, method)

        async def counted(sql, *args, _original=original, **kwargs):
            statements.append(sql)
            return await _original(sql, *args, **kwargs)

        monkeypatch.setattr(connection, method, counted)
    r = await client.get("/users/me", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert len(statements) == 1, statements
