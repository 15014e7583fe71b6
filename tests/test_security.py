"""Tokens, headers and the operational surface: what an attacker or an operator sees."""

import base64
import json
import re
import time
import uuid

import pytest
from conftest import (
    ALLOWED_ORIGIN,
    BAD_REFRESH,
    Auth,
    access_claims,
    assert_401,
    make_token,
    make_word,
)
from tortoise import connections

from models import Word


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Access tokens ---


async def test_read_me_with_token_forged_by_the_test_key_is_200(client, auth):
    """Control: the forging helpers match the app, so the 401s below are not accidental."""
    r = await client.get("/users/me", headers=bearer(make_token(access_claims(auth.id))))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == auth.id


async def test_read_me_with_tampered_signature_is_401(client, auth):
    header, payload, signature = auth.access_token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    tampered = f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    assert_401(await client.get("/users/me", headers=bearer(tampered)))


async def test_read_me_with_tampered_payload_is_401(client, auth, other_auth):
    header, payload, signature = auth.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(other_auth.id)
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_401(await client.get("/users/me", headers=bearer(forged)))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) - 60, "iat": int(time.time()) - 960}, id="expired"),
        pytest.param({"exp": None}, id="no-exp"),
        pytest.param({"sub": None}, id="no-sub"),
        pytest.param({"sub": "not-a-number"}, id="sub-not-an-id"),
        pytest.param({"sub": "987654321"}, id="sub-unknown-user"),
        pytest.param({"sub": str(2**63)}, id="sub-huge"),
        pytest.param({"type": "refresh"}, id="type-refresh"),
        pytest.param({"type": None}, id="no-type"),
    ],
)
async def test_read_me_with_bad_claims_is_401(client, auth, overrides):
    token = make_token(access_claims(auth.id, **overrides))
    assert_401(await client.get("/users/me", headers=bearer(token)))


async def test_read_me_with_token_of_another_secret_is_401(client, auth):
    token = make_token(access_claims(auth.id), key="another-secret-" + "k" * 49)
    assert_401(await client.get("/users/me", headers=bearer(token)))


async def test_read_me_with_alg_none_token_is_401(client, auth):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(access_claims(auth.id)).encode())
    assert_401(await client.get("/users/me", headers=bearer(f"{header}.{payload}.")))


async def test_read_me_with_refresh_token_is_401(client, auth):
    assert_401(await client.get("/users/me", headers=bearer(auth.refresh_token)))


async def test_refresh_with_access_token_is_401(client, auth):
    r = await client.post("/auth/refresh", json={"refresh_token": auth.access_token})
    assert_401(r, BAD_REFRESH)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="unknown-jti"),
        pytest.param({"jti": "not-a-uuid"}, id="jti-not-a-uuid"),
        pytest.param({"fam": "not-a-uuid"}, id="fam-not-a-uuid"),
        pytest.param({"sub": str(2**63)}, id="sub-huge"),
    ],
)
async def test_refresh_with_validly_signed_unissued_token_is_401(client, auth, overrides):
    """A refresh token the server never issued is refused even with a good signature."""
    claims = access_claims(auth.id, **{"type": "refresh", "fam": str(uuid.uuid4()), **overrides})
    for path in ("/auth/refresh", "/auth/logout"):
        r = await client.post(path, json={"refresh_token": make_token(claims)})
        assert_401(r, BAD_REFRESH)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Basic YWxpY2U6c2VjcmV0",
        "Token abc",
        "garbage",
    ],
)
async def test_read_me_with_bad_authorization_header_is_401(client, auth, authorization):
    assert_401(await client.get("/users/me", headers={"Authorization": authorization}))


async def test_read_me_without_authorization_header_is_401(client):
    assert_401(await client.get("/users/me"))


async def test_read_me_with_access_token_of_deleted_user_is_401(client, auth):
    second_login = Auth(client, email=auth.email)
    assert (await second_login.login()).status_code == 200
    r = await client.delete("/users/me", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert_401(await client.get("/users/me", headers=second_login.headers))
    assert_401(await client.get("/words", headers=second_login.headers))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/me"),
        ("PATCH", "/users/me"),
        ("DELETE", "/users/me"),
        ("GET", "/words"),
        ("POST", "/words"),
        ("GET", "/words/1"),
        ("PATCH", "/words/1"),
        ("DELETE", "/words/1"),
        ("POST", "/words/1/reviews"),
        ("GET", "/words/1/reviews"),
        ("GET", "/words/export"),
        ("GET", "/study"),
        ("GET", "/stats"),
    ],
)
async def test_protected_endpoint_without_token_is_401(client, method, path):
    body = (
        {"word": "x", "definition": "y", "rating": "good"} if method in ("POST", "PATCH") else None
    )
    r = await client.request(method, path, json=body)
    assert_401(r)


# --- Secrets never leave the server ---


async def test_responses_never_contain_password_hashes(client, auth):
    word = await make_word(client, auth.headers)
    me = {"headers": auth.headers}
    taken_email = {"email": auth.email, "password": "whatever123"}
    requests = [
        ("GET", "/users/me", me, 200),
        ("PATCH", "/users/me", {**me, "json": {"desired_retention": 0.8}}, 200),
        ("GET", "/words", me, 200),
        ("GET", f"/words/{word['id']}", me, 200),
        ("POST", "/auth/refresh", {"json": {"refresh_token": auth.refresh_token}}, 200),
        ("POST", "/auth/register", {"json": taken_email}, 409),
        ("GET", "/openapi.json", {}, 200),
    ]
    for method, path, options, status in requests:
        r = await client.request(method, path, **options)
        assert r.status_code == status, (method, path, r.text)
        assert "password_hash" not in r.text
        assert "$argon2" not in r.text


# --- Request ids ---


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/no-such-route", 404),
        ("PUT", "/health", 405),
        ("POST", "/auth/register", 422),
        ("GET", "/users/me", 401),
    ],
)
async def test_response_has_request_id(client, method, path, status):
    r = await client.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == status, r.text
    assert r.headers.get("X-Request-ID")


async def test_response_request_ids_differ_between_requests(client):
    first = await client.get("/health")
    second = await client.get("/health")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["/health", "/no-such-route"])
async def test_response_echoes_sane_request_id(client, path):
    r = await client.get(path, headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize(
    "request_id",
    ["x" * 300, "<script>alert(1)</script>", "has spaces in it", "a;b=c", ""],
    ids=["too-long", "markup", "spaces", "punctuation", "empty"],
)
async def test_response_replaces_insane_request_id(client, request_id):
    r = await client.get("/health", headers={"X-Request-ID": request_id})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-ID"]
    assert r.headers["X-Request-ID"] != request_id


# --- Errors are JSON ---


async def test_read_unknown_route_is_404_json(client):
    r = await client.get("/no-such-route")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/health"), ("PUT", "/users/me"), ("PUT", "/words")]
)
async def test_request_with_wrong_method_is_405_json(client, method, path):
    r = await client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Method Not Allowed"}


async def test_create_word_with_body_over_limit_is_413(client, auth):
    body = {"word": "big", "definition": "d" * (1024 * 1024 + 1)}
    r = await client.post("/words", headers=auth.headers, json=body)
    assert r.status_code == 413, r.text
    assert "detail" in r.json()


async def test_create_word_with_streamed_body_over_limit_is_413(client, auth):
    """A body sent without Content-Length is cut off once it passes the limit."""

    async def chunks():
        yield b'{"word": "big", "definition": "'
        for _ in range(17):
            yield b"d" * 65536
        yield b'"}'

    headers = {**auth.headers, "Content-Type": "application/json"}
    r = await client.post("/words", headers=headers, content=chunks())
    assert r.status_code == 413, r.text
    assert "detail" in r.json()
    assert await Word.all().count() == 0


# --- CORS ---


async def test_cors_preflight_from_allowed_origin_is_allowed(client):
    r = await client.options(
        "/words",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "POST" in r.headers["access-control-allow-methods"]


async def test_cors_preflight_from_other_origin_is_not_allowed(client):
    r = await client.options(
        "/words",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


async def test_cors_simple_request_from_allowed_origin_gets_allow_origin(client):
    r = await client.get("/health", headers={"Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_cors_simple_request_from_other_origin_gets_no_allow_origin(client):
    r = await client.get("/health", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200, r.text
    assert "access-control-allow-origin" not in r.headers


# --- Operations ---


async def test_read_health_is_ok(client):
    r = await client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "database": "ok"}


async def test_read_health_when_database_is_down_is_503(client, monkeypatch):
    async def unreachable(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(connections.get("default"), "execute_query", unreachable)
    r = await client.get("/health")
    assert r.status_code == 503, r.text
    assert r.json() == {"status": "error", "database": "unavailable"}


async def test_read_words_when_database_drops_is_503(client, auth, monkeypatch):
    async def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(connections.get("default"), "execute_query", unreachable)
    r = await client.get("/words", headers=auth.headers)
    assert r.status_code == 503, r.text
    assert isinstance(r.json()["detail"], str)
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["X-Request-ID"]


async def test_read_words_when_something_unexpected_fails_is_bare_500(client, auth, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError('SELECT "password_hash" FROM "users" -- boom')

    monkeypatch.setattr(connections.get("default"), "execute_query", broken)
    r = await client.get("/words", headers=auth.headers, params={"q": "x"})
    assert r.status_code == 500, r.text
    assert r.json() == {"detail": "Internal Server Error"}
    assert r.headers["X-Request-ID"]


async def test_read_study_page_is_html(client):
    r = await client.get("/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")


async def test_read_openapi_lists_the_contract_paths(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200, r.text
    paths = r.json()["paths"]
    for path in (
        "/auth/register",
        "/auth/token",
        "/auth/refresh",
        "/auth/logout",
        "/users/me",
        "/words",
        "/health",
    ):
        assert path in paths, path
    assert any(re.fullmatch(r"/words/\{\w+\}", path) for path in paths), sorted(paths)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_read_docs_serves_its_assets_without_a_cdn(client, page):
    r = await client.get(page)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    for cdn in ("cdn.jsdelivr", "unpkg", "cdnjs", "fonts.googleapis"):
        assert cdn not in html, cdn
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assets += re.findall(r"""(?:url|spec-url)\s*:\s*["'](/[^"']+)["']""", html)
    local = [a for a in assets if a.startswith("/")]
    assert local, "the page loads no asset from the app itself"
    for asset in local:
        assert not asset.startswith("//"), asset
        asset_response = await client.get(asset)
        assert asset_response.status_code == 200, asset
