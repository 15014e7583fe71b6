"""Importing Anki packages as background jobs (API.md, "Importing Anki packages, with
progress"): the packages Anki itself exported (tests/fixtures/anki, described by its
manifest.json), packages built here (genanki for the legacy format, sqlite3 + zstandard for
the modern one), CSV/TSV through the same jobs, hostile packages, and jobs cut short."""

import asyncio
import io
import json
import os
import random
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsrs_rs_python
import genanki
import httpx
import pytest
import zstandard
from asgi_lifespan import LifespanManager
from conftest import Auth, empty_database, make_word, ts

import vocab
from models import Card, ImportJob, JobStatus, Review, User, Word

FIXTURES = Path(__file__).parent / "fixtures" / "anki"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
PACKAGES = sorted(MANIFEST["files"])
CLOZE_ERROR = "Cloze notes cannot be imported as words"
MIB = 1024 * 1024


# --- Helpers ---


async def post_import(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, filename: str = "deck.apkg"
) -> httpx.Response:
    """POST /imports with `data` as the multipart field `file`."""
    return await client.post(
        "/imports", headers=headers, files={"file": (filename, data, "application/octet-stream")}
    )


async def wait_for(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: int, *, seconds: float = 60
) -> dict[str, Any]:
    """Poll GET /imports/{id} until the job has finished; its last state."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        r = await client.get(f"/imports/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.02)


async def run_import(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, filename: str = "deck.apkg"
) -> dict[str, Any]:
    """Post a file (asserting 202) and wait for its job to finish."""
    r = await post_import(client, headers, data, filename)
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/imports/{r.json()['id']}"
    return await wait_for(client, headers, r.json()["id"])


def assert_422(r: httpx.Response, message: str) -> None:
    """A 422 on the file whose message contains `message`."""
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "file"]
    assert message in error["msg"], error["msg"]


def zipped(entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of these entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zstd_stream(size: int) -> bytes:
    """`size` zero bytes zstd-compressed as a stream (no content size in the frame)."""
    compressor = zstandard.ZstdCompressor().compressobj()
    block = bytes(MIB)
    out = [compressor.compress(block) for _ in range(size // MIB)]
    return b"".join([*out, compressor.flush()])


def anki_day(crt: int, day: int) -> datetime:
    return datetime.fromtimestamp(crt + day * 86400, tz=UTC)


# --- Modern packages, written here with sqlite3 and zstandard ---

MODERN_SCHEMA = """
CREATE TABLE col (id integer PRIMARY KEY, crt integer NOT NULL, mod integer NOT NULL,
  scm integer NOT NULL, ver integer NOT NULL, dty integer NOT NULL, usn integer NOT NULL,
  ls integer NOT NULL, conf text NOT NULL, models text NOT NULL, decks text NOT NULL,
  dconf text NOT NULL, tags text NOT NULL);
CREATE TABLE notes (id integer PRIMARY KEY, guid text NOT NULL, mid integer NOT NULL,
  mod integer NOT NULL, usn integer NOT NULL, tags text NOT NULL, flds text NOT NULL,
  sfld integer NOT NULL, csum integer NOT NULL, flags integer NOT NULL, data text NOT NULL);
CREATE TABLE cards (id integer PRIMARY KEY, nid integer NOT NULL, did integer NOT NULL,
  ord integer NOT NULL, mod integer NOT NULL, usn integer NOT NULL, type integer NOT NULL,
  queue integer NOT NULL, due integer NOT NULL, ivl integer NOT NULL, factor integer NOT NULL,
  reps integer NOT NULL, lapses integer NOT NULL, left integer NOT NULL, odue integer NOT NULL,
  odid integer NOT NULL, flags integer NOT NULL, data text NOT NULL);
CREATE TABLE revlog (id integer PRIMARY KEY, cid integer NOT NULL, usn integer NOT NULL,
  ease integer NOT NULL, ivl integer NOT NULL, lastIvl integer NOT NULL, factor integer NOT NULL,
  time integer NOT NULL, type integer NOT NULL);
CREATE TABLE notetypes (id integer NOT NULL PRIMARY KEY, name text NOT NULL,
  mtime_secs integer NOT NULL, usn integer NOT NULL, config blob NOT NULL);
CREATE TABLE fields (ntid integer NOT NULL, ord integer NOT NULL, name text NOT NULL,
  config blob NOT NULL, PRIMARY KEY (ntid, ord)) without rowid;
CREATE TABLE decks (id integer PRIMARY KEY NOT NULL, name text NOT NULL,
  mtime_secs integer NOT NULL, usn integer NOT NULL, common blob NOT NULL, kind blob NOT NULL);
"""
CRT = 1_791_172_800  # 2026-10-05 04:00 UTC


class ModernCollection:
    """An Anki 2.1.50+ collection, built row by row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.executescript(MODERN_SCHEMA)
        self.db.execute(
            "INSERT INTO col VALUES (1, ?, 0, 0, 18, 0, 0, 0, '', '', '', '', '')", (CRT,)
        )
        self.db.execute("INSERT INTO decks VALUES (1, 'Default', 0, 0, x'', x'')")
        self.next_id = 1_791_190_000_000

    def notetype(self, ntid: int, name: str, fields: list[str], *, cloze: bool = False) -> None:
        config = b"\x08\x01\x1a\x00" if cloze else b"\x1a\x00"
        self.db.execute("INSERT INTO notetypes VALUES (?, ?, 0, 0, ?)", (ntid, name, config))
        for ord_, field_name in enumerate(fields):
            self.db.execute("INSERT INTO fields VALUES (?, ?, ?, x'')", (ntid, ord_, field_name))

    def deck(self, deck_id: int, *parts: str) -> None:
        self.db.execute(
            "INSERT INTO decks VALUES (?, ?, 0, 0, x'', x'')", (deck_id, "\x1f".join(parts))
        )

    def note(self, mid: int, fields: list[str], tags: str = "") -> int:
        self.next_id += 1000
        self.db.execute(
            "INSERT INTO notes VALUES (?, ?, ?, 0, 0, ?, ?, '', 0, 0, '')",
            (
                self.next_id,
                str(self.next_id),
                mid,
                f" {tags} " if tags else "",
                "\x1f".join(fields),
            ),
        )
        return self.next_id

    def card(
        self, nid: int, ord_: int = 0, *, did: int = 1, type_: int = 0, queue: int = 0,
        due: int = 0, ivl: int = 0, factor: int = 0, reps: int = 0, lapses: int = 0,
        data: str = "{}",
    ) -> int:  # fmt: skip
        card_id = nid + ord_
        self.db.execute(
            "INSERT INTO cards VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)",
            (card_id, nid, did, ord_, type_, queue, due, ivl, factor, reps, lapses, data),
        )
        return card_id

    def review(
        self, cid: int, at: datetime, ease: int, ivl: int, type_: int, ms: int = 3000
    ) -> None:
        self.db.execute(
            "INSERT INTO revlog VALUES (?, ?, 0, ?, ?, 0, 0, ?, ?)",
            (int(at.timestamp() * 1000), cid, ease, ivl, ms, type_),
        )

    def package(self) -> bytes:
        """The collection as a modern .apkg: meta (version 3), collection.anki21b, the dummy
        collection.anki2 and an empty media map."""
        self.db.commit()
        self.db.close()
        dummy = self.path.with_suffix(".dummy")
        legacy = sqlite3.connect(dummy)
        legacy.executescript(MODERN_SCHEMA)
        legacy.execute("INSERT INTO col VALUES (1, 0, 0, 0, 11, 0, 0, 0, '', '{}', '{}', '', '')")
        legacy.execute(
            "INSERT INTO notes VALUES (1, 'x', 1, 0, 0, '', ?, '', 0, 0, '')",
            (
                "Please update to the latest Anki version, then import the .colpkg/.apkg file "
                "again.\x1f",
            ),
        )
        legacy.commit()
        legacy.close()
        compressed = zstandard.ZstdCompressor().compress(self.path.read_bytes())
        return zipped(
            {
                "meta": b"\x08\x03",
                "collection.anki21b": compressed,
                "collection.anki2": dummy.read_bytes(),
                "media": zstandard.ZstdCompressor().compress(b""),
            },
            method=zipfile.ZIP_STORED,
        )


@pytest.fixture
def modern(tmp_path: Path) -> ModernCollection:
    collection = ModernCollection(tmp_path / "collection.anki21b.sqlite3")
    collection.notetype(100, "Basic", ["Front", "Back"])
    return collection


# --- The packages Anki exported, against their manifest ---


async def stored_deck(user_id: int) -> dict[str, dict[str, Any]]:
    """The user's words with their cards and review counts, by word."""
    words = {w.id: w for w in await Word.filter(user_id=user_id)}
    cards = await Card.filter(user_id=user_id)
    reviews = await Review.filter(user_id=user_id)
    deck: dict[str, dict[str, Any]] = {}
    for word in words.values():
        deck[word.word] = {
            "word": word,
            "cards": {c.direction.value: c for c in cards if c.word_id == word.id},
            "reviews": sum(1 for r in reviews if r.word_id == word.id),
        }
    return deck


@pytest.mark.parametrize("package", PACKAGES)
async def test_import_anki_package_matches_its_manifest(client, auth: Auth, package: str):
    manifest = MANIFEST["files"][package]

    job = await run_import(client, auth.headers, (FIXTURES / package).read_bytes(), package)

    assert job["status"] == "done", job
    assert job["filename"] == package
    assert job["error"] is None
    assert job["progress"] == {"done": manifest["notes"], "total": manifest["notes"]}
    assert ts(job["finished_at"]) >= ts(job["created_at"])
    assert job["result"] == {
        "created": manifest["importable_notes"],
        "skipped": 0,
        "errors": [{"note": n["note_id"], "detail": CLOZE_ERROR} for n in manifest["cloze_notes"]],
        "reviews_imported": manifest["reviews_importable"],
    }
    deck = await stored_deck(auth.id)
    assert sorted(deck) == sorted(w["word"] for w in manifest["words"])
    assert sorted(w for w, d in deck.items() if d["word"].reverse) == manifest["reverse_words"]
    assert [w for w, d in deck.items() if d["word"].suspended] == manifest["suspended_words"]
    states = {
        state: sorted(
            f"{w}/{direction}"
            for w, d in deck.items()
            for direction, c in d["cards"].items()
            if c.state == state
        )
        for state in manifest["states"]
    }
    assert states == {state: sorted(cards) for state, cards in manifest["states"].items()}
    for expected in manifest["words"]:
        stored = deck[expected["word"]]
        word = stored["word"]
        assert word.definition == expected["definition"]
        assert (word.example or "") == expected["example"]
        assert word.tags.split() == expected["tags"]
        assert stored["reviews"] == expected["reviews"]
        for direction, card_key in (("forward", "forward"), ("reverse", "reverse_card")):
            anki = expected[card_key]
            card = stored["cards"].get(direction)
            if anki is None:
                assert card is None
                continue
            assert card.reps == anki["reps"] and card.lapses == anki["lapses"]
            assert card.active == (
                not anki["suspended"] and (direction == "forward" or word.reverse)
            )
            if anki["fsrs"] is not None:
                assert card.stability == pytest.approx(anki["fsrs"]["stability"], abs=1e-4)
                assert card.fsrs_difficulty == pytest.approx(anki["fsrs"]["difficulty"], abs=1e-4)
                assert card.last_reviewed_at == ts(anki["fsrs"]["last_review_at"])
            else:
                assert card.stability is None
            if anki["due_at"] is not None:
                assert card.due_at == ts(anki["due_at"])
            else:
                assert card.due_at == word.created_at  # new: due since the word was added
    user = await User.get(id=auth.id)
    assert user.word_count == manifest["importable_notes"]


async def test_imported_review_log_shows_in_history_and_stats(client, auth: Auth):
    job = await run_import(client, auth.headers, (FIXTURES / "vocab-modern.apkg").read_bytes())
    assert job["status"] == "done", job
    word = await Word.get(user_id=auth.id, word="café")

    r = await client.get(f"/words/{word.id}/reviews", headers=auth.headers)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 6
    assert [item["rating"] for item in body["items"]] == [
        "good",
        "good",
        "again",
        "good",
        "good",
        "good",
    ]
    assert body["items"][-1]["reviewed_at"].startswith("2026-10-05T09:00:21")
    assert body["items"][-1]["duration_ms"] == 7000
    r = await client.get("/stats", headers=auth.headers)
    assert r.status_code == 200, r.text
    assert r.json()["reviews_total"] == 36
    assert await Review.filter(user_id=auth.id).count() == 36


async def test_import_anki_package_skips_words_the_user_has(client, auth: Auth):
    await make_word(client, auth.headers, word="HAUS", definition="mine already")
    await make_word(client, auth.headers, word="Cafe", definition="no accent: another word")

    job = await run_import(client, auth.headers, (FIXTURES / "vocab-legacy.apkg").read_bytes())

    assert job["status"] == "done", job
    assert job["result"]["created"] == 12
    assert job["result"]["skipped"] == 1
    assert job["result"]["reviews_imported"] == 36 - 4  # Haus's four reviews stay out
    assert (await Word.get(user_id=auth.id, word="HAUS")).definition == "mine already"
    assert await Word.filter(user_id=auth.id).count() == 14
    assert (await User.get(id=auth.id)).word_count == 14


async def test_import_same_package_twice_skips_everything_the_second_time(client, auth: Auth):
    data = (FIXTURES / "vocab-modern.apkg").read_bytes()
    await run_import(client, auth.headers, data)

    job = await run_import(client, auth.headers, data)

    assert job["status"] == "done", job
    assert job["result"]["created"] == 0
    assert job["result"]["skipped"] == 13
    assert job["result"]["reviews_imported"] == 0
    assert await Word.filter(user_id=auth.id).count() == 13
    assert await Review.filter(user_id=auth.id).count() == 36


# --- Packages built here ---


async def test_import_genanki_legacy_package_with_reverse_cards_and_deck_tag(
    client, auth: Auth, tmp_path: Path
):
    deck = genanki.Deck(2059400110, "Spanisch::Essen und Trinken")
    for word, meaning, tags in (
        ("la manzana", "the apple", ["obst"]),
        ("el pan", "the <b>bread</b>", []),
    ):
        deck.add_note(
            genanki.Note(
                model=genanki.BASIC_AND_REVERSED_CARD_MODEL, fields=[word, meaning], tags=tags
            )
        )
    deck.add_note(genanki.Note(model=genanki.BASIC_MODEL, fields=["el agua", "the water"]))
    path = tmp_path / "spanish.apkg"
    genanki.Package(deck).write_to_file(path)

    job = await run_import(client, auth.headers, path.read_bytes(), "spanish.apkg")

    assert job["status"] == "done", job
    assert job["result"] == {"created": 3, "skipped": 0, "errors": [], "reviews_imported": 0}
    words = {w.word: w for w in await Word.filter(user_id=auth.id)}
    assert sorted(words) == ["el agua", "el pan", "la manzana"]
    assert words["el pan"].definition == "the bread"
    assert words["la manzana"].tags.split() == ["obst", "Spanisch::Essen_und_Trinken"]
    assert [w for w in sorted(words) if words[w].reverse] == ["el pan", "la manzana"]
    cards = await Card.filter(user_id=auth.id)
    assert len(cards) == 5
    assert {c.state for c in cards} == {"new"}


async def test_import_modern_package_rebuilds_fsrs_state_from_the_review_log(
    client, auth: Auth, modern: ModernCollection
):
    nid = modern.note(100, ["Baum", "tree"], "natur")
    first = anki_day(CRT, 0) + timedelta(hours=5)
    cid = modern.card(nid, type_=2, queue=2, due=12, ivl=9, factor=2500, reps=3)  # no "s"/"d"
    modern.review(cid, first, 3, -600, 0)
    modern.review(cid, first + timedelta(minutes=10), 3, 3, 0)
    modern.review(cid, first + timedelta(days=3), 3, 9, 1)

    job = await run_import(client, auth.headers, modern.package())

    assert job["status"] == "done", job
    assert job["result"] == {"created": 1, "skipped": 0, "errors": [], "reviews_imported": 3}
    card = await Card.get(user_id=auth.id)
    model = fsrs_rs_python.FSRS(fsrs_rs_python.DEFAULT_PARAMETERS)
    item = fsrs_rs_python.FSRSItem([fsrs_rs_python.FSRSReview(3, gap) for gap in (0, 0, 3)])
    rebuilt = model.memory_state(item)
    assert card.state == "review"
    assert card.stability == pytest.approx(rebuilt.stability, rel=1e-5)
    assert card.fsrs_difficulty == pytest.approx(rebuilt.difficulty, rel=1e-5)
    assert card.due_at == anki_day(CRT, 12)
    assert card.last_reviewed_at == first + timedelta(days=3)
    reviews = await Review.filter(card_id=card.id).order_by("reviewed_at")
    assert [(r.state_before, r.state_after) for r in reviews] == [
        ("new", "learning"),
        ("learning", "review"),
        ("review", "review"),
    ]
    assert reviews[-1].stability_after == pytest.approx(rebuilt.stability, rel=1e-5)
    assert reviews[-1].due_after == first + timedelta(days=12)


async def test_import_modern_package_maps_fields_by_name_then_position(
    client, auth: Auth, modern: ModernCollection
):
    modern.notetype(200, "Japanese", ["Sentence", "Kanji", "Reading", "Meaning"])
    modern.notetype(300, "Anything", ["One", "Two", "Three"])
    modern.notetype(400, "Cloze", ["Text", "Back Extra"], cloze=True)
    modern.deck(7, "Japanisch", "N5")
    japanese = modern.note(200, ["猫が好き。[sound:neko.mp3]", "猫", "ねこ", "cat"])
    modern.card(japanese, did=7)
    anything = modern.note(300, ["uno", "one&nbsp;<br>1", "not an example"])
    modern.card(anything)
    cloze = modern.note(400, ["{{c1::Berlin}} is a city", ""])
    modern.card(cloze)
    empty = modern.note(100, ["<img src='x.png'>", "a picture"])
    modern.card(empty)

    job = await run_import(client, auth.headers, modern.package())

    assert job["status"] == "done", job
    assert job["result"]["created"] == 2
    assert job["result"]["errors"] == [
        {"note": cloze, "detail": CLOZE_ERROR},
        {
            "note": empty,
            "detail": "The note's word field is empty (once HTML and sounds are removed)",
        },
    ]
    words = {w.word: w for w in await Word.filter(user_id=auth.id)}
    # "Meaning" and "Sentence" say what they are; the word is the first field left.
    assert (words["猫"].definition, words["猫"].example) == ("cat", "猫が好き。")
    assert words["猫"].tags.split() == ["Japanisch::N5"]
    assert (words["uno"].definition, words["uno"].example) == ("one 1", None)


async def test_import_modern_package_suspended_reverse_card_turns_reverse_off(
    client, auth: Auth, modern: ModernCollection
):
    modern.notetype(101, "Basic (and reversed card)", ["Front", "Back"])
    nid = modern.note(101, ["hier", "here"])
    modern.card(nid, 0)
    modern.card(nid, 1, queue=-1)

    job = await run_import(client, auth.headers, modern.package())

    assert job["status"] == "done", job
    word = await Word.get(user_id=auth.id)
    assert (word.reverse, word.suspended) == (False, False)
    cards = {c.direction: c.active for c in await Card.filter(word_id=word.id)}
    assert cards == {"forward": True, "reverse": False}


# --- CSV and TSV through the same jobs ---


async def test_import_csv_file_as_a_job(client, auth: Auth):
    content = (
        "word,definition,tags\nFernweh,longing for far places,noun b2\nFernweh,again,\n,no word,\n"
    )

    job = await run_import(client, auth.headers, content.encode(), "words.csv")

    assert job["status"] == "done", job
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["result"]["created"] == 1
    assert job["result"]["skipped"] == 1
    assert [e["line"] for e in job["result"]["errors"]] == [4]
    word = await Word.get(user_id=auth.id)
    assert (word.word, word.tags.split()) == ("Fernweh", ["noun", "b2"])
    assert await Card.filter(word_id=word.id).count() == 1


async def test_import_tsv_named_apkg_is_read_as_tsv(client, auth: Auth):
    job = await run_import(client, auth.headers, b"hygge\tcosiness\n", "not-really.apkg")

    assert job["status"] == "done", job
    assert job["result"] == {"created": 1, "skipped": 0, "errors": []}
    assert [w.word for w in await Word.filter(user_id=auth.id)] == ["hygge"]


# --- Jobs: listing, ownership, limits ---


async def test_read_imports_lists_own_jobs_newest_first(client, auth: Auth, other_auth: Auth):
    first = await run_import(client, auth.headers, b"a,b\n", "one.csv")
    second = await run_import(client, auth.headers, b"c,d\n", "two.csv")
    await run_import(client, other_auth.headers, b"e,f\n", "theirs.csv")

    r = await client.get("/imports", headers=auth.headers, params={"limit": 1, "offset": 1})

    assert r.status_code == 200, r.text
    assert r.json() == {"items": [first], "total": 2, "limit": 1, "offset": 1}
    r = await client.get("/imports", headers=auth.headers)
    assert [job["id"] for job in r.json()["items"]] == [second["id"], first["id"]]
    assert await ImportJob.filter(user_id=auth.id).count() == 2


async def test_read_import_of_other_user_is_404(client, auth: Auth, other_auth: Auth):
    job = await run_import(client, auth.headers, b"a,b\n")

    r = await client.get(f"/imports/{job['id']}", headers=other_auth.headers)

    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "Import not found"}
    assert (await ImportJob.get(id=job["id"])).user_id == auth.id


@pytest.mark.parametrize("path", ["/imports", "/imports/1"])
async def test_imports_need_a_token(client, path: str):
    r = await client.get(path)

    assert r.status_code == 401, r.text
    assert await ImportJob.all().count() == 0


async def test_import_over_package_limit_is_413(client, auth: Auth, monkeypatch):
    monkeypatch.setattr(vocab.settings, "IMPORT_PACKAGE_MAX_BYTES", 4096)

    r = await post_import(client, auth.headers, (FIXTURES / "vocab-modern.apkg").read_bytes())

    assert r.status_code == 413, r.text
    assert r.json() == {"detail": "File is larger than 4096 bytes"}
    assert await ImportJob.all().count() == 0


async def test_import_csv_over_5_mb_is_413(client, auth: Auth):
    r = await post_import(
        client, auth.headers, b"w,d\n" * (vocab.IMPORT_MAX_BYTES // 4 + 1), "big.csv"
    )

    assert r.status_code == 413, r.text
    assert await ImportJob.all().count() == 0


# --- Hostile and broken packages ---


async def test_import_random_binary_is_422(client, auth: Auth):
    r = await post_import(client, auth.headers, random.Random(14).randbytes(4096), "noise.bin")

    assert_422(r, "neither an Anki package")
    assert await ImportJob.all().count() == 0


async def test_import_truncated_zip_is_422(client, auth: Auth):
    data = (FIXTURES / "vocab-legacy.apkg").read_bytes()

    r = await post_import(client, auth.headers, data[: len(data) // 2])

    assert_422(r, "not a complete zip archive")
    assert await ImportJob.all().count() == 0


async def test_import_zip_without_a_collection_is_422(client, auth: Auth):
    r = await post_import(client, auth.headers, zipped({"notes.txt": b"hello", "media": b"{}"}))

    assert_422(r, "not an Anki package")
    assert await Word.all().count() == 0


async def test_import_zip_bomb_is_422_before_unpacking(client, auth: Auth):
    bomb = zipped({"meta": b"\x08\x02", "collection.anki21": bytes(64 * MIB)})
    assert len(bomb) < MIB

    r = await post_import(client, auth.headers, bomb)

    assert_422(r, "zip or zstd bomb")
    assert await ImportJob.all().count() == 0


async def test_import_collection_over_the_size_cap_is_422(client, auth: Auth, monkeypatch):
    monkeypatch.setattr(vocab, "ANKI_COLLECTION_MAX_BYTES", 64 * 1024)

    r = await post_import(client, auth.headers, (FIXTURES / "vocab-legacy.apkg").read_bytes())

    assert_422(r, "unpacks to more than 65536 bytes")
    assert await ImportJob.all().count() == 0


async def test_import_zstd_bomb_declaring_its_size_is_422(client, auth: Auth):
    bomb = zstandard.ZstdCompressor().compress(bytes(64 * MIB))
    package = zipped({"meta": b"\x08\x03", "collection.anki21b": bomb}, method=zipfile.ZIP_STORED)

    r = await post_import(client, auth.headers, package)

    assert_422(r, "zip or zstd bomb")
    assert await ImportJob.all().count() == 0


async def test_import_zstd_bomb_streamed_fails_the_job_at_the_cap(client, auth: Auth):
    package = zipped(
        {"meta": b"\x08\x03", "collection.anki21b": zstd_stream(64 * MIB)},
        method=zipfile.ZIP_STORED,
    )

    job = await run_import(client, auth.headers, package)

    assert job["status"] == "failed", job
    assert "zip or zstd bomb" in job["error"]
    assert job["result"] is None
    assert await Word.all().count() == 0


async def test_import_damaged_zstd_collection_fails_the_job(client, auth: Auth):
    modern = zipfile.ZipFile(FIXTURES / "vocab-modern.apkg").read("collection.anki21b")
    damaged = modern[:8] + b"\xff" * 100  # a frame header, then garbage
    package = zipped({"meta": b"\x08\x03", "collection.anki21b": damaged})

    job = await run_import(client, auth.headers, package)

    assert job["status"] == "failed", job
    assert job["error"] == "The package's collection is damaged and cannot be unpacked"
    assert await Word.all().count() == 0


async def test_import_path_traversal_names_are_never_paths(client, auth: Auth, tmp_path: Path):
    target = tmp_path / "escaped"
    legacy = zipfile.ZipFile(FIXTURES / "vocab-legacy.apkg")
    entries = {
        f"../../../../../../{target}": b"x",
        str(target): b"x",
        "../collection.anki2": b"not a collection",
        "collection.anki21": legacy.read("collection.anki21"),
        "meta": b"\x08\x02",
    }

    job = await run_import(client, auth.headers, zipped(entries))

    assert job["status"] == "done", job
    assert job["result"]["created"] == 13
    assert not target.exists()
    r = await post_import(
        client, auth.headers, zipped({"../collection.anki2": b"x", "/collection.anki21": b"y"})
    )
    assert_422(r, "not an Anki package")


async def test_import_announced_modern_collection_missing_is_422(client, auth: Auth):
    legacy = zipfile.ZipFile(FIXTURES / "vocab-legacy.apkg")

    r = await post_import(
        client,
        auth.headers,
        zipped({"meta": b"\x08\x03", "collection.anki2": legacy.read("collection.anki2")}),
    )

    assert_422(r, "announces collection.anki21b")
    assert await ImportJob.all().count() == 0


@pytest.mark.parametrize(
    ("collection", "error"),
    [
        pytest.param(
            b"SQLite format 3\x00" + bytes(200), "not a readable Anki collection", id="not-sqlite"
        ),
        pytest.param(None, "no cards, revlog table", id="missing-tables"),
        pytest.param("broken-columns", "no such column", id="missing-columns"),
    ],
)
async def test_import_collection_with_broken_schema_fails_the_job(
    client, auth: Auth, tmp_path: Path, collection: bytes | str | None, error: str
):
    if not isinstance(collection, bytes):
        path = tmp_path / "broken.sqlite3"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE col (id integer, crt integer, models text, decks text)")
        db.execute("INSERT INTO col VALUES (1, 0, '{}', '{}')")
        db.execute("CREATE TABLE notes (id integer, mid integer)")
        if collection == "broken-columns":
            db.execute("CREATE TABLE cards (id integer)")
            db.execute("CREATE TABLE revlog (id integer)")
        db.commit()
        db.close()
        collection = path.read_bytes()

    job = await run_import(client, auth.headers, zipped({"collection.anki2": collection}))

    assert job["status"] == "failed", job
    assert error in job["error"]
    assert await Word.all().count() == 0


async def test_import_collection_that_reads_too_long_fails_the_job(
    client, auth: Auth, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(vocab, "ANKI_READ_SECONDS", 0)  # every statement is past its time
    path = tmp_path / "slow.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MODERN_SCHEMA)
    db.execute("INSERT INTO col VALUES (1, 0, 0, 0, 18, 0, 0, 0, '', '', '', '', '')")
    rows = [(i, str(i), 1, "", f"w{i}\x1fd") for i in range(1, 20_001)]
    db.executemany("INSERT INTO notes VALUES (?, ?, ?, 0, 0, ?, ?, '', 0, 0, '')", rows)
    db.commit()
    db.close()

    job = await run_import(client, auth.headers, zipped({"collection.anki2": path.read_bytes()}))

    assert job["status"] == "failed", job
    assert job["error"] == "Reading the package's collection took too long"
    assert await Word.all().count() == 0


# --- Jobs cut short ---


async def test_import_job_interrupted_by_shutdown_and_crash_fails_without_partial_words(
    tmp_path: Path, monkeypatch
):
    if vocab.DIALECT == "sqlite":  # a database that outlives the app
        credentials = vocab.TORTOISE_ORM["connections"]["default"]["credentials"]
        monkeypatch.setitem(credentials, "file_path", str(tmp_path / "vocab.sqlite3"))
    wrote_once = asyncio.Event()
    real_insert = vocab.insert_planned

    async def insert_then_hang(user: User, words: list) -> int:
        reviews = await real_insert(user, words)
        wrote_once.set()
        await asyncio.Event().wait()  # the process stops here, mid-transaction
        return reviews

    monkeypatch.setattr(vocab, "insert_planned", insert_then_hang)
    monkeypatch.setattr(vocab, "JOB_BATCH", 2)
    async with LifespanManager(vocab.app) as manager:
        if os.environ.get("TEST_DATABASE_URL"):
            await empty_database()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            auth = await Auth(client, email="ada@example.com").setup()
            r = await post_import(
                client, auth.headers, (FIXTURES / "vocab-modern.apkg").read_bytes()
            )
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            await asyncio.wait_for(wrote_once.wait(), 30)
            # (No query here: on SQLite the job's transaction holds the one connection.)
            assert list(vocab.import_jobs.tasks.values()) == [job_id]
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < vocab.JOB_STOP_SECONDS

    async with LifespanManager(vocab.app) as manager:
        job = await ImportJob.get(id=job_id)
        assert (job.status, job.error) == (JobStatus.FAILED, vocab.SHUT_DOWN)
        assert await Word.all().count() == 0
        assert await Card.all().count() == 0
        # A crash leaves the job running with a heartbeat that stopped long ago: the next
        # start-up marks it failed.
        await ImportJob.filter(id=job_id).update(
            status=JobStatus.RUNNING, error=None, finished_at=None,
            heartbeat_at=vocab.utcnow() - timedelta(minutes=5),
        )  # fmt: skip
    async with LifespanManager(vocab.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            auth = Auth(client, email="ada@example.com")
            assert (await auth.login()).status_code == 200
            r = await client.get(f"/imports/{job_id}", headers=auth.headers)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed"
        assert r.json()["error"] == vocab.ABANDONED
        assert await Word.all().count() == 0
        assert await Review.all().count() == 0
