"""The hot reads whose SQL the ORM builds once (vocab.PreparedQuery) return exactly what the
ORM's own query returns, on whichever database the suite runs, and the one-round-trip word
read still tells a missing word (404) from a token that no longer counts (401)."""

from datetime import timedelta
from typing import Any

from conftest import WORD_NOT_FOUND, assert_401, make_review, make_word
from tortoise.expressions import F
from tortoise.transactions import in_transaction

import vocab
from models import Card, User, Word


def fields_of(user: User) -> dict[str, Any]:
    """Every stored field of a user object."""
    return {name: getattr(user, name) for name in User._meta.db_fields}


async def test_user_by_id_is_the_orm_query(client, auth, other_auth):
    await User.filter(id=auth.id).update(fsrs_parameters=[0.5] * 21, reverse_cards=True)
    for user_id in (auth.id, other_auth.id, other_auth.id + 1000):
        prepared = await vocab.USER_BY_ID.objects(user_id)
        orm = await User.filter(id=user_id)
        assert [fields_of(u) for u in prepared] == [fields_of(u) for u in orm]
        assert [type(u) for u in prepared] == [User] * len(orm)
    assert len(await vocab.USER_BY_ID.objects(auth.id)) == 1
    assert await vocab.USER_BY_ID.objects(other_auth.id + 1000) == []


async def test_word_with_owner_is_the_orm_query(client, auth, other_auth):
    plain = await make_word(client, auth.headers, word="plain", tags=["a", "b"])
    both_ways = await make_word(
        client, auth.headers, word="both", reverse=True, language="de", example="ein Beispiel"
    )
    await make_review(client, auth.headers, both_ways["id"], rating="hard")
    await make_review(client, auth.headers, both_ways["id"], rating="easy", direction="reverse")
    r = await client.patch(f"/words/{plain['id']}", headers=auth.headers, json={"suspended": True})
    assert r.status_code == 200, r.text
    await User.filter(id=auth.id).update(fsrs_parameters=[0.4] * 21)
    columns = (*vocab.WORD_AND_CARD, "user__token_version", "user__fsrs_parameters")
    cases = [
        (plain["id"], auth.id),
        (both_ways["id"], auth.id),
        (both_ways["id"], other_auth.id),  # another user's word: no rows
        (both_ways["id"] + 1000, auth.id),
    ]
    for word_id, user_id in cases:
        prepared = await vocab.WORD_WITH_OWNER.rows(word_id, user_id)
        orm = await Word.filter(id=word_id, user_id=user_id).values(*columns)
        key = lambda row: row["cards__direction"]  # noqa: E731 (the order is the database's)
        assert sorted(prepared, key=key) == sorted(orm, key=key)
    rows = await vocab.WORD_WITH_OWNER.rows(both_ways["id"], auth.id)
    assert len(rows) == 2 and {row["user__fsrs_parameters"][0] for row in rows} == {0.4}


async def test_one_round_trip_read_tells_404_from_401(client, auth, other_auth):
    word = await make_word(client, auth.headers)
    r = await client.get(f"/words/{word['id']}", headers=other_auth.headers)
    assert r.status_code == 404, r.text
    assert r.json() == WORD_NOT_FOUND
    r = await client.get(f"/words/{word['id']}", headers=auth.headers)
    assert r.status_code == 200, r.text
    # A password change moves the token version on: the same token now fails, found or not.
    await User.filter(id=auth.id).update(token_version=1)
    assert_401(await client.get(f"/words/{word['id']}", headers=auth.headers))
    assert_401(await client.get(f"/words/{word['id'] + 1}", headers=auth.headers))
    # A deleted account's token fails too, where its words went with it.
    r = await client.delete("/users/me", headers=other_auth.headers)
    assert r.status_code == 204, r.text
    assert_401(await client.get(f"/words/{word['id']}", headers=other_auth.headers))
    assert await Word.filter(id=word["id"]).exists()


async def test_newest_page_is_the_orm_query(client, auth, other_auth):
    for n in range(7):
        await make_word(client, auth.headers, word=f"word {n}", reverse=n % 2 == 0)
    await make_word(client, other_auth.headers, word="not alice's")
    await make_review(client, auth.headers, (await Word.filter(word="word 3").first()).id)
    cases = [(auth.id, 0, 50), (auth.id, 0, 3), (auth.id, 3, 3), (auth.id, 6, 50), (auth.id, 9, 5)]
    cases += [(other_auth.id, 0, 50), (other_auth.id + 1000, 0, 50)]
    for user_id, offset, limit in cases:
        prepared = await vocab.NEWEST_PAGE.rows(user_id, offset, limit)
        orm = await vocab.word_page(user_id, offset, limit)
        assert prepared == orm
    page = await vocab.NEWEST_PAGE.rows(auth.id, 3, 3)
    assert [row["word"] for row in page] == ["word 3", "word 2", "word 1"]
    assert {row["user__word_count"] for row in page} == {7}


def card_fields(card: Any) -> dict[str, Any]:
    """Every stored field of a card, and of the word read along with it."""
    fields = {name: getattr(card, name) for name in card._meta.db_fields}
    return fields | {f"word.{name}": getattr(card.word, name) for name in Word._meta.db_fields}


async def test_cards_for_update_is_the_orm_query(client, auth, other_auth):
    word = await make_word(client, auth.headers, reverse=True, tags=["x"])
    await make_review(client, auth.headers, word["id"], rating="again")
    single = await make_word(client, auth.headers, word="single")
    cases = [(word["id"], auth.id), (single["id"], auth.id), (word["id"], other_auth.id)]
    for word_id, user_id in cases:
        async with in_transaction():
            prepared = await vocab.CARDS_FOR_UPDATE.objects(word_id, user_id)
            query = Card.filter(word_id=word_id, user_id=user_id).select_related("word")
            orm = await query.order_by("id").select_for_update(of=("cards",))
        assert [card_fields(c) for c in prepared] == [card_fields(c) for c in orm]
    cards = await vocab.CARDS_FOR_UPDATE.objects(word["id"], auth.id)
    assert [c.direction for c in cards] == ["forward", "reverse"]
    assert cards[0].reps == 1 and cards[0].word.word == "serendipity"


def stored_fields(card: Card) -> dict[str, Any]:
    """Every stored field of a card."""
    return {name: getattr(card, name) for name in Card._meta.db_fields}


async def test_study_queue_queries_are_the_orm_queries(client, auth, other_auth):
    words = [
        await make_word(client, auth.headers, word=f"word {n}", reverse=n % 3 == 0)
        for n in range(8)
    ]
    await make_word(client, other_auth.headers, word="not alice's")
    for word in words[:5]:
        await make_review(client, auth.headers, word["id"], rating="again")
    await make_review(client, auth.headers, words[0]["id"], rating="easy", direction="reverse")
    r = await client.patch(
        f"/words/{words[1]['id']}", headers=auth.headers, json={"suspended": True}
    )
    assert r.status_code == 200, r.text
    # Spread the reviewed cards' due dates over the days around now.
    now = vocab.utcnow()
    for n, card in enumerate(await Card.filter(user_id=auth.id, reps__gt=0).order_by("id")):
        await Card.filter(id=card.id).update(due_at=now + timedelta(days=n - 3))
    ids = [word["id"] for word in words]
    for user_id in (auth.id, other_auth.id, other_auth.id + 1000):
        for moment in (now - timedelta(days=5), now, now + timedelta(days=1, hours=3)):
            prepared = await vocab.REVIEWS_SINCE.rows(user_id, moment)
            orm = await vocab.reviews_since(user_id, moment)
            key = lambda row: row["state_before"]  # noqa: E731 (the order is the database's)
            assert sorted(prepared, key=key) == sorted(orm, key=key)
            assert await vocab.DUE_COUNT.rows(user_id, moment) == await vocab.due_count(
                user_id, moment
            )
            for limit in (1, 2, 20):
                cards = await vocab.DUE_REVIEWS.objects(user_id, moment, limit)
                orm_cards = await vocab.due_reviews(user_id, moment, limit)
                assert [stored_fields(c) for c in cards] == [stored_fields(c) for c in orm_cards]
                cards = await vocab.FIRST_NEW_CARDS.objects(user_id, limit)
                orm_cards = await vocab.first_new_cards(user_id, limit)
                assert [stored_fields(c) for c in cards] == [stored_fields(c) for c in orm_cards]
        # A list argument: the SQL is built for each length, and each gives the ORM's rows.
        for word_ids in ([], ids[:1], ids[2:5], [*ids, ids[0] + 1000], ids[::-1][:3]):
            prepared = await vocab.WORDS_BY_ID.rows(user_id, word_ids)
            orm = await vocab.words_by_id(user_id, word_ids)
            key = lambda row: (row["id"], row["cards__direction"])  # noqa: E731
            assert sorted(prepared, key=key) == sorted(orm, key=key)
    assert {(0,), (1,), (3,), (9,)} <= set(vocab.WORDS_BY_ID.statements)
    # The figures the study queue shows, from the prepared queries.
    [due] = await vocab.DUE_COUNT.rows(auth.id, now)
    # Due by now: 3 reviewed cards (of the first four by id, less the suspended word's), and
    # the 5 new ones (words 5 to 7 forward, and the reverse cards of words 3 and 6).
    assert due["n"] == 3 + 5
    rows = await vocab.REVIEWS_SINCE.rows(auth.id, now - timedelta(days=1))
    assert {row["state_before"]: row["n"] for row in rows} == {"new": 6}


async def test_add_to_word_count_is_the_orm_update(client, auth, other_auth):
    await make_word(client, auth.headers, word="one")
    await make_word(client, auth.headers, word="two")
    for change in (3, -1, 1_000):
        await vocab.ADD_TO_WORD_COUNT.execute(auth.id, change)
        await User.filter(id=other_auth.id).update(word_count=F("word_count") + change)
    counts = dict(
        await User.filter(id__in=[auth.id, other_auth.id]).values_list("id", "word_count")
    )
    assert counts == {auth.id: 2 + 1_002, other_auth.id: 1_002}
    await vocab.ADD_TO_WORD_COUNT.execute(other_auth.id + 1000, 5)  # no such user: no change
    assert await User.filter(word_count=1_002).count() == 1
