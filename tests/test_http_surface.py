"""HTTP surface (issue 15): HEAD on every GET route, 415 for a JSON endpoint sent another
Content-Type, and /metrics behind METRICS_TOKEN in production; all of it in the OpenAPI schema."""

import asyncio
import json
import secrets

import httpx
import pytest
from conftest import make_word
from pydantic import SecretStr, ValidationError

import vocab
from models import Review, User, Word

UNSUPPORTED = {"detail": "Content-Type must be application/json"}
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(24)
#: Headers that differ between any two responses.
PER_RESPONSE = {"x-request-id", "date"}


def comparable(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in PER_RESPONSE}


async def raw_exchange(method: str, path: str, headers: list | None = None) -> list[dict]:
    """Call the ASGI app directly and return every message it sends, so that nothing a client
    library strips on its own (a HEAD body) goes unseen."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 40000),
        "server": ("test", 80),
        "state": {},
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await vocab.app(scope, receive, send)
    return sent


# --- HEAD ---


@pytest.fixture
async def paths(client, auth) -> dict[str, str]:
    """Every GET path of the schema with real ids filled in, plus the page and its files."""
    word = await make_word(client, auth.headers)
    r = await client.post(
        f"/words/{word['id']}/reviews", headers=auth.headers, json={"rating": "good"}
    )
    assert r.status_code == 201, r.text
    files = {"file": ("words.csv", b"Fika,a coffee break\n", "text/csv")}
    job = await client.post("/imports", headers=auth.headers, files=files)
    assert job.status_code == 202, job.text
    while job.json()["status"] not in ("done", "failed"):  # it must not change between requests
        await asyncio.sleep(0.01)
        job = await client.get(f"/imports/{job.json()['id']}", headers=auth.headers)
    ids = {"{word_id}": str(word["id"]), "{import_id}": str(job.json()["id"])}
    schema = (await client.get("/openapi.json")).json()
    found = {}
    for path, item in schema["paths"].items():
        if "get" in item:
            found[path] = path
            for name, value in ids.items():
                found[path] = found[path].replace(name, value)
    return {**found, "/": "/", "/static/app.js": "/static/app.js", "/docs": "/docs"}


async def test_head_every_get_route_answers_its_status_and_headers_without_a_body(
    client, auth, paths, monkeypatch
):
    # One instant for both requests: a word's retrievability moves with the clock.
    now = vocab.utcnow()
    monkeypatch.setattr(vocab, "utcnow", lambda: now)
    assert {"/health", "/metrics", "/words", "/words/{word_id}", "/words/export"} <= set(paths)
    for template, path in paths.items():
        get = await client.get(path, headers=auth.headers)
        head = await client.head(path, headers=auth.headers)
        assert get.status_code == 200, (template, get.text)
        assert head.status_code == get.status_code, template
        if template == "/metrics":  # counting the GET itself changed the figures' length
            get.headers["content-length"] = head.headers["content-length"]
        assert comparable(head.headers) == comparable(get.headers), template
        assert head.content == b"", template


@pytest.mark.parametrize(
    ("path", "status"),
    [("/health", 200), ("/users/me", 401), ("/words/999999", 401), ("/nowhere", 404)],
)
async def test_head_sends_no_body_bytes_at_all(client, path, status):
    messages = await raw_exchange("HEAD", path)
    start = messages[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == status
    declared = dict(start["headers"])[b"content-length"]
    assert int(declared) > 0  # the length the GET's body has
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert bodies and all(m.get("body", b"") == b"" for m in bodies)
    get = await raw_exchange("GET", path)
    assert dict(get[0]["headers"])[b"content-length"] == declared


async def test_head_without_token_is_401_like_get(client):
    r = await client.head("/users/me")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.content == b""


async def test_head_of_a_post_only_route_is_405(client):
    r = await client.head("/auth/token")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"


async def test_head_changes_nothing_and_is_logged_and_counted_as_head(client, auth):
    word = await make_word(client, auth.headers)
    r = await client.head(f"/words/{word['id']}/reviews", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert await Review.all().count() == 0
    assert await Word.all().count() == 1
    metrics = (await client.get("/metrics")).text
    assert 'method="HEAD",route="/words/{word_id}/reviews",status="200"' in metrics


async def test_openapi_lists_head_beside_every_get(client):
    schema = (await client.get("/openapi.json")).json()
    gets = {path for path, item in schema["paths"].items() if "get" in item}
    heads = {path for path, item in schema["paths"].items() if "head" in item}
    assert gets == heads
    for path in heads:
        get, head = schema["paths"][path]["get"], schema["paths"][path]["head"]
        assert set(head["responses"]) == set(get["responses"])
        assert all("content" not in response for response in head["responses"].values())
        assert head["operationId"] != get["operationId"]
        assert head.get("parameters") == get.get("parameters")


# --- 415 for a JSON endpoint sent another Content-Type ---

JSON_ROUTES = [
    ("POST", "/auth/register", {"email": "new@example.com", "password": "long enough"}),
    ("POST", "/auth/refresh", {"refresh_token": "x"}),
    ("POST", "/auth/logout", {"refresh_token": "x"}),
    ("PATCH", "/users/me", {"desired_retention": 0.8}),
    ("POST", "/words", {"word": "Haus", "definition": "house"}),
    ("PATCH", "/words/{word_id}", {"definition": "a home"}),
    ("POST", "/words/{word_id}/reviews", {"rating": "good"}),
]


@pytest.mark.parametrize(("method", "path", "body"), JSON_ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        None,  # a body without any Content-Type
    ],
)
async def test_json_route_with_other_content_type_is_415_and_changes_nothing(
    client, auth, method, path, body, content_type
):
    word = await make_word(client, auth.headers)
    before = (await Word.get(id=word["id"])).definition
    headers = {**auth.headers, **({"Content-Type": content_type} if content_type else {})}
    r = await client.request(
        method, path.format(word_id=word["id"]), content=json.dumps(body), headers=headers
    )
    assert r.status_code == 415, r.text
    assert r.json() == UNSUPPORTED
    assert await User.all().count() == 1
    assert await Word.all().count() == 1
    assert (await Word.get(id=word["id"])).definition == before
    assert await Review.all().count() == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_create_word_with_json_content_type_variants_is_201(client, auth, content_type):
    r = await client.post(
        "/words",
        content=b'{"word": "Haus", "definition": "house"}',
        headers={**auth.headers, "Content-Type": content_type},
    )
    assert r.status_code == 201, r.text
    assert await Word.all().count() == 1


async def test_json_route_without_body_or_content_type_is_422(client):
    r = await client.post("/auth/refresh")
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)


async def test_form_and_multipart_routes_keep_their_own_content_types(client, auth):
    r = await client.post(
        "/auth/token", json={"username": "alice@example.com", "password": "whatever!"}
    )
    assert r.status_code == 422, r.text  # the sign-in form, sent as JSON: as before
    r = await client.post(
        "/words/import",
        headers=auth.headers,
        files={"file": ("words.csv", b"word,definition\nHaus,house\n", "text/csv")},
    )
    assert r.status_code == 200, r.text


async def test_openapi_lists_415_on_exactly_the_json_routes(client):
    schema = (await client.get("/openapi.json")).json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            takes_json = "application/json" in operation.get("requestBody", {}).get("content", {})
            assert ("415" in operation["responses"]) == takes_json, (method, path)
    listed = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "415" in operation["responses"]
    }
    assert listed == {(method, path) for method, path, _ in JSON_ROUTES}


# --- /metrics ---


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(vocab.settings, "ENVIRONMENT", "production")
    return monkeypatch


async def test_read_metrics_in_development_is_open(client, monkeypatch):
    monkeypatch.setattr(vocab.settings, "METRICS_TOKEN", SecretStr(METRICS_TOKEN))
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert "vocab_http_requests_total" in r.text


async def test_read_metrics_in_production_without_metrics_token_is_404(client, production):
    for headers in ({}, {"Authorization": f"Bearer {METRICS_TOKEN}"}):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 404, r.text
        assert r.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer wrong-token",
        f"Bearer {METRICS_TOKEN}x",
        f"Basic {METRICS_TOKEN}",
        f"Bearer {METRICS_TOKEN[:-1]}é",
    ],
    ids=["missing", "empty", "wrong", "longer", "basic", "non-ascii"],
)
async def test_read_metrics_in_production_without_the_token_is_401(
    client, production, authorization
):
    production.setattr(vocab.settings, "METRICS_TOKEN", SecretStr(METRICS_TOKEN))
    headers = {"Authorization": authorization.encode()} if authorization else {}
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Invalid metrics token"}
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "vocab_http_requests_total" not in r.text


async def test_read_metrics_in_production_with_the_token_is_200(client, production):
    production.setattr(vocab.settings, "METRICS_TOKEN", SecretStr(METRICS_TOKEN))
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "vocab_http_requests_total" in r.text
    head = await client.head("/metrics", headers=headers)
    assert head.status_code == 200
    assert head.content == b""
    assert (await client.head("/metrics")).status_code == 401


async def test_openapi_documents_the_metrics_token(client):
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/metrics"]["get"]
    assert {"200", "401", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"MetricsToken": []}]
    assert schema["components"]["securitySchemes"]["MetricsToken"]["scheme"] == "bearer"


def test_settings_production_refuses_a_short_metrics_token():
    production = {
        "_env_file": None,
        "ENVIRONMENT": "production",
        "SECRET_KEY": "Zq7" + secrets.token_urlsafe(48),
        "ARGON2_MEMORY_KIB": 19456,
        "ARGON2_TIME_COST": 2,
    }
    with pytest.raises(ValidationError, match="METRICS_TOKEN must be at least 16"):
        vocab.Settings(**production, METRICS_TOKEN="short")
    settings = vocab.Settings(**production, METRICS_TOKEN=METRICS_TOKEN)
    assert settings.METRICS_TOKEN.get_secret_value() == METRICS_TOKEN
