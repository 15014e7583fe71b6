"""Auth and account: /auth/register, /auth/token, /auth/refresh, /auth/logout, /users/me."""

import httpx
import pytest
from conftest import (
    BAD_CREDENTIALS,
    BAD_REFRESH,
    DEFAULT_PASSWORD,
    Auth,
    assert_401,
    make_review,
    make_word,
    past_reuse_grace,
    ts,
)
from pwdlib.hashers.argon2 import Argon2Hasher

from models import Review, User, Word

USER_FIELDS = {
    "id", "email", "created_at", "desired_retention", "reverse_cards", "fsrs_parameters",
    "timezone", "day_starts_at", "new_per_day", "reviews_per_day",
}  # fmt: skip
BAD_LOGIN = {"detail": "Incorrect email or password"}


def assert_token_pair(body: dict) -> None:
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


# --- Register ---


async def test_register_user_returns_201_and_the_user(client):
    r = await client.post(
        "/auth/register", json={"email": "alice@example.com", "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == USER_FIELDS
    assert isinstance(body["id"], int)
    assert body["email"] == "alice@example.com"
    assert body["desired_retention"] == 0.9
    ts(body["created_at"])  # ISO 8601 with a UTC offset
    user = await User.get(id=body["id"])
    assert user.email == "alice@example.com"


async def test_register_user_never_returns_the_password_or_its_hash(client):
    r = await client.post(
        "/auth/register", json={"email": "alice@example.com", "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 201, r.text
    assert DEFAULT_PASSWORD not in r.text
    assert "password" not in r.text
    assert "$argon2" not in r.text


async def test_register_user_stores_a_hash_not_the_password(client):
    r = await client.post(
        "/auth/register", json={"email": "alice@example.com", "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 201, r.text
    user = await User.get(id=r.json()["id"])
    assert user.password_hash.startswith("$argon2")
    assert DEFAULT_PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    "second_email",
    ["alice@example.com", "Alice@Example.com", "ALICE@EXAMPLE.COM"],
)
async def test_register_user_with_taken_email_is_409(client, second_email):
    first = await Auth(client, email="alice@example.com").register()
    assert first.status_code == 201, first.text
    r = await client.post(
        "/auth/register", json={"email": second_email, "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 409, r.text
    assert r.json() == {"detail": "Email already registered"}
    assert await User.all().count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"email": "not-an-email", "password": DEFAULT_PASSWORD}, id="no-at"),
        pytest.param({"email": "alice@", "password": DEFAULT_PASSWORD}, id="no-domain"),
        pytest.param({"email": "@example.com", "password": DEFAULT_PASSWORD}, id="no-local-part"),
        pytest.param({"email": "", "password": DEFAULT_PASSWORD}, id="empty-email"),
        pytest.param({"email": 42, "password": DEFAULT_PASSWORD}, id="email-not-a-string"),
        pytest.param({"email": "alice@example.com", "password": "x" * 7}, id="password-7"),
        pytest.param({"email": "alice@example.com", "password": "x" * 129}, id="password-129"),
        pytest.param({"email": "alice@example.com"}, id="missing-password"),
        pytest.param({"password": DEFAULT_PASSWORD}, id="missing-email"),
        pytest.param({}, id="empty-object"),
    ],
)
async def test_register_user_with_invalid_payload_is_422(client, payload):
    r = await client.post("/auth/register", json=payload)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert await User.all().count() == 0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"email": "alice@example.com", "password": ', b"", b"[1, 2"],
    ids=["garbage", "truncated", "empty", "unclosed-array"],
)
async def test_register_user_with_unparseable_json_is_422(client, content):
    r = await client.post(
        "/auth/register", content=content, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert "detail" in r.json()
    assert await User.all().count() == 0


@pytest.mark.parametrize("length", [8, 128])
async def test_register_user_with_password_at_length_limit_is_201(client, length):
    r = await Auth(client, email="alice@example.com", password="p" * length).register()
    assert r.status_code == 201, r.text
    r = await Auth(client, email="alice@example.com", password="p" * length).login()
    assert r.status_code == 200, r.text


# --- Login ---


async def test_login_user_returns_token_pair(client):
    alice = Auth(client, email="alice@example.com")
    assert (await alice.register()).status_code == 201
    r = await alice.login()
    assert r.status_code == 200, r.text
    assert_token_pair(r.json())
    r = await client.get("/users/me", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == alice.user


async def test_login_user_with_differently_cased_email_succeeds(client):
    alice = Auth(client, email="alice@example.com")
    assert (await alice.register()).status_code == 201
    r = await alice.login(email="Alice@EXAMPLE.com")
    assert r.status_code == 200, r.text
    assert_token_pair(r.json())


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("nobody@example.com", DEFAULT_PASSWORD, id="unknown-email"),
        pytest.param("alice@example.com", "wrong password!", id="wrong-password"),
        pytest.param("nobody@example.com", "wrong password!", id="both-wrong"),
    ],
)
async def test_login_user_with_bad_credentials_is_401(client, username, password):
    assert (await Auth(client, email="alice@example.com").register()).status_code == 201
    r = await client.post("/auth/token", data={"username": username, "password": password})
    assert_401(r, BAD_LOGIN)


async def test_login_user_unknown_email_and_wrong_password_answer_the_same(client):
    assert (await Auth(client, email="alice@example.com").register()).status_code == 201
    unknown = await client.post(
        "/auth/token", data={"username": "nobody@example.com", "password": DEFAULT_PASSWORD}
    )
    wrong = await client.post(
        "/auth/token", data={"username": "alice@example.com", "password": "wrong password!"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"] == "Bearer"


async def test_login_user_with_outdated_hash_parameters_rehashes_it(client):
    alice = Auth(client, email="alice@example.com")
    assert (await alice.register()).status_code == 201
    outdated = Argon2Hasher(memory_cost=16, time_cost=2, parallelism=1).hash(DEFAULT_PASSWORD)
    await User.filter(id=alice.id).update(password_hash=outdated)

    r = await alice.login()
    assert r.status_code == 200, r.text
    rehashed = (await User.get(id=alice.id)).password_hash
    assert rehashed != outdated
    assert rehashed.startswith("$argon2id$") and "m=16," not in rehashed
    assert (await alice.login()).status_code == 200


async def test_login_user_with_json_instead_of_form_is_422(client):
    assert (await Auth(client, email="alice@example.com").register()).status_code == 201
    r = await client.post(
        "/auth/token", json={"username": "alice@example.com", "password": DEFAULT_PASSWORD}
    )
    assert r.status_code == 422, r.text


# --- Refresh ---


async def test_refresh_token_returns_new_pair(client, auth):
    r = await refresh(client, auth.refresh_token)
    assert r.status_code == 200, r.text
    pair = r.json()
    assert_token_pair(pair)
    assert pair["refresh_token"] != auth.refresh_token
    r = await client.get("/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == auth.id


async def test_refresh_token_twice_past_the_grace_window_is_401(client, auth, session_clock):
    first = await refresh(client, auth.refresh_token)
    assert first.status_code == 200, first.text
    session_clock.advance(**past_reuse_grace())
    r = await refresh(client, auth.refresh_token)
    assert_401(r, BAD_REFRESH)


async def test_refresh_token_reuse_revokes_the_whole_family(client, auth, session_clock):
    spent = auth.refresh_token
    r = await refresh(client, spent)
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    r = await refresh(client, second)
    assert r.status_code == 200, r.text
    newest = r.json()["refresh_token"]

    session_clock.advance(**past_reuse_grace())
    reuse = await refresh(client, spent)
    assert reuse.status_code == 401, reuse.text

    r = await refresh(client, newest)
    assert r.status_code == 401, r.text
    assert r.json() == BAD_REFRESH


async def test_refresh_token_reuse_keeps_other_logins_of_the_user(client, auth, session_clock):
    other_login = Auth(client, email=auth.email)
    assert (await other_login.login()).status_code == 200
    spent = auth.refresh_token
    assert (await refresh(client, spent)).status_code == 200
    session_clock.advance(**past_reuse_grace())
    assert (await refresh(client, spent)).status_code == 401

    r = await refresh(client, other_login.refresh_token)
    assert r.status_code == 200, r.text
    assert_token_pair(r.json())


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "x" * 2000],
    ids=["garbage", "three-dots", "long"],
)
async def test_refresh_token_invalid_is_401(client, token):
    r = await refresh(client, token)
    assert_401(r, BAD_REFRESH)


async def test_refresh_token_missing_is_422(client):
    r = await client.post("/auth/refresh", json={})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)


# --- Logout ---


async def test_logout_user_revokes_refresh_token(client, auth):
    r = await client.post("/auth/logout", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await refresh(client, auth.refresh_token)
    assert r.status_code == 401, r.text
    assert r.json() == BAD_REFRESH


async def test_logout_user_revokes_the_refreshed_tokens_of_that_login(client, auth):
    r = await refresh(client, auth.refresh_token)
    assert r.status_code == 200, r.text
    current = r.json()["refresh_token"]
    r = await client.post("/auth/logout", json={"refresh_token": current})
    assert r.status_code == 204, r.text
    assert (await refresh(client, current)).status_code == 401


async def test_logout_user_keeps_other_logins(client, auth):
    other_login = Auth(client, email=auth.email)
    assert (await other_login.login()).status_code == 200
    r = await client.post("/auth/logout", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 204, r.text
    r = await refresh(client, other_login.refresh_token)
    assert r.status_code == 200, r.text


async def test_logout_user_with_invalid_token_is_401(client, auth):
    r = await client.post("/auth/logout", json={"refresh_token": "garbage"})
    assert r.status_code == 401, r.text
    assert r.json() == BAD_REFRESH


async def test_logout_user_twice_is_401(client, auth):
    r = await client.post("/auth/logout", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 204, r.text
    r = await client.post("/auth/logout", json={"refresh_token": auth.refresh_token})
    assert r.status_code == 401, r.text


# --- /users/me ---


async def test_read_me_returns_the_user(client, auth):
    r = await client.get("/users/me", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert r.json() == auth.user
    assert set(r.json()) == USER_FIELDS


async def test_read_me_without_token_is_401(client):
    r = await client.get("/users/me")
    assert_401(r)


@pytest.mark.parametrize("retention", [0.7, 0.85, 0.99])
async def test_update_me_desired_retention_in_range_is_200(client, auth, retention):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": retention})
    assert r.status_code == 200, r.text
    assert r.json() == {**auth.user, "desired_retention": retention}
    assert (await User.get(id=auth.id)).desired_retention == pytest.approx(retention)


@pytest.mark.parametrize("retention", [0.69, 1.0, 0, -0.9, "x", None])
async def test_update_me_desired_retention_out_of_range_is_422(client, auth, retention):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": retention})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert (await User.get(id=auth.id)).desired_retention == pytest.approx(0.9)


async def test_update_me_password_with_current_password_changes_it(client, auth):
    new_password = "a brand new passphrase"
    r = await client.patch(
        "/users/me",
        headers=auth.headers,
        json={"password": new_password, "current_password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert r.json() == auth.user
    assert "$argon2" not in r.text

    r = await Auth(client, email=auth.email, password=new_password).login()
    assert r.status_code == 200, r.text
    r = await Auth(client, email=auth.email, password=DEFAULT_PASSWORD).login()
    assert r.status_code == 401, r.text


async def test_update_me_password_revokes_all_refresh_tokens(client, auth):
    other_login = Auth(client, email=auth.email)
    assert (await other_login.login()).status_code == 200
    r = await client.patch(
        "/users/me",
        headers=auth.headers,
        json={"password": "a brand new passphrase", "current_password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 200, r.text
    for token in (auth.refresh_token, other_login.refresh_token):
        r = await refresh(client, token)
        assert r.status_code == 401, r.text
        assert r.json() == BAD_REFRESH


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            {"password": "a brand new passphrase", "current_password": "wrong password!"},
            id="wrong-current",
        ),
        pytest.param({"password": "a brand new passphrase"}, id="missing-current"),
        pytest.param(
            {"password": "a brand new passphrase", "current_password": None}, id="null-current"
        ),
    ],
)
async def test_update_me_password_without_correct_current_password_is_403(client, auth, payload):
    r = await client.patch("/users/me", headers=auth.headers, json=payload)
    assert r.status_code == 403, r.text
    assert r.json() == {"detail": "Current password is incorrect"}
    assert (await auth.login()).status_code == 200  # the old password still works
    assert (await refresh(client, auth.refresh_token)).status_code == 200


@pytest.mark.parametrize("new_password", ["x" * 7, "x" * 129])
async def test_update_me_password_with_invalid_new_password_is_422(client, auth, new_password):
    r = await client.patch(
        "/users/me",
        headers=auth.headers,
        json={"password": new_password, "current_password": DEFAULT_PASSWORD},
    )
    assert r.status_code == 422, r.text
    assert (await auth.login()).status_code == 200


async def test_update_me_without_token_is_401(client):
    r = await client.patch("/users/me", json={"desired_retention": 0.8})
    assert_401(r)


async def test_delete_me_is_204_and_the_token_stops_working(client, auth):
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await client.get("/users/me", headers=auth.headers)
    assert r.status_code == 401, r.text
    assert r.json() == BAD_CREDENTIALS
    assert not await User.filter(id=auth.id).exists()


async def test_delete_me_removes_the_users_words_only(client, auth, other_auth):
    await make_word(client, auth.headers, word="one")
    await make_word(client, auth.headers, word="two")
    kept = await make_word(client, other_auth.headers, word="one")

    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert [w.id for w in await Word.all()] == [kept["id"]]
    assert await User.all().count() == 1


async def test_delete_me_with_reviews_removes_them(client, auth):
    word = await make_word(client, auth.headers)
    await make_review(client, auth.headers, word["id"])

    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert await Word.all().count() == 0
    assert await Review.all().count() == 0


async def test_delete_me_revokes_refresh_tokens(client, auth):
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    r = await refresh(client, auth.refresh_token)
    assert r.status_code == 401, r.text


async def test_delete_me_lets_the_email_register_again(client, auth):
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    again = Auth(client, email=auth.email, password="another passphrase")
    r = await again.register()
    assert r.status_code == 201, r.text
    assert r.json()["email"] == auth.email
    assert (await again.login()).status_code == 200
    r = await client.get("/words", headers=again.headers)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0


async def test_delete_me_without_token_is_401(client, auth):
    r = await client.delete("/users/me")
    assert r.status_code == 401, r.text
    assert await User.filter(id=auth.id).exists()
