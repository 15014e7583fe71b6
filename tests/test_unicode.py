"""Words in every script (API.md, "Text is Unicode, and learners write every script"): text in
NFC, the duplicate rule, characters that are refused, search that ignores case and accents, the
tag and language filters, sorting and the export/import round trip, the same on SQLite and
PostgreSQL."""

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import product

import pytest
from conftest import Auth, make_word
from pydantic_core import PydanticCustomError

import vocab
from models import Word

DUPLICATE = {"detail": "You already have this word in this language"}


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@dataclass
class Entry:
    """A real word of one language, the ways a learner may type it, and how to find it."""

    word: str
    language: str
    tag: str
    #: How the tag filter may ask for the tag.
    tag_query: str
    #: Searches that must find the word.
    searches: list[str]
    #: Another spelling that is the same word (409).
    same: str
    #: A spelling that is another word (201), where the script has one.
    other: str | None = None
    definition: str = "a definition"
    #: Searches that must not find it.
    misses: list[str] = field(default_factory=list)


TABLE = [
    Entry("Straße", "de", "übung", "ÜBUNG", ["strasse", "STRASSE", "straße", "STRAẞE"],
          same="STRAẞE", other="Strasse"),
    Entry("ışık", "tr", "türkçe", "TÜRKÇE", ["isik", "IŞIK", "ışık"],
          # str.lower knows no Turkish: IŞIK lower-cases to işik, another word.
          same=nfd("ışık"), other="IŞIK"),
    # İZMİR lower-cases to i̇zmi̇r, with a dot above each i: another word than İzmir.
    Entry("İzmir", "tr", "şehir", "ŞEHİR", ["izmir", "IZMIR", "İZMİR"], same=nfd("İzmir"),
          other="İZMİR"),
    Entry("λόγος", "el", "λέξη", "ΛΈΞΗ", ["ΛΌΓΟΣ", "λογος", "ΛΟΓΟΣ", "λόγοσ"], same="ΛΌΓΟΣ"),
    Entry("ёлка", "ru", "слово", "СЛОВО", ["ЁЛКА", "елка", "ЕЛКА"], same="ЁЛКА", other="елка"),
    Entry("مَكْتَبَة", "ar", "عربي", "عربي", ["مكتبة", "مَكْتَبَة", "كتب"], same=nfd("مَكْتَبَة"),
          other="مكتبة", misses=["كتاب"]),
    # Persian with a zero-width non-joiner inside: it stays, and search ignores it.
    Entry("می\u200cخواهم", "fa", "فارسی", "فارسی", ["میخواهم", "می\u200cخواهم", "خواهم"],
          same="می\u200cخواهم\u200c", other="میخواهم"),
    # Points in another order are the same text (canonical ordering).
    Entry("שָׁלוֹם", "he", "עברית", "עברית", ["שלום", "שָׁלוֹם"],
          same="ש\u05c1\u05b8לוֹם", other="שלום"),
    # U+095B (ज़ precomposed) is a composition exclusion: NFC writes ज + nukta.
    Entry("ज़मीन", "hi", "हिंदी", "हिंदी", ["ज़मीन", "\u095bमीन", "मीन"], same="\u095bमीन",
          other="जमीन", misses=["जमीन"]),
    Entry("日本語", "ja", "日本", "日本", ["日本", "本語", "日本語"], same="日本語",
          misses=["中国"]),
    Entry("カタカナ", "ja", "カナ", "カナ", ["ｶﾀｶﾅ", "カタ", "タカ"], same="カタカナ",
          other="ｶﾀｶﾅ", misses=["かたかな"]),
    Entry("パン", "ja", "食べ物", "食べ物", ["パン", "ﾊﾟﾝ"], same="パン", misses=["ハン"]),
    Entry("学习", "zh", "中文", "中文", ["学", "学习"], same="学习", other="學習"),
    Entry("한국어", "ko", "한국어", nfd("한국어"), ["한국", "국어", nfd("한국")],
          same=nfd("한국어")),
    # Vietnamese stacks two marks on one letter; typed decomposed, in either order.
    Entry("Tiếng Việt", "vi", "tiếng", "TIẾNG", ["tieng viet", "TIẾNG VIỆT", "việt"],
          same="tie\u0302\u0301ng vie\u0323\u0302t", other="Tieng Viet"),
    Entry("café", "fr", "boisson", "BOISSON", ["cafe", "CAFÉ", nfd("Café")], same=nfd("Café"),
          other="cafe"),
    Entry("👩\u200d💻", "en", "😀", "😀", ["👩", "💻", "👩\u200d💻"], same="👩\u200d💻\ufeff",
          other="👩💻"),
    Entry("🙂", "en", "emoji", "EMOJI", ["🙂", "🙂\ufe0f"], same=" 🙂 "),
]  # fmt: skip
IDS = [f"{e.language}-{e.word}" for e in TABLE]
#: sort=word: by the search key, so scripts follow code point order and accents do not count.
SORTED = [
    "café", "ışık", "İzmir", "Straße", "Tiếng Việt", "λόγος", "ёлка", "שָׁלוֹם", "مَكْتَبَة",
    "می\u200cخواهم", "ज़मीन", "カタカナ", "パン", "学习", "日本語", "한국어", "👩\u200d💻", "🙂",
]  # fmt: skip


def stored(text: str) -> str:
    """What the API stores for a word typed this way."""
    return vocab.trim(unicodedata.normalize("NFC", text))


async def create(client, auth, entry: Entry, **overrides) -> dict:
    fields = {"definition": entry.definition, "language": entry.language, "tags": [entry.tag]}
    return await make_word(client, auth.headers, **{"word": entry.word, **fields, **overrides})


async def create_all(client, auth) -> dict[str, int]:
    """Every word of the table; returns their ids by stored word."""
    return {stored(e.word): (await create(client, auth, e))["id"] for e in TABLE}


async def listed(client, auth, **params) -> list[str]:
    r = await client.get("/words", headers=auth.headers, params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == len(r.json()["items"])
    return [item["word"] for item in r.json()["items"]]


# --- Every script: create, duplicate, search, tag filter, sort, round trip ---


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
async def test_create_word_in_every_script_stores_it_in_nfc(client, auth, entry):
    body = await create(client, auth, entry, word=nfd(entry.word), tags=[nfd(entry.tag)])

    assert body["word"] == stored(entry.word)
    assert body["tags"] == [unicodedata.normalize("NFC", entry.tag)]
    row = await Word.get(id=body["id"])
    assert unicodedata.is_normalized("NFC", row.word)
    assert (row.word, row.word_key) == (stored(entry.word), stored(entry.word).lower())
    r = await client.get(f"/words/{body['id']}", headers=auth.headers)
    assert r.json()["word"] == stored(entry.word)


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
async def test_create_word_typed_another_way_in_every_script_is_409(client, auth, entry):
    await create(client, auth, entry)

    r = await client.post(
        "/words",
        headers=auth.headers,
        json={"word": entry.same, "definition": "again", "language": entry.language},
    )

    assert r.status_code == 409, r.text
    assert r.json() == DUPLICATE
    assert await Word.filter(user_id=auth.id).count() == 1


@pytest.mark.parametrize("entry", [e for e in TABLE if e.other], ids=lambda e: e.other)
async def test_create_word_that_is_another_word_in_every_script_is_201(client, auth, entry):
    await create(client, auth, entry)

    second = await create(client, auth, entry, word=entry.other)

    assert second["word"] == stored(entry.other)
    assert await Word.filter(user_id=auth.id).count() == 2


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
async def test_list_words_search_in_every_script_ignores_case_and_accents(client, auth, entry):
    await create_all(client, auth)

    for q in entry.searches:
        assert stored(entry.word) in await listed(client, auth, q=q), q
    for q in entry.misses:
        assert stored(entry.word) not in await listed(client, auth, q=q), q


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
async def test_list_words_tag_filter_in_every_script_ignores_case(client, auth, entry):
    await create_all(client, auth)
    expected = sorted(
        stored(e.word) for e in TABLE if vocab.tag_key(e.tag) == vocab.tag_key(entry.tag)
    )

    found = await listed(client, auth, tag=entry.tag_query)

    assert sorted(found) == expected
    assert stored(entry.word) in found


async def test_list_words_sorted_by_word_across_scripts(client, auth):
    await create_all(client, auth)

    assert await listed(client, auth, sort="word") == SORTED
    assert await listed(client, auth, sort="-word") == SORTED[::-1]


async def test_export_then_import_reproduces_words_in_every_script(client, auth):
    await create_all(client, auth)
    r = await client.get("/words/export", headers=auth.headers)
    assert r.status_code == 200, r.text
    fresh = await Auth(client, email="carol@example.com").setup()

    r = await client.post(
        "/words/import",
        headers=fresh.headers,
        files={"file": ("words.csv", r.content, "text/csv")},
    )

    assert r.status_code == 200, r.text
    assert r.json() == {"created": len(TABLE), "skipped": 0, "errors": []}

    def shape(words):
        return sorted((w.word, w.word_key, w.word_fold, w.language, w.tags) for w in words)

    assert shape(await Word.filter(user_id=fresh.id)) == shape(await Word.filter(user_id=auth.id))


# --- The contract's own examples ---


@pytest.mark.parametrize(
    ("word", "q"),
    [
        ("Übung", "ubung"),
        ("Übung", "ÜBUNG"),
        ("café", "cafe"),
        ("Straße", "strasse"),
        ("λόγος", "ΛΌΓΟΣ"),
        ("日本語", "日本"),
    ],
)
async def test_list_words_search_examples_of_the_contract(client, auth, word, q):
    await make_word(client, auth.headers, word=word)
    await make_word(client, auth.headers, word="other", definition="nothing alike")

    assert await listed(client, auth, q=q) == [word]


async def test_list_words_search_matches_the_definition_too(client, auth):
    await make_word(client, auth.headers, word="Haus", definition="Gebäude zum Wohnen")

    assert await listed(client, auth, q="GEBAUDE") == ["Haus"]
    assert await listed(client, auth, q="  gebäude ") == ["Haus"]  # the query is trimmed


async def test_list_words_tag_and_language_filters_ignore_case(client, auth):
    await make_word(client, auth.headers, word="Übung", language="de", tags=["übung"])
    await make_word(client, auth.headers, word="exercise", language="en", tags=["ubung"])

    await make_word(client, auth.headers, word="ışık", language="tr", tags=["ışık"])
    assert await listed(client, auth, tag="ÜBUNG") == ["Übung"]
    assert await listed(client, auth, tag="IŞIK") == ["ışık"]
    assert await listed(client, auth, language="DE") == ["Übung"]
    assert await listed(client, auth, language="") == []  # words without a language


async def test_create_word_masse_and_masse_with_sharp_s_are_two_words(client, auth):
    await make_word(client, auth.headers, word="Masse", language="de")
    await make_word(client, auth.headers, word="Maße", language="de")

    r = await client.post(
        "/words", headers=auth.headers, json={"word": "MASSE", "definition": "d", "language": "de"}
    )

    assert r.status_code == 409, r.text
    assert sorted(await listed(client, auth, q="masse")) == ["Masse", "Maße"]


async def test_create_word_with_a_zero_width_space_at_its_end_is_the_same_word(client, auth):
    await make_word(client, auth.headers, word="hello")

    r = await client.post(
        "/words", headers=auth.headers, json={"word": "\ufeffhello\u200b", "definition": "d"}
    )

    assert r.status_code == 409, r.text
    assert await Word.all().count() == 1


# --- Characters that are refused ---


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"word": "hel\u200blo"}, id="zero-width-space-inside"),
        pytest.param({"word": "hel\ufefflo"}, id="byte-order-mark-inside"),
        pytest.param({"word": "hel\u2060lo"}, id="word-joiner-inside"),
        pytest.param({"word": "\x1b[31mred\x1b[0m"}, id="ansi-escape"),
        pytest.param({"word": "abc\u202edcba"}, id="right-to-left-override"),
        pytest.param({"word": "a\u2066b"}, id="left-to-right-isolate"),
        pytest.param({"word": "a\tb"}, id="tab-inside-word"),
        pytest.param({"word": "a\nb"}, id="newline-inside-word"),
        pytest.param({"word": "a\x85b"}, id="next-line-c1-control"),
        pytest.param({"word": "\u200b\u200c\ufeff"}, id="only-invisible"),
        pytest.param({"definition": "ring\x07"}, id="bell-in-definition"),
        pytest.param({"example": "a\x1fb"}, id="unit-separator-in-example"),
        pytest.param({"tags": ["a\x1fb"]}, id="unit-separator-in-tag"),
        pytest.param({"tags": ["a\u202eb"]}, id="override-in-tag"),
        pytest.param({"tags": ["a\u3000b"]}, id="ideographic-space-in-tag"),
        pytest.param({"tags": ["\u200b"]}, id="invisible-tag"),
        pytest.param({"language": " de"}, id="language-with-space"),
        pytest.param({"word": "\u0958" * 100}, id="word-over-100-once-in-nfc"),
        pytest.param({"tags": ["\u0958" * 17]}, id="tag-over-32-once-in-nfc"),
        pytest.param({"word": " " + "w" * 100}, id="word-of-101-as-sent"),
    ],
)
async def test_create_word_with_refused_characters_is_422(client, auth, payload):
    r = await client.post(
        "/words", headers=auth.headers, json={"word": "w", "definition": "d", **payload}
    )

    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert await Word.all().count() == 0


async def test_create_word_error_names_the_refused_character(client, auth):
    r = await client.post(
        "/words", headers=auth.headers, json={"word": "ab\u202ec", "definition": "d"}
    )

    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "word"]
    assert error["msg"] == "bidirectional control U+202E (character 3) is not allowed here"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({"definition": "line one\r\nline two\rthree"},
                     {"definition": "line one\nline two\nthree"}, id="line-breaks-as-lf"),
        pytest.param({"definition": "a\tb"}, {"definition": "a\tb"}, id="tab-in-definition"),
        pytest.param({"definition": "עברית \u2067abc\u2069"},
                     {"definition": "עברית \u2067abc\u2069"}, id="isolates-in-definition"),
        pytest.param({"example": " \u200b "}, {"example": None}, id="invisible-example-is-null"),
        pytest.param({"language": ""}, {"language": None}, id="empty-language-is-none"),
        pytest.param({"word": "\u200cnan\u200d"}, {"word": "nan"}, id="joiners-trimmed-at-ends"),
        pytest.param({"word": "\u00a0Fernweh\u3000"}, {"word": "Fernweh"}, id="unicode-spaces"),
        pytest.param({"tags": [" noun ", "b1\u200b"]}, {"tags": ["noun", "b1"]}, id="tags-trimmed"),
        pytest.param({"word": "ice cream"}, {"word": "ice cream"}, id="space-inside-word"),
    ],
)  # fmt: skip
async def test_create_word_normalises_text(client, auth, payload, expected):
    r = await client.post(
        "/words", headers=auth.headers, json={"word": "w", "definition": "d", **payload}
    )

    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in expected} == expected


async def test_update_word_with_refused_characters_is_422_and_changes_nothing(client, auth):
    word = await make_word(client, auth.headers, word="stable")

    r = await client.patch(
        f"/words/{word['id']}", headers=auth.headers, json={"word": "sta\x1bble"}
    )

    assert r.status_code == 422, r.text
    assert (await Word.get(id=word["id"])).word == "stable"


async def test_update_word_keeps_the_search_keys_in_step(client, auth):
    word = await make_word(client, auth.headers, word="Haus", definition="house", tags=["a"])

    r = await client.patch(
        f"/words/{word['id']}",
        headers=auth.headers,
        json={"word": "Übung", "definition": "Ausführung", "tags": ["ÜBUNG"]},
    )

    assert r.status_code == 200, r.text
    row = await Word.get(id=word["id"])
    assert (row.word_key, row.word_fold, row.definition_fold, row.tags_key) == (
        "übung", "ubung", "ausfuhrung", " übung ",
    )  # fmt: skip
    assert await listed(client, auth, q="ubung") == ["Übung"]
    assert await listed(client, auth, q="haus") == []


# --- The schema says what the server accepts ---

#: Characters at the edges of what the rules distinguish.
PROBES = sorted(
    set(vocab.TRIMMED + vocab.CONTROL + vocab.BIDI_CONTROLS + vocab.INVISIBLE_INSIDE)
    | set("a é\u0301ש\u200c\u00ad\u200e\u2028\U0001f642")
)


@pytest.mark.parametrize("kind", ["word", "tag", "text"])
def test_text_pattern_in_the_schema_agrees_with_the_server(kind):
    pattern = re.compile(vocab.text_pattern(kind))
    texts = {"", *PROBES}
    texts |= {a + b for a, b in product(PROBES, repeat=2)}
    texts |= {a + "x" + b for a, b in product(PROBES, repeat=2)}
    texts |= {"x" + a + b + "y" for a, b in product(PROBES, repeat=2)}
    disagreements = []
    for text in texts:
        try:
            vocab.normalize_text(text, kind, max_length=1000)
            accepted = True
        except PydanticCustomError:
            accepted = False
        if accepted != bool(pattern.fullmatch(text)):
            disagreements.append(text)
    assert disagreements == []


async def test_openapi_schema_documents_the_text_patterns(client):
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    word = schema["WordCreate"]["properties"]
    assert word["word"]["pattern"] == vocab.text_pattern("word")
    assert word["definition"]["pattern"] == vocab.text_pattern("text")
    assert word["tags"]["items"]["pattern"] == vocab.text_pattern("tag")
    assert word["language"]["anyOf"][0]["pattern"] == r"^([A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*)?$"
