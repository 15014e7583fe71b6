"""Safer export and import (API.md, "Safer export" and the import edge cases of issue 11): a
byte order mark, formula cells written as text, exactly that quote removed on import, long
fields and unclosed quotes reported per row, one file per request."""

import asyncio
import csv
import io

import pytest
from conftest import Auth, make_word

import vocab
from models import Word

BOM = b"\xef\xbb\xbf"


async def upload(client, headers, content: str | bytes, *, filename: str = "words.csv"):
    data = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/words/import", headers=headers, files={"file": (filename, data, "text/csv")}
    )


async def import_file(client, headers, content: str | bytes) -> dict:
    r = await upload(client, headers, content)
    assert r.status_code == 200, r.text
    return r.json()


async def export_rows(client, headers) -> list[list[str]]:
    r = await client.get("/words/export", headers=headers)
    assert r.status_code == 200, r.text
    assert r.content.startswith(BOM)
    return list(csv.reader(io.StringIO(r.content[3:].decode(), newline="")))


async def stored(user_id: int) -> list[tuple]:
    return sorted(
        (w.word, w.definition, w.example, w.tags.split(" ")[1:-1])
        for w in await Word.filter(user_id=user_id)
    )


# --- Export ---


async def test_export_words_starts_with_a_utf8_byte_order_mark(client, auth):
    await make_word(client, auth.headers, word="Übung", definition="exercise")

    r = await client.get("/words/export", headers=auth.headers)

    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(BOM + b"word,definition,example,language,difficulty,tags\n")
    assert r.content.count(BOM) == 1
    assert "Übung,exercise" in r.content.decode("utf-8-sig")


@pytest.mark.parametrize(
    ("field", "value", "cell"),
    [
        pytest.param("word", "=HYPERLINK(1)", "'=HYPERLINK(1)", id="equals"),
        pytest.param("word", "+49 30", "'+49 30", id="plus"),
        pytest.param("word", "-ish", "'-ish", id="minus"),
        pytest.param("word", "@home", "'@home", id="at"),
        pytest.param("definition", "=1+1 is two", "'=1+1 is two", id="definition"),
        pytest.param("example", "-- a dash first", "'-- a dash first", id="example"),
        pytest.param("tags", ["-neg", "ok"], "'-neg ok", id="tags"),
        pytest.param("word", "'tis", "'tis", id="apostrophe-alone-unchanged"),
        pytest.param("word", "'=x", "''=x", id="apostrophe-then-formula"),
        pytest.param("word", "a=b", "a=b", id="equals-inside-unchanged"),
    ],
)
async def test_export_words_writes_formula_cells_with_a_leading_quote(
    client, auth, field, value, cell
):
    fields = {"word": "plain", "definition": "plain", field: value}
    await make_word(client, auth.headers, **fields)

    header, row = await export_rows(client, auth.headers)

    assert row[header.index(field)] == cell


async def test_export_then_import_reproduces_words_that_begin_like_formulas(client, auth):
    words = [
        {"word": "-ish", "definition": "-ish: somewhat", "tags": ["-suffix"]},
        {"word": "'tis", "definition": "it is", "example": "'Tis the season."},
        {"word": "'=x", "definition": "=SUM(A1:A9)", "example": "+1 and @me"},
        {"word": "''-", "definition": "two quotes and a dash"},
        {"word": "@", "definition": "at"},
    ]
    for w in words:
        await make_word(client, auth.headers, **w)
    r = await client.get("/words/export", headers=auth.headers)
    fresh = await Auth(client, email="carol@example.com").setup()

    body = await import_file(client, fresh.headers, r.content)

    assert body == {"created": len(words), "skipped": 0, "errors": []}
    assert await stored(fresh.id) == await stored(auth.id)
    assert (await Word.get(user_id=fresh.id, word="'=x")).definition == "=SUM(A1:A9)"


@pytest.mark.parametrize(
    ("cell", "word"),
    [
        pytest.param("'=1", "=1", id="added-quote-removed"),
        pytest.param("''=1", "'=1", id="only-one-quote-removed"),
        pytest.param("'tis", "'tis", id="apostrophe-kept"),
        pytest.param("''", "''", id="quotes-alone-kept"),
    ],
)
async def test_import_removes_only_the_quote_export_adds(client, auth, cell, word):
    body = await import_file(client, auth.headers, f"word,definition\n{cell},d\n")

    assert body == {"created": 1, "skipped": 0, "errors": []}
    assert [w.word for w in await Word.filter(user_id=auth.id)] == [word]


# --- Import edge cases ---


async def test_import_field_over_128_kib_is_an_error_of_its_row_only(client, auth):
    content = f"word,definition\nHaus,house\nLang,{'x' * 200_000}\nKatze,cat\n"

    body = await import_file(client, auth.headers, content)

    assert (body["created"], body["skipped"]) == (2, 0)
    assert [e["line"] for e in body["errors"]] == [3]
    assert "definition" in body["errors"][0]["detail"]
    assert sorted(w.word for w in await Word.filter(user_id=auth.id)) == ["Haus", "Katze"]


async def test_import_unclosed_quote_is_an_error_with_its_line_and_later_rows_are_read(
    client, auth
):
    content = 'word,definition\nHaus,house\nKatze,"cat\nHund,dog\nMaus,"mouse, small"\n'

    body = await import_file(client, auth.headers, content)

    assert body["created"] == 3
    assert body["errors"] == [{"line": 3, "detail": vocab.UNCLOSED_QUOTE}]
    words = {w.word: w.definition for w in await Word.filter(user_id=auth.id)}
    assert words == {"Haus": "house", "Hund": "dog", "Maus": "mouse, small"}


async def test_import_quoted_field_over_several_lines_is_still_one_field(client, auth):
    content = 'word,definition\nHaus,"a house\nwith rooms"\nHund,dog\n'

    body = await import_file(client, auth.headers, content)

    assert body == {"created": 2, "skipped": 0, "errors": []}
    assert (await Word.get(user_id=auth.id, word="Haus")).definition == "a house\nwith rooms"


async def test_import_with_two_file_parts_is_422_and_stores_nothing(client, auth):
    files = [
        ("file", ("a.csv", b"Haus,house\n", "text/csv")),
        ("file", ("b.csv", b"Katze,cat\n", "text/csv")),
    ]

    r = await client.post("/words/import", headers=auth.headers, files=files)

    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["msg"] == "Send exactly one file"
    assert await Word.filter(user_id=auth.id).count() == 0


async def test_import_of_many_rows_goes_in_by_chunks_and_counts_every_word(client, auth):
    rows = "".join(f"word{i},definition {i}\n" for i in range(3 * vocab.IMPORT_CHUNK + 7))

    body = await import_file(client, auth.headers, rows)

    assert body == {"created": 3 * vocab.IMPORT_CHUNK + 7, "skipped": 0, "errors": []}
    r = await client.get("/words", headers=auth.headers, params={"limit": 1})
    assert r.json()["total"] == 3 * vocab.IMPORT_CHUNK + 7 == await Word.all().count()


async def test_import_rows_with_control_characters_or_bidi_overrides_are_errors(client, auth):
    content = "word,definition\nok,fine\nbad\x1b[31m,ansi\nrtl\u202eevil,override\ntab,a\tb\n"

    body = await import_file(client, auth.headers, content)

    assert [e["line"] for e in body["errors"]] == [3, 4]
    assert sorted(w.word for w in await Word.filter(user_id=auth.id)) == ["ok", "tab"]


async def test_imports_of_two_users_at_once_both_complete(client, auth, other_auth):
    rows = "".join(f"word{i},definition {i}\n" for i in range(2 * vocab.IMPORT_CHUNK + 3))

    first, second = await asyncio.gather(
        upload(client, auth.headers, rows), upload(client, other_auth.headers, rows)
    )

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["created"] == second.json()["created"] == 2 * vocab.IMPORT_CHUNK + 3
    assert await Word.filter(user_id=auth.id).count() == 2 * vocab.IMPORT_CHUNK + 3
    assert await Word.filter(user_id=other_auth.id).count() == 2 * vocab.IMPORT_CHUNK + 3
