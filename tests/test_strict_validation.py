"""Numbers are numbers (API.md, "Text is Unicode..."): every JSON body accepts exactly what the
OpenAPI schema documents, with no coercion of strings, booleans or floats to integers."""

import pytest
from conftest import make_word

from models import Review, User, Word

NOT_INTEGERS = [
    pytest.param("4", id="string"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(4.0, id="float-4.0"),
    pytest.param(4.5, id="float-4.5"),
    pytest.param([4], id="list"),
]


@pytest.mark.parametrize("value", NOT_INTEGERS)
async def test_create_word_with_a_difficulty_that_is_not_an_integer_is_422(client, auth, value):
    r = await client.post(
        "/words", headers=auth.headers, json={"word": "w", "definition": "d", "difficulty": value}
    )

    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "difficulty"]
    assert await Word.all().count() == 0


@pytest.mark.parametrize("value", NOT_INTEGERS)
async def test_update_word_with_a_difficulty_that_is_not_an_integer_is_422(client, auth, value):
    word = await make_word(client, auth.headers, difficulty=2)

    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={"difficulty": value})

    assert r.status_code == 422, r.text
    assert (await Word.get(id=word["id"])).difficulty == 2


@pytest.mark.parametrize("value", [*NOT_INTEGERS, pytest.param("1500", id="numeric-string")])
async def test_review_word_with_a_duration_that_is_not_an_integer_is_422(client, auth, value):
    word = await make_word(client, auth.headers)

    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": "good", "duration_ms": value},
    )

    assert r.status_code == 422, r.text
    assert await Review.all().count() == 0


async def test_review_word_with_rating_and_integer_duration_is_201(client, auth):
    word = await make_word(client, auth.headers)

    r = await client.post(
        f"/words/{word['id']}/reviews",
        headers=auth.headers,
        json={"rating": "good", "duration_ms": 1500},
    )

    assert r.status_code == 201, r.text
    assert r.json()["review"]["duration_ms"] == 1500


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"word": 5, "definition": "d"}, id="word-number"),
        pytest.param({"word": "w", "definition": True}, id="definition-boolean"),
        pytest.param({"word": "w", "definition": "d", "tags": "a b"}, id="tags-string"),
        pytest.param({"word": "w", "definition": "d", "language": 1}, id="language-number"),
        pytest.param({"word": "w", "definition": "d", "language": "   "}, id="language-spaces"),
    ],
)
async def test_create_word_with_a_value_of_another_type_is_422(client, auth, body):
    r = await client.post("/words", headers=auth.headers, json=body)

    assert r.status_code == 422, r.text
    assert await Word.all().count() == 0


@pytest.mark.parametrize(
    "value", [pytest.param("0.8", id="string"), pytest.param(True, id="true"), [0.8]]
)
async def test_update_me_with_a_retention_that_is_not_a_number_is_422(client, auth, value):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": value})

    assert r.status_code == 422, r.text
    assert (await User.get(id=auth.id)).desired_retention == 0.9


async def test_update_me_with_a_retention_of_integer_type_within_range_is_judged_by_range(
    client, auth
):
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": 1})

    assert r.status_code == 422, r.text  # a JSON number, but above 0.99
    r = await client.patch("/users/me", headers=auth.headers, json={"desired_retention": 0.8})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "a@example.com", "password": 12345678}, id="password-number"),
        pytest.param({"email": ["a@example.com"], "password": "long enough"}, id="email-list"),
    ],
)
async def test_register_with_values_of_another_type_is_422(client, body):
    r = await client.post("/auth/register", json=body)

    assert r.status_code == 422, r.text
    assert await User.all().count() == 0


async def test_refresh_with_a_token_that_is_not_a_string_is_422(client):
    r = await client.post("/auth/refresh", json={"refresh_token": 12345})

    assert r.status_code == 422, r.text
