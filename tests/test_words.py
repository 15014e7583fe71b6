"""Words: create, list, read, update, delete, as the OpenAPI schema (`/docs`) documents them."""

from datetime import timedelta

import pytest
from conftest import WORD_NOT_FOUND, make_review, make_word, ts
from tortoise import timezone

from models import Card, Word

WORD_FIELDS = {
    "id", "word", "definition", "example", "language", "difficulty", "tags",
    "created_at", "updated_at", "reverse", "suspended", "schedule", "reverse_schedule",
}  # fmt: skip
SCHEDULE_FIELDS = {
    "state", "due_at", "stability", "difficulty", "retrievability", "reps", "lapses",
    "last_reviewed_at",
}  # fmt: skip
DUPLICATE = {"detail": "You already have this word in this language"}
SORTS = ["created_at", "-created_at", "word", "-word", "due_at"]


async def list_words(client, headers, **params) -> dict:
    r = await client.get("/words", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


# --- Create ---


async def test_create_word_returns_201_with_location_and_defaults(client, auth):
    r = await client.post(
        "/words",
        headers=auth.headers,
        json={"word": "  serendipity \t", "definition": "a happy accident"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/words/{body['id']}"
    assert set(body) == WORD_FIELDS
    assert set(body["schedule"]) == SCHEDULE_FIELDS
    assert {k: body[k] for k in ("word", "definition", "language", "difficulty", "tags")} == {
        "word": "serendipity",
        "definition": "a happy accident",
        "language": None,
        "difficulty": 3,
        "tags": [],
    }
    assert body["example"] is None
    created_at = ts(body["created_at"])
    assert ts(body["updated_at"]) >= created_at
    schedule = body["schedule"]
    assert schedule["state"] == "new"
    assert abs((ts(schedule["due_at"]) - created_at).total_seconds()) < 5
    assert schedule["reps"] == 0
    assert schedule["lapses"] == 0
    assert schedule["last_reviewed_at"] is None

    stored = await Word.get(id=body["id"])
    assert (stored.word, stored.definition, stored.difficulty) == (
        "serendipity",
        "a happy accident",
        3,
    )


async def test_create_word_with_every_field_returns_them(client, auth):
    payload = {
        "word": "Haus",
        "definition": "house",
        "example": "Das Haus ist groß.",
        "language": "de",
        "difficulty": 5,
        "tags": ["noun", "a1"],
    }
    r = await client.post("/words", headers=auth.headers, json=payload)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in payload} == payload
    r = await client.get(f"/words/{r.json()['id']}", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in payload} == payload


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"example": None}, {"example": None}, id="example-null"),
        pytest.param({"example": ""}, {"example": None}, id="example-empty"),
        pytest.param({"language": None}, {"language": None}, id="language-null"),
        pytest.param({"tags": []}, {"tags": []}, id="tags-empty"),
    ],
)
async def test_create_word_with_optional_fields_empty_is_201(client, auth, overrides, expected):
    payload = {"word": "plain", "definition": "nothing else", **overrides}
    r = await client.post("/words", headers=auth.headers, json=payload)
    assert r.status_code == 201, r.text
    assert {name: r.json()[name] for name in expected} == expected
    assert await Word.all().count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"word": "w" * 100}, id="word-100"),
        pytest.param({"definition": "d" * 1000}, id="definition-1000"),
        pytest.param({"example": "e" * 1000}, id="example-1000"),
        pytest.param({"language": "zh-Hant-TW-abcde"}, id="language-16"),
        pytest.param({"language": "pt-BR"}, id="language-pt-BR"),
        pytest.param({"difficulty": 1}, id="difficulty-1"),
        pytest.param({"difficulty": 5}, id="difficulty-5"),
        pytest.param({"tags": [f"t{i}" for i in range(20)]}, id="tags-20"),
        pytest.param({"tags": ["t" * 32]}, id="tag-32"),
    ],
)
async def test_create_word_at_limits_is_201(client, auth, overrides):
    payload = {"word": "limit", "definition": "at the limit", **overrides}
    r = await client.post("/words", headers=auth.headers, json=payload)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in overrides} == overrides
    assert await Word.all().count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"word": "", "definition": "d"}, id="word-empty"),
        pytest.param({"word": "   ", "definition": "d"}, id="word-whitespace"),
        pytest.param({"word": "w" * 101, "definition": "d"}, id="word-101"),
        pytest.param({"word": None, "definition": "d"}, id="word-null"),
        pytest.param({"word": 5, "definition": "d"}, id="word-not-a-string"),
        pytest.param({"definition": "d"}, id="word-missing"),
        pytest.param({"word": "w", "definition": ""}, id="definition-empty"),
        pytest.param({"word": "w", "definition": "d" * 1001}, id="definition-1001"),
        pytest.param({"word": "w"}, id="definition-missing"),
        pytest.param({"word": "w", "definition": "d", "example": "e" * 1001}, id="example-1001"),
        pytest.param(
            {"word": "w", "definition": "d", "language": "zh-Hant-TW-abcdef"}, id="language-17"
        ),
        pytest.param({"word": "w", "definition": "d", "difficulty": 0}, id="difficulty-0"),
        pytest.param({"word": "w", "definition": "d", "difficulty": 6}, id="difficulty-6"),
        pytest.param({"word": "w", "definition": "d", "difficulty": "x"}, id="difficulty-x"),
        pytest.param({"word": "w", "definition": "d", "difficulty": 2.5}, id="difficulty-2.5"),
        pytest.param(
            {"word": "w", "definition": "d", "tags": [f"t{i}" for i in range(21)]}, id="tags-21"
        ),
        pytest.param({"word": "w", "definition": "d", "tags": ["t" * 33]}, id="tag-33"),
        pytest.param({"word": "w", "definition": "d", "tags": ["two words"]}, id="tag-space"),
        pytest.param({"word": "w", "definition": "d", "tags": "a,b"}, id="tags-string"),
        pytest.param({"word": "w", "definition": "d", "tags": [1]}, id="tag-not-a-string"),
        pytest.param([], id="body-a-list"),
    ],
)
async def test_create_word_with_invalid_payload_is_422(client, auth, payload):
    r = await client.post("/words", headers=auth.headers, json=payload)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert await Word.all().count() == 0


async def test_create_word_with_unparseable_json_is_422(client, auth):
    r = await client.post(
        "/words",
        headers={**auth.headers, "Content-Type": "application/json"},
        content=b'{"word": "w", "definition": ',
    )
    assert r.status_code == 422, r.text
    assert await Word.all().count() == 0


# --- Duplicates ---


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(("Hello", "en"), ("hello", "en"), id="case"),
        pytest.param(("hello", "en"), ("  HELLO ", "en"), id="trimmed"),
        pytest.param(("hello", None), ("Hello", None), id="no-language"),
        # Language codes are case-insensitive (BCP 47), as the `language` filter treats them.
        pytest.param(("hello", "en"), ("hello", "EN"), id="language-case"),
        pytest.param(("olá", "pt-BR"), ("OLÁ", "pt-br"), id="region-case"),
    ],
)
async def test_create_word_duplicate_in_same_language_is_409(client, auth, first, second):
    await make_word(client, auth.headers, word=first[0], language=first[1])
    r = await client.post(
        "/words",
        headers=auth.headers,
        json={"word": second[0], "language": second[1], "definition": "again"},
    )
    assert r.status_code == 409, r.text
    assert r.json() == DUPLICATE
    assert await Word.all().count() == 1


async def test_create_word_without_language_twice_is_409(client, auth):
    await make_word(client, auth.headers, word="hello")
    r = await client.post("/words", headers=auth.headers, json={"word": "HELLO", "definition": "d"})
    assert r.status_code == 409, r.text
    assert r.json() == DUPLICATE
    assert await Word.all().count() == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("en", "de", id="two-languages"),
        pytest.param(None, "en", id="no-language-then-en"),
        pytest.param("en", None, id="en-then-no-language"),
    ],
)
async def test_create_word_same_word_in_another_language_is_201(client, auth, first, second):
    await make_word(client, auth.headers, word="hello", language=first)
    await make_word(client, auth.headers, word="hello", language=second)
    assert await Word.all().count() == 2


async def test_create_word_that_another_user_has_is_201(client, auth, other_auth):
    await make_word(client, auth.headers, word="hello", language="en")
    await make_word(client, other_auth.headers, word="hello", language="en")
    assert await Word.all().count() == 2


async def test_update_word_into_a_duplicate_is_409(client, auth):
    await make_word(client, auth.headers, word="hello", language="en")
    other = await make_word(client, auth.headers, word="goodbye", language="en")
    r = await client.patch(f"/words/{other['id']}", headers=auth.headers, json={"word": "HELLO"})
    assert r.status_code == 409, r.text
    assert r.json() == DUPLICATE
    assert (await Word.get(id=other["id"])).word == "goodbye"


async def test_update_word_language_into_a_duplicate_is_409(client, auth):
    await make_word(client, auth.headers, word="hello")
    english = await make_word(client, auth.headers, word="hello", language="en")
    r = await client.patch(f"/words/{english['id']}", headers=auth.headers, json={"language": None})
    assert r.status_code == 409, r.text
    assert r.json() == DUPLICATE
    r = await client.get(f"/words/{english['id']}", headers=auth.headers)
    assert r.json()["language"] == "en"


async def test_update_word_case_of_itself_is_200(client, auth):
    word = await make_word(client, auth.headers, word="hello", language="en")
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={"word": "Hello"})
    assert r.status_code == 200, r.text
    assert r.json()["word"] == "Hello"


# --- List ---


async def test_list_words_empty(client, auth):
    assert await list_words(client, auth.headers) == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }


async def test_list_words_newest_first_by_default(client, auth):
    ids = [(await make_word(client, auth.headers, word=w))["id"] for w in ("one", "two", "three")]
    page = await list_words(client, auth.headers)
    assert [item["id"] for item in page["items"]] == ids[::-1]
    assert page["total"] == 3
    first = await client.get(f"/words/{ids[0]}", headers=auth.headers)
    assert page["items"][-1] == first.json()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", ["banana", "apple", "cherry"]),
        ("-created_at", ["cherry", "apple", "banana"]),
        ("word", ["apple", "banana", "cherry"]),
        ("-word", ["cherry", "banana", "apple"]),
    ],
)
async def test_list_words_sorted(client, auth, sort, expected):
    for w in ("banana", "apple", "cherry"):
        await make_word(client, auth.headers, word=w)
    page = await list_words(client, auth.headers, sort=sort)
    assert [item["word"] for item in page["items"]] == expected


async def postpone(word_id: int, days: float) -> None:
    """Move a word's due date (its forward card's), as a review would, without going through
    /reviews."""
    due_at = timezone.now() + timedelta(days=days)
    await Card.filter(word_id=word_id, direction="forward").update(state="review", due_at=due_at)


async def test_list_words_sorted_by_due_at(client, auth):
    learnt = await make_word(client, auth.headers, word="learnt")
    await make_word(client, auth.headers, word="fresh")
    await postpone(learnt["id"], days=3)
    page = await list_words(client, auth.headers, sort="due_at")
    assert [item["word"] for item in page["items"]] == ["fresh", "learnt"]
    due = [ts(item["schedule"]["due_at"]) for item in page["items"]]
    assert due == sorted(due)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "definition"},
        {"sort": "id; DROP TABLE word"},
        {"sort": "+word"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"offset": -1},
        {"due": "maybe"},
        {"difficulty": "x"},
    ],
    ids=lambda params: "-".join(f"{k}={v}" for k, v in params.items()),
)
async def test_list_words_with_invalid_query_is_422(client, auth, params):
    r = await client.get("/words", headers=auth.headers, params=params)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)


async def test_list_words_pages_with_limit_and_offset(client, auth):
    for w in ("a", "b", "c"):
        await make_word(client, auth.headers, word=w)
    page = await list_words(client, auth.headers, limit=2, offset=2, sort="word")
    assert [item["word"] for item in page["items"]] == ["c"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 2)
    page = await list_words(client, auth.headers, limit=100, offset=10)
    assert (page["items"], page["total"]) == ([], 3)


@pytest.mark.parametrize("sort", SORTS)
async def test_list_words_paging_never_repeats_or_skips(client, auth, sort):
    # Ties on word (the same word in several languages) and near-ties on created_at/due_at.
    for word, language in [
        ("same", "en"), ("same", "de"), ("same", "fr"), ("same", None),
        ("alpha", None), ("beta", "en"), ("gamma", "en"),
    ]:  # fmt: skip
        await make_word(client, auth.headers, word=word, language=language)
    everything = await list_words(client, auth.headers, sort=sort, limit=100)
    assert everything["total"] == 7

    paged = []
    for offset in range(0, 8, 2):
        page = await list_words(client, auth.headers, sort=sort, limit=2, offset=offset)
        assert page["total"] == 7
        paged += [item["id"] for item in page["items"]]
    assert paged == [item["id"] for item in everything["items"]]
    assert len(set(paged)) == 7


async def test_list_words_filtered_by_q_matches_word_or_definition(client, auth):
    await make_word(client, auth.headers, word="Apple", definition="a red fruit")
    await make_word(client, auth.headers, word="banana", definition="a yellow FRUIT")
    await make_word(client, auth.headers, word="carrot", definition="an orange vegetable")
    page = await list_words(client, auth.headers, q="fruit", sort="word")
    assert [item["word"] for item in page["items"]] == ["Apple", "banana"]
    assert page["total"] == 2
    page = await list_words(client, auth.headers, q="aPP")
    assert [item["word"] for item in page["items"]] == ["Apple"]
    page = await list_words(client, auth.headers, q="%")
    assert page["total"] == 0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"difficulty": 5}, ["hard"]),
        ({"tag": "noun"}, ["haus", "hard"]),
        ({"tag": "nou"}, []),
        ({"language": "de"}, ["haus"]),
        ({"language": "de", "tag": "verb"}, []),
        ({"difficulty": 1, "tag": "verb"}, ["easy"]),
    ],
    ids=lambda value: str(value),
)
async def test_list_words_filtered(client, auth, params, expected):
    await make_word(client, auth.headers, word="haus", language="de", tags=["noun"])
    await make_word(client, auth.headers, word="hard", difficulty=5, tags=["adjective", "noun"])
    await make_word(client, auth.headers, word="easy", difficulty=1, tags=["verb"])
    page = await list_words(client, auth.headers, sort="-word", **params)
    assert [item["word"] for item in page["items"]] == expected
    assert page["total"] == len(expected)


async def test_list_words_due_only_shows_words_due_now(client, auth):
    learnt = await make_word(client, auth.headers, word="learnt")
    fresh = await make_word(client, auth.headers, word="fresh")
    await postpone(learnt["id"], days=3)
    page = await list_words(client, auth.headers, due="true")
    assert [item["id"] for item in page["items"]] == [fresh["id"]]
    assert page["total"] == 1
    assert (await list_words(client, auth.headers))["total"] == 2


async def test_list_words_never_shows_another_users_words(client, auth, other_auth):
    mine = await make_word(client, auth.headers, word="mine")
    await make_word(client, other_auth.headers, word="theirs")
    page = await list_words(client, auth.headers)
    assert [item["id"] for item in page["items"]] == [mine["id"]]
    assert page["total"] == 1
    assert (await list_words(client, auth.headers, q="theirs"))["total"] == 0


# --- Read ---


async def test_read_word_returns_it(client, auth):
    word = await make_word(client, auth.headers)
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert r.json() == word


async def test_read_word_missing_is_404(client, auth):
    r = await client.get("/words/987654", headers=auth.headers)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"definition": "mine now"}), ("DELETE", None)]
)
async def test_access_word_of_other_user_is_404(client, auth, other_auth, method, body):
    theirs = await make_word(client, other_auth.headers, word="theirs", definition="original")
    r = await client.request(method, f"/words/{theirs['id']}", headers=auth.headers, json=body)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND
    stored = await Word.get(id=theirs["id"])
    assert (stored.word, stored.definition) == ("theirs", "original")
    r = await client.get(f"/words/{theirs['id']}", headers=other_auth.headers)
    assert r.json() == theirs


@pytest.mark.parametrize("word_id", ["abc", "1.5", "1e3", "%20", "-1"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_access_word_with_id_not_all_digits_is_404(client, auth, method, word_id):
    # The path only takes digits, so no route matches: the app's plain 404, not a 422.
    word = await make_word(client, auth.headers)
    body = {"definition": "x"} if method == "PATCH" else None
    r = await client.request(method, f"/words/{word_id}", headers=auth.headers, json=body)
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "Not Found"}
    assert [(w.id, w.definition) for w in await Word.all()] == [(word["id"], word["definition"])]


@pytest.mark.parametrize("word_id", [2**63, 2**31, 0, 10**30])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_access_word_with_out_of_range_id_is_404(client, auth, method, word_id):
    # Ids beyond the column's range name no word: 404 like a missing one, never a database error.
    word = await make_word(client, auth.headers)
    body = {"definition": "x"} if method == "PATCH" else None
    r = await client.request(method, f"/words/{word_id}", headers=auth.headers, json=body)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND
    assert [(w.id, w.definition) for w in await Word.all()] == [(word["id"], word["definition"])]


# --- Update ---


async def test_update_word_changes_only_the_given_fields(client, auth):
    word = await make_word(
        client, auth.headers, word="Haus", example="Das Haus.", language="de", tags=["noun"]
    )
    r = await client.patch(
        f"/words/{word['id']}", headers=auth.headers, json={"definition": "home"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert {**body, "updated_at": None} == {**word, "definition": "home", "updated_at": None}
    assert ts(body["updated_at"]) >= ts(word["updated_at"])
    stored = await Word.get(id=word["id"])
    assert (stored.word, stored.definition, stored.example) == ("Haus", "home", "Das Haus.")


async def test_update_word_every_field(client, auth):
    word = await make_word(client, auth.headers)
    changes = {
        "word": "Fernweh",
        "definition": "longing for far-off places",
        "example": "Ich habe Fernweh.",
        "language": "de",
        "difficulty": 4,
        "tags": ["noun", "feeling"],
    }
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json=changes)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in changes} == changes
    assert r.json()["schedule"] == word["schedule"]
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert {k: r.json()[k] for k in changes} == changes


async def test_update_word_trims_the_word(client, auth):
    word = await make_word(client, auth.headers)
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={"word": "  new  "})
    assert r.status_code == 200, r.text
    assert r.json()["word"] == "new"
    assert (await Word.get(id=word["id"])).word == "new"


async def test_update_word_language_to_null_clears_it(client, auth):
    word = await make_word(client, auth.headers, language="en")
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={"language": None})
    assert r.status_code == 200, r.text
    assert r.json()["language"] is None


async def test_update_word_with_empty_body_changes_nothing(client, auth):
    word = await make_word(client, auth.headers)
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={})
    assert r.status_code == 200, r.text
    assert {**r.json(), "updated_at": None} == {**word, "updated_at": None}


async def test_update_word_schedule_is_not_writable(client, auth):
    word = await make_word(client, auth.headers)
    forged = {
        **word["schedule"],
        "state": "review",
        "reps": 42,
        "due_at": "2999-01-01T00:00:00+00:00",
    }
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json={"schedule": forged})
    assert r.status_code == 422, r.text
    assert [error["loc"] for error in r.json()["detail"]] == [["body", "schedule"]]
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.json()["schedule"] == word["schedule"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"word": None}, id="word-null"),
        pytest.param({"word": ""}, id="word-empty"),
        pytest.param({"word": "   "}, id="word-whitespace"),
        pytest.param({"word": "w" * 101}, id="word-101"),
        pytest.param({"definition": None}, id="definition-null"),
        pytest.param({"definition": ""}, id="definition-empty"),
        pytest.param({"definition": "d" * 1001}, id="definition-1001"),
        pytest.param({"example": "e" * 1001}, id="example-1001"),
        pytest.param({"language": "zh-Hant-TW-abcdef"}, id="language-17"),
        pytest.param({"difficulty": None}, id="difficulty-null"),
        pytest.param({"difficulty": 0}, id="difficulty-0"),
        pytest.param({"difficulty": 6}, id="difficulty-6"),
        pytest.param({"tags": ["two words"]}, id="tag-space"),
        pytest.param({"tags": [f"t{i}" for i in range(21)]}, id="tags-21"),
        pytest.param({"tags": "noun"}, id="tags-string"),
    ],
)
async def test_update_word_with_invalid_payload_is_422(client, auth, payload):
    word = await make_word(client, auth.headers, word="stable", definition="unchanged")
    r = await client.patch(f"/words/{word['id']}", headers=auth.headers, json=payload)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.json() == word


async def test_update_word_missing_is_404(client, auth):
    r = await client.patch("/words/987654", headers=auth.headers, json={"definition": "x"})
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND


# --- Delete ---


async def test_delete_word_is_204_and_removes_it(client, auth):
    word = await make_word(client, auth.headers)
    kept = await make_word(client, auth.headers, word="kept")
    r = await client.delete(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 404, r.text
    assert [w.id for w in await Word.all()] == [kept["id"]]


async def test_delete_word_twice_is_404(client, auth):
    word = await make_word(client, auth.headers)
    assert (await client.delete(f"/words/{word['id']}", headers=auth.headers)).status_code == 204
    r = await client.delete(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND


async def test_delete_word_with_reviews_is_204(client, auth):
    word = await make_word(client, auth.headers)
    await make_review(client, auth.headers, word["id"])
    r = await client.delete(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 204, r.text
    assert await Word.all().count() == 0


async def test_create_word_again_after_delete_is_201(client, auth):
    word = await make_word(client, auth.headers, word="again", language="en")
    assert (await client.delete(f"/words/{word['id']}", headers=auth.headers)).status_code == 204
    await make_word(client, auth.headers, word="again", language="en")


async def test_list_words_total_follows_creates_deletes_and_imports(client, auth, other_auth):
    # limit=1, so the total cannot come from the page itself.
    async def total() -> int:
        r = await client.get("/words", params={"limit": 1}, headers=auth.headers)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    first = await make_word(client, auth.headers, word="eins")
    await make_review(client, auth.headers, first["id"])  # with its reviews, still one word
    await make_word(client, auth.headers, word="zwei")
    await make_word(client, other_auth.headers, word="drei")
    assert await total() == 2
    r = await client.post("/words", headers=auth.headers, json={"word": "EINS", "definition": "d"})
    assert r.status_code == 409
    assert await total() == 2
    r = await client.post(
        "/words/import",
        headers=auth.headers,
        files={"file": ("w.csv", b"vier,four\nzwei,two\n", "text/csv")},
    )
    assert r.json()["created"] == 1
    assert await total() == 3
    assert (await client.delete(f"/words/{first['id']}", headers=auth.headers)).status_code == 204
    assert (await client.delete(f"/words/{first['id']}", headers=auth.headers)).status_code == 404
    assert await total() == 3 - 1 == await Word.filter(user_id=auth.id).count()
