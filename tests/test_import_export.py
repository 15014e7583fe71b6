"""Import and export: CSV out, CSV/TSV/Anki text in, as the README's "Bringing a deck over from
Anki" section and the OpenAPI schema (`/docs`) describe them."""

import csv
import io
from typing import Any

import pytest
from conftest import Auth, assert_401, make_word

import vocab
from models import Card, Word

EXPORT_HEADER = "word,definition,example,language,difficulty,tags"
MAX_IMPORT_BYTES = 5 * 1024 * 1024


async def import_file(
    client, headers, content: str | bytes, *, filename: str = "words.csv"
) -> dict[str, Any]:
    """POST /words/import (asserting 200) and return the body."""
    r = await upload(client, headers, content, filename=filename)
    assert r.status_code == 200, r.text
    return r.json()


async def upload(client, headers, content: str | bytes, *, filename: str = "words.csv"):
    """POST /words/import with `content` as the multipart field `file`."""
    data = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/words/import", headers=headers, files={"file": (filename, data, "text/csv")}
    )


async def export(client, headers) -> str:
    """GET /words/export (asserting 200 and a UTF-8 byte order mark) and return the CSV text
    after the mark."""
    r = await client.get("/words/export", headers=headers)
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"\xef\xbb\xbf")
    return r.text.removeprefix("\ufeff")


def by_word(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Words sorted by word, then language."""
    return sorted(words, key=lambda w: (w["word"], w["language"] or ""))


async def stored_words(user_id: int) -> list[dict[str, Any]]:
    """The user's words as the database holds them, in the API's shape, sorted."""
    return by_word(
        [
            {
                "word": w.word,
                "definition": w.definition,
                "example": w.example,
                "language": w.language or None,
                "difficulty": w.difficulty,
                "tags": w.tags.split(),
            }
            for w in await Word.filter(user_id=user_id)
        ]
    )


def word(text: str, definition: str, **fields: Any) -> dict[str, Any]:
    """A word as `stored_words` shows it, with the API's defaults."""
    defaults = {"example": None, "language": None, "difficulty": 3, "tags": []}
    return {"word": text, "definition": definition, **defaults, **fields}


def rows_of(text: str) -> list[list[str]]:
    """An export's header row, then its data rows sorted."""
    header, *rows = csv.reader(io.StringIO(text, newline=""))
    return [header, *sorted(rows)]


# --- Export ---


async def test_export_words_is_csv_attachment_with_header(client, auth, other_auth):
    await make_word(
        client,
        auth.headers,
        word="Haus",
        definition="house, building",
        example='Das "Haus" ist groß.',
        language="de",
        difficulty=2,
        tags=["noun", "a1"],
    )
    await make_word(client, auth.headers, word="run", definition="to move fast")
    await make_word(client, other_auth.headers, word="secret", definition="not yours")

    r = await client.get("/words/export", headers=auth.headers)

    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "text/csv"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.content.startswith(b"\xef\xbb\xbf" + EXPORT_HEADER.encode() + b"\n")
    rows = list(csv.reader(io.StringIO(r.text.removeprefix("\ufeff"), newline="")))
    assert sorted(rows[1:]) == [
        ["Haus", "house, building", 'Das "Haus" ist groß.', "de", "2", "noun a1"],
        ["run", "to move fast", "", "", "3", ""],
    ]


async def test_export_words_of_empty_account_is_only_the_header(client, auth, other_auth):
    await make_word(client, other_auth.headers)
    text = await export(client, auth.headers)
    assert text.splitlines() == [EXPORT_HEADER]


async def test_export_words_without_token_is_401(client):
    r = await client.get("/words/export")
    assert_401(r)


# --- Import: formats ---


async def test_import_csv_with_header_in_any_column_order(client, auth):
    content = (
        "tags,difficulty,definition,language,word\n"
        "noun a1,2,house,de,Haus\n"
        'verb,5,"to run, to flee",en,run\n'
    )

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word("Haus", "house", language="de", difficulty=2, tags=["noun", "a1"]),
        word("run", "to run, to flee", language="en", difficulty=5, tags=["verb"]),
    ]
    cards = await Card.filter(user_id=auth.id).values_list("word__word", "direction", "state")
    assert sorted(cards) == [("Haus", "forward", "new"), ("run", "forward", "new")]


async def test_import_csv_without_header_uses_export_order(client, auth):
    content = 'Haus,house,"Das Haus, groß.",de,2,noun a1\nrun,to move fast\n'

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word(
            "Haus",
            "house",
            example="Das Haus, groß.",
            language="de",
            difficulty=2,
            tags=["noun", "a1"],
        ),
        word("run", "to move fast"),
    ]


async def test_import_tsv_with_header_sniffs_the_tab(client, auth):
    content = (
        "word\tdefinition\texample\tlanguage\n"
        "Haus\thouse, building\tDas Haus, das ich sah.\tde\n"
        "Katze\tcat, a small feline\t\tde\n"
    )

    body = await import_file(client, auth.headers, content, filename="words.tsv")

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word("Haus", "house, building", example="Das Haus, das ich sah.", language="de"),
        word("Katze", "cat, a small feline", language="de"),
    ]


async def test_import_tsv_without_header_whose_definitions_hold_commas(client, auth):
    content = "Haus\thouse, home\nKatze\tcat, feline\n"

    body = await import_file(client, auth.headers, content, filename="words.tsv")

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word("Haus", "house, home"),
        word("Katze", "cat, feline"),
    ]


async def test_import_anki_export_with_tags_column_and_html(client, auth):
    content = (
        "#separator:tab\n"
        "#html:true\n"
        "#tags column:3\n"
        "Hund\tdog<br>hound &amp; friend\tnoun animal\n"
        "<b>laufen</b>\tto run\tverb\n"
    )

    body = await import_file(client, auth.headers, content, filename="notes.txt")

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word("Hund", "dog\nhound & friend", tags=["noun", "animal"]),
        word("laufen", "to run", tags=["verb"]),
    ]


async def test_import_anki_plain_text_export(client, auth):
    content = (
        "#separator:tab\n"
        "#html:false\n"
        "#columns:Front\tBack\tTags\n"
        "Hund\tdog, hound\tnoun animal\n"
        "laufen\tto run; to walk\tverb\n"
    )

    body = await import_file(client, auth.headers, content, filename="notes.txt")

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [
        word("Hund", "dog, hound", tags=["noun", "animal"]),
        word("laufen", "to run; to walk", tags=["verb"]),
    ]


async def test_import_header_with_an_unknown_column_never_stores_the_header_or_swaps_columns(
    client, auth
):
    content = "definition,word,notes\nhouse,Haus,a noun\n"

    body = await import_file(client, auth.headers, content)

    assert body["skipped"] == 0
    assert not await Word.filter(user_id=auth.id, word__in=["definition", "house"]).exists()


@pytest.mark.parametrize(
    ("separator", "char"),
    [("tab", "\t"), ("Comma", ","), ("semicolon", ";"), ("pipe", "|"), ("Tab", "\t")],
)
async def test_import_anki_separator_line_names_the_delimiter(client, auth, separator, char):
    content = f"#separator:{separator}\n#html:false\nHund{char}a dog\n"

    body = await import_file(client, auth.headers, content, filename="notes.txt")

    assert body == {"created": 1, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [word("Hund", "a dog")]


async def test_import_csv_with_byte_order_mark_and_crlf(client, auth):
    content = "\ufeffword,definition\r\nHaus,house\r\n".encode()

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 1, "skipped": 0, "errors": []}
    assert await stored_words(auth.id) == [word("Haus", "house")]


async def test_import_anki_file_of_1000_rows_creates_1000_words(client, auth):
    rows = "".join(f"word{i}\tdefinition {i}\ttag{i % 7}\n" for i in range(1000))
    content = "#separator:tab\n#html:false\n#columns:Front\tBack\tTags\n" + rows

    body = await import_file(client, auth.headers, content, filename="notes.txt")

    assert body == {"created": 1000, "skipped": 0, "errors": []}
    assert await Word.filter(user_id=auth.id).count() == 1000
    stored = await Word.get(user_id=auth.id, word="word999")
    assert (stored.definition, stored.tags.split()) == ("definition 999", ["tag5"])


async def test_export_words_of_a_large_account_has_every_word_once(client, auth):
    rows = "".join(f"word{i}\tdefinition {i}\n" for i in range(1234))
    assert (await import_file(client, auth.headers, "#separator:tab\n" + rows))["created"] == 1234

    header, *exported = rows_of(await export(client, auth.headers))

    assert header == EXPORT_HEADER.split(",")
    assert sorted(row[0] for row in exported) == sorted(f"word{i}" for i in range(1234))


# --- Import: bad rows and duplicates ---


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("anki_lines", [0, 2], ids=["plain", "anki-header"])
async def test_import_reports_bad_rows_by_line_number(client, auth, newline, anki_lines):
    lines = [
        *(["#separator:comma", "#html:false"][:anki_lines]),
        "word,definition,difficulty",
        "alpha,first,1",
        "beta,,2",  # no definition
        'gamma,"a definition',
        "over three",
        'lines",3',
        "delta,fourth,9",  # difficulty out of range
        "",
        "epsilon,fifth,2,extra",  # too many fields
        "zeta,sixth,5",
    ]
    content = newline.join(lines) + newline

    body = await import_file(client, auth.headers, content)

    assert (body["created"], body["skipped"]) == (3, 0)
    assert [e["line"] for e in body["errors"]] == [n + anki_lines for n in (3, 7, 9)]
    assert "definition" in body["errors"][0]["detail"]
    assert "difficulty" in body["errors"][1]["detail"]
    assert all(isinstance(e["detail"], str) and e["detail"] for e in body["errors"])
    assert [w["word"] for w in await stored_words(auth.id)] == ["alpha", "gamma", "zeta"]
    gamma = await Word.get(user_id=auth.id, word="gamma")
    assert gamma.definition == "a definition\nover three\nlines"  # line breaks stored as LF


@pytest.mark.parametrize(
    ("row", "field"),
    [
        pytest.param("Baum,tree,,de,2,ok " + "t" * 33, "tags", id="tag-too-long"),
        pytest.param("Baum,tree,,d e,2,", "language", id="bad-language"),
        pytest.param("Baum,tree,,de,two,", "difficulty", id="difficulty-not-a-number"),
        pytest.param("Baum," + "d" * 1001, "definition", id="definition-too-long"),
        pytest.param("," + "tree", "word", id="word-empty"),
    ],
)
async def test_import_never_stores_part_of_a_bad_row(client, auth, row, field):
    body = await import_file(client, auth.headers, f"Haus,house\n{row}\n")

    assert body["created"] == 1
    assert [(e["line"], field in e["detail"]) for e in body["errors"]] == [(2, True)]
    assert await stored_words(auth.id) == [word("Haus", "house")]


async def test_import_row_with_too_many_fields_is_an_error(client, auth):
    content = "word,definition\nHaus,house\nKatze,cat,a pet\n"

    body = await import_file(client, auth.headers, content)

    assert (body["created"], body["skipped"]) == (1, 0)
    assert [e["line"] for e in body["errors"]] == [3]
    assert await stored_words(auth.id) == [word("Haus", "house")]


async def test_import_skips_duplicates_case_insensitively(client, auth, other_auth):
    await make_word(client, auth.headers, word="Haus", definition="house", language="de")
    await make_word(client, other_auth.headers, word="Katze", definition="theirs", language="de")
    content = (
        "word,definition,language\n"
        "haus,a house again,de\n"  # you have it already
        "HAUS,house in no language,\n"  # another language
        "Katze,cat,de\n"  # only another user has it
        "KATZE,cat again,de\n"  # repeated in the file
        "katze,cat,en\n"
        "HAUS,house with its language in capitals,DE\n"  # the same language
    )

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 3, "skipped": 3, "errors": []}
    assert await stored_words(auth.id) == [
        word("HAUS", "house in no language"),
        word("Haus", "house", language="de"),
        word("Katze", "cat", language="de"),
        word("katze", "cat", language="en"),
    ]
    assert await Word.filter(user_id=other_auth.id).count() == 1


async def test_import_skips_a_word_added_meanwhile_by_another_request(client, auth, monkeypatch):
    create_many = vocab.create_many

    async def create_many_after_a_concurrent_insert(user, words):
        # Another request adds "Katze" after this import checked for duplicates.
        katze = await Word.create(
            user_id=auth.id, word="Katze", word_key="katze", definition="first"
        )
        await Card.bulk_create(vocab.new_cards(katze))
        await vocab.add_to_word_count(user, 1)
        return await create_many(user, words)

    monkeypatch.setattr(vocab, "create_many", create_many_after_a_concurrent_insert)

    body = await import_file(client, auth.headers, "Haus,house\nKatze,cat\nHund,dog\n")

    assert body == {"created": 2, "skipped": 1, "errors": []}
    assert await stored_words(auth.id) == [
        word("Haus", "house"),
        word("Hund", "dog"),
        word("Katze", "first"),
    ]
    r = await client.get("/words", headers=auth.headers)
    assert r.json()["total"] == 3


async def test_import_same_file_twice_skips_every_row(client, auth):
    content = "Haus,house\nKatze,cat\n"
    assert await import_file(client, auth.headers, content) == {
        "created": 2,
        "skipped": 0,
        "errors": [],
    }

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 0, "skipped": 2, "errors": []}
    assert await Word.filter(user_id=auth.id).count() == 2


# --- Import: unreadable and oversized files ---


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("word,definition\nStraße,street\n".encode("latin-1"), id="latin-1"),
        pytest.param(b"\xff\xfe\xfa\xfbword,definition\n", id="invalid-utf8"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", id="png"),
        pytest.param(b"PK\x03\x04\x14\x00\x06\x00word,definition", id="zip"),
        pytest.param(b"word,definition\nHaus,ho\x00use\n", id="nul-byte"),
    ],
)
async def test_import_unreadable_file_is_422(client, auth, content):
    r = await upload(client, auth.headers, content)

    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str | list)
    assert await Word.all().count() == 0


async def test_import_without_file_is_422(client, auth):
    r = await client.post("/words/import", headers=auth.headers, data={"other": "x"})
    assert r.status_code == 422, r.text
    assert await Word.all().count() == 0


@pytest.mark.parametrize("size", [MAX_IMPORT_BYTES + 1, 6 * 1024 * 1024], ids=["5MiB+1", "6MiB"])
async def test_import_file_over_5_mb_is_413_and_stores_nothing(client, auth, size):
    rows = "".join(f"w{i:07},definition number {i:07}\n" for i in range(size // 35 + 1))
    content = rows.encode()[:size]
    assert len(content) == size

    r = await upload(client, auth.headers, content)

    assert r.status_code == 413, r.text
    assert isinstance(r.json()["detail"], str)
    assert await Word.all().count() == 0


async def test_import_file_of_5_000_000_bytes_is_accepted(client, auth):
    head = "word,definition\nHaus,house\n"
    padding = (" " * 999 + "\n") * ((5_000_000 - len(head)) // 1000)
    content = (head + padding).encode()
    content += b" " * (5_000_000 - len(content))
    assert len(content) == 5_000_000

    body = await import_file(client, auth.headers, content)

    assert (body["created"], body["errors"]) == (1, [])
    assert await stored_words(auth.id) == [word("Haus", "house")]


async def test_import_without_token_is_401(client):
    r = await upload(client, {}, "Haus,house\n")
    assert_401(r)
    assert await Word.all().count() == 0


# --- Round trip ---

ROUND_TRIP_WORDS = [
    word(
        "Straße",
        'street, road: "die Straße"',
        example='Line one,\nline two with "quotes", and it\'s fine.',
        language="de",
        difficulty=1,
        tags=["noun", "a1"],
    ),
    word(
        "日本語", "the Japanese language", example="日本語を話します。", language="ja", difficulty=5
    ),
    word("🙂", "a smiling face\non two lines", tags=["emoji", "b2"]),
    word(
        "naïve",
        "lacking experience; 'innocent'",
        example='He said "hi",\tthen left.',
        language="pt-BR",
        difficulty=4,
        tags=["adj", "a,b", 'q"t'],
    ),
    word("gift", "a present", language="en", difficulty=2),
    word("Gift", "poison", language="de", difficulty=2, tags=["false-friend"]),
    word("#hashtag", "a word that starts like an Anki header line"),
]


async def test_export_then_import_into_fresh_account_reproduces_the_words(client, auth):
    for w in ROUND_TRIP_WORDS:
        await make_word(client, auth.headers, **w)
    assert await stored_words(auth.id) == by_word(ROUND_TRIP_WORDS)
    text = await export(client, auth.headers)
    fresh = await Auth(client, email="carol@example.com").setup()

    body = await import_file(client, fresh.headers, text.encode())

    assert body == {"created": len(ROUND_TRIP_WORDS), "skipped": 0, "errors": []}
    assert await stored_words(fresh.id) == by_word(ROUND_TRIP_WORDS)
    assert rows_of(await export(client, fresh.headers)) == rows_of(text)
