import logging
import unicodedata

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Written by hand around the generated SQL: text in Unicode NFC, the new duplicate key and the
# search keys, for the words that exist already. The rules are copied here from vocab.py as they
# stand in this migration (a migration must keep doing what it did when vocab changes later).
# What the API would now refuse inside a text is kept as it is (and counted in the log); only
# what the API itself does to new text is done: NFC, CR and CRLF as LF in definitions and
# examples, trimming. Tags become what the API showed: the old code split them at any character
# Python calls whitespace, U+001C–U+001F included.
# Words of one user that are now the same word in the same language all stay: the oldest keeps
# the key, each later one gets its id after a U+001F in its key (which no API input can hold),
# and the log names them.

log = logging.getLogger("vocab.migrations")
#: PostgreSQL's placeholders.
P1, P2 = "$1", "$2"
PLACEHOLDERS = [f"${n}" for n in range(1, 10)]

WHITESPACE = "".join(
    chr(c)
    for first, last in (
        (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
        (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
        (0x3000, 0x3000),
    )
    for c in range(first, last + 1)
)
TRIMMED = WHITESPACE + "\u200b\u200c\u200d\u2060\ufeff"
REFUSED_IN_WORDS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u2060\ufeff"
)
IGNORED_MARKS = [
    chr(c)
    for first, last in (
        (0x0300, 0x036F), (0x0483, 0x0489), (0x0591, 0x05C7), (0x0610, 0x061A),
        (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06ED), (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE00, 0xFE0F), (0xFE20, 0xFE2F),
        (0xE0100, 0xE01EF),
    )
    for c in range(first, last + 1)
    if unicodedata.category(chr(c)) == "Mn"
]
INVISIBLE_IN_SEARCH = "\u00ad\u061c\u0640\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
SEARCH_FOLDS = str.maketrans(
    dict.fromkeys([*IGNORED_MARKS, *INVISIBLE_IN_SEARCH])
    | {"ı": "i", "ł": "l", "đ": "d", "ø": "o", "ħ": "h", "æ": "ae", "œ": "oe"}
)
LIMITS = {"word": 100, "definition": 1000, "example": 1000, "tag": 32}
COLUMNS = (
    "word", "word_key", "word_fold", "definition", "definition_fold", "example", "tags", "tags_key",
)


def normal(text: str, limit: int, *, multiline: bool = False) -> str:
    """The text as the API now stores it, or as it was when that would empty it or make it
    longer than its column."""
    normalised = unicodedata.normalize("NFC", text)
    if multiline:
        normalised = normalised.replace("\r\n", "\n").replace("\r", "\n")
    normalised = normalised.strip(TRIMMED)
    return normalised if 0 < len(normalised) <= limit else text


def search_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return unicodedata.normalize("NFC", decomposed.translate(SEARCH_FOLDS))


TURKISH_I = str.maketrans({"İ": "i", "ı": "i"})


def tag_key(tag: str) -> str:
    trimmed = unicodedata.normalize("NFC", tag.strip(TRIMMED)).translate(TURKISH_I)
    return unicodedata.normalize("NFC", trimmed.casefold())


def padded(items: list[str]) -> str:
    return " " + " ".join(dict.fromkeys(items)) + " "


def migrated(row: dict) -> dict:
    """A stored word's text columns under the new rules (the key before disambiguation)."""
    word = normal(row["word"], LIMITS["word"])
    definition = normal(row["definition"], LIMITS["definition"], multiline=True)
    example = row["example"]
    if example is not None:
        example = normal(example, LIMITS["example"], multiline=True)
        example = example if example.strip(TRIMMED) else None
    tags = [normal(tag, LIMITS["tag"]) for tag in row["tags"].split()]
    tags = [tag for tag in tags if tag.strip(TRIMMED)]
    return {
        "word": word,
        "word_key": word.lower(),
        "word_fold": search_key(word)[:600],
        "definition": definition,
        "definition_fold": search_key(definition),
        "example": example,
        "tags": padded(tags),
        "tags_key": padded([tag_key(tag) for tag in tags]),
    }


async def migrate_words(db: BaseDBAsyncClient) -> None:
    """Recompute every word's text columns, one user at a time."""
    users = await db.execute_query_dict(
        'SELECT DISTINCT "user_id" FROM "words" ORDER BY "user_id"'
    )
    changed = refused = same = 0
    for user in users:
        rows = await db.execute_query_dict(
            'SELECT "id", "language", "word", "word_key", "definition", "example", "tags" '
            f'FROM "words" WHERE "user_id" = {P1} ORDER BY "id"',
            [user["user_id"]],
        )
        new = {row["id"]: migrated(row) for row in rows}
        # The oldest word keeps its key; a later one that is now the same word gets its id.
        holders: dict[tuple[str, str], list[dict]] = {}
        for row in rows:
            holders.setdefault((row["language"], new[row["id"]]["word_key"]), []).append(row)
        taken = {(row["language"], row["word_key"]) for row in rows}
        taken |= {(row["language"], new[row["id"]]["word_key"]) for row in rows}
        for (language, key), group in holders.items():
            if len(group) == 1:
                continue
            for row in group[1:]:
                unique = f"{key}\x1f{row['id']}"
                while (language, unique) in taken:
                    unique += "\x1f"
                taken.add((language, unique))
                new[row["id"]]["word_key"] = unique
            same += len(group) - 1
            log.warning(
                "user %s: words %s are now one word, %r (language %r); all are kept, the "
                "later ones with a disambiguated key",
                user["user_id"],
                ", ".join(str(row["id"]) for row in group),
                new[group[0]["id"]]["word"],
                language or None,
            )
        # Keys move in two steps, through a temporary key of each word's own, so that no
        # update meets a key that another word is about to give up.
        moving = [row for row in rows if new[row["id"]]["word_key"] != row["word_key"]]
        temporary = []
        for row in moving:
            key = f"\x1f\x1e{row['id']}"
            while (row["language"], key) in taken:
                key += "\x1e"
            temporary.append([key, row["id"]])
        if temporary:
            await db.execute_many(
                f'UPDATE "words" SET "word_key" = {P1} WHERE "id" = {P2}', temporary
            )
        assignments = ", ".join(f'"{c}" = {p}' for c, p in zip(COLUMNS, PLACEHOLDERS))
        await db.execute_many(
            f'UPDATE "words" SET {assignments} WHERE "id" = {PLACEHOLDERS[len(COLUMNS)]}',
            [[*(new[row["id"]][column] for column in COLUMNS), row["id"]] for row in rows],
        )
        texts = ("word", "definition", "example", "tags")
        changed += sum(any(new[row["id"]][c] != row[c] for c in texts) for row in rows)
        refused += sum(
            any(char in REFUSED_IN_WORDS for char in new[row["id"]]["word"]) for row in rows
        )
    if users:
        log.info(
            "unicode text: %d words' text normalised; %d kept beside an older word that is now "
            "the same; %d hold characters the API now refuses in a word (kept as they are)",
            changed,
            same,
            refused,
        )


async def upgrade(db: BaseDBAsyncClient) -> str:
    await db.execute_script("""
        ALTER TABLE "words" ADD COLUMN IF NOT EXISTS "word_fold" VARCHAR(600) NOT NULL DEFAULT '';
        ALTER TABLE "words" ADD COLUMN IF NOT EXISTS "definition_fold" TEXT NOT NULL DEFAULT '';
        ALTER TABLE "words" ADD COLUMN IF NOT EXISTS "tags_key" TEXT NOT NULL DEFAULT ' ';""")
    await migrate_words(db)
    # `q` and `tag` compare the search and tag keys with LIKE '%...%' (Tortoise's `contains`,
    # which casts to VARCHAR): trigram indexes on exactly those expressions. They replace the
    # indexes of the case-insensitive LIKE on the text itself, which nothing uses any more.
    return """
        CREATE INDEX IF NOT EXISTS "idx_words_user_id_1fb48e" ON "words" ("user_id", "word_fold", "id");
        DROP INDEX IF EXISTS "idx_words_word_trgm";
        DROP INDEX IF EXISTS "idx_words_definition_trgm";
        CREATE INDEX IF NOT EXISTS "idx_words_word_fold_trgm"
            ON "words" USING gin (CAST("word_fold" AS VARCHAR) gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS "idx_words_definition_fold_trgm"
            ON "words" USING gin (CAST("definition_fold" AS VARCHAR) gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS "idx_words_tags_key_trgm"
            ON "words" USING gin (CAST("tags_key" AS VARCHAR) gin_trgm_ops);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Word keys stay lower-cased (the old case-folded keys could collide: Masse and Maße).
    return """
        DROP INDEX IF EXISTS "idx_words_tags_key_trgm";
        DROP INDEX IF EXISTS "idx_words_definition_fold_trgm";
        DROP INDEX IF EXISTS "idx_words_word_fold_trgm";
        CREATE INDEX IF NOT EXISTS "idx_words_word_trgm"
            ON "words" USING gin (UPPER(CAST("word" AS VARCHAR)) gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS "idx_words_definition_trgm"
            ON "words" USING gin (UPPER(CAST("definition" AS VARCHAR)) gin_trgm_ops);
        DROP INDEX IF EXISTS "idx_words_user_id_1fb48e";
        ALTER TABLE "words" DROP COLUMN "definition_fold";
        ALTER TABLE "words" DROP COLUMN "tags_key";
        ALTER TABLE "words" DROP COLUMN "word_fold";"""


MODELS_STATE = (
    "eJztXG1T2zgQ/isaf6IzHAMJDT3u5mYChDZXSDpJKL2WjkfESqLBkV3LLmR6/PeT5PcXGT"
    "uEkPj8hYmlXcl+VlrtI634pcwNDel0b4AmFqKzkXGHiHIMfikEzhH7kVm/CxRommEtL7Dh"
    "rS4ULFdStbmoqIK31Lbg2Ga1E6hTxIo0RMcWNm1s8N6UPkEAU+ogDXjqQKjvgjti3BNwuw"
    "DYpuDv6xHAGjCIvgA7EGjO3ATGBNgzTIHoH+jGlAJiMBHWIHmzx7vXjDHrH5Ppi/fkEPzD"
    "QezLp8ieIYv19+07K8ZEQw+I+o/mnTrBSNdiMGONNyDKVXthirKrq+7ZuZDkX3Grjg3dmZ"
    "NQ2lzYM4ME4o6DtT2uw+umiCAL2kiLgE4cXfes5Be5b8wKbMtBwatqYYGGJtDRuemUPycO"
    "GXOLAdET/3P4l/dqETFV7fVH6rAzUlUlZWn+CgmTeEVjg/BRgonNgfr16LYbAiJKFd7B6Y"
    "f2YKfZeiMgMKg9tUSlgEt5FIrQhq6qAD1EeQLnWF+UQTrUWCXafkEO3D5SG4ZtiCV6MDGr"
    "VaGdxvOMYWHjOcrGNK6ZwFXzVPf8H6vBN3Q8rwvwqHvZGY7al59483NKf+gCr/aow2saon"
    "SRKN1x7WEwH+q62KARcN0dfQD8EXzt9zpJqwVyo68Kfyfo2IbK3JwKtSgmfrFfFDOzQ5G2"
    "hI0jaiswsDc7avuu3r4W+snWv2VMHNesrbzJVh5biOO+hJXjmhV01mwcQ63PAj1vBG6J2b"
    "3J8pTvttSsyLJLbKnb9jUSpmZwbaNxp/wlfmscHB4dvmu2Dt8xEfGiQclRjr27vRELenjM"
    "PrnLjCc5XGl0zw0L4Sn5iBYC5C57I0jGKANUj1xdec1sGbiP/ujxS8NhacH7gOREBxX7dv"
    "bFyBZff9oenrbPOopA+BaO7+6hpakxqHmN0TASJYFsumremCdLIIFTAQ7/Cv7OAaX9idG9"
    "kkl2Rc1uPs3lMiX4ravAWSQE94al7YJ7bDP2OUOAjmdIcxipvEUTNnYAJBqAExtZjIuCHU"
    "QMZ8ppKmvC1CEnqBJiu/ounma03xTeE5d1e3eXCib0LZgdQQUD43spBiz1U0VdlDccn8d8"
    "N9w/7eYQXoYD7z4F7OkMWh3izFMOKh7hBdoJpNknbI6/Utrv293eMYBTBusNYQz27Biw79"
    "NuyPt+n/2eGgb73WkP/zkGCNJFcu5ITDOHD6qOyNSesce3OWb43B4I3vw2sdL3vIoGr3lM"
    "Rt3BXCkfdkdVKxiRbUkEVpReBb4v09BPGNlVyzNytQzMjZaYK5rD/RD7/DktsUIktJaKZj"
    "eMkK5msQiBZV7fRqobECy7RCTb2OiFote5Znro/oZcdNqDXrf3/hjoCFqEoX5DBp3PXS7g"
    "zj3+HEpZyJdbZvE42C+wehzsS5cPXpU0HTKllhvOoa5LJ0ZCtUITo9k4agVzgj/kTYfhZf"
    "viInNO3GId2wspuue6AaXQppUT+E649vYhnOex+1cnFx3wadA57Q67/V58DRaVvIgVYJf2"
    "DTrti6SLx5MJHrM3Xgr2TO0a9yK4O3L/nx+FxjXrIHSjg1AdUlsNQsrlDC5ro97332TLu+"
    "GZ2Oh5XoQXNFEHeOsL8CR2KxDfycxVh3d+hCbBtlB0J0O3aJCxRWvdiqO78qhnKdewFw3u"
    "JHg/HdvJsK5Du81a4Osj3lXvivHjrHKIRjRqRJ8+NPfPC595aH7tNbNl4BY9NI8MquxD86"
    "QXWAGkdR7Ca+QhCNQzshB8a8hzEPgHFcxAaLs8CFl/APHhDE+Ruu6iQHmOALZE0gAVuQFu"
    "9n46zeAZ7aw4O77ODXhmbgCaQ6xn7wpI8rZ9hdXsAbwuuDH+3mwUIfBMSsrgRV08kDAhpc"
    "KLzyCdlcE5pbjJey5LIt54WySjgklJERd1CcaDKLaQplrMFRHxfuk1MYdpZmmvk2ru7/3+"
    "sivkSzHNOrtYPuqrm10sXNTYcEiG1fO5UqC0Prq0v8GLdIoryePQaGJR8ppl3AInnv75xw"
    "HSocSdSS53btkck8X/GYlYzwbKTwyuIkQian8eQBUj5Y8vyfsEVhm8z8dQzvsCQxXhfVwY"
    "QMC5IsA0OA7zcsP5Zefz4WAYJIhnUb5lmshge2FGuFgF7pDIxNUhmToMITc1PJZZ7otHoo"
    "RYYrnYqE6UiaYnhrv0MCpYJ5yvlVRmb+7JuY4vX0GKc7Bf7FQ471g4RSqjM6cMxr5OBXFu"
    "FsK5mYNzU4Kz70ZKAe0rrQ9pRVkLzq1COLdycG6lcWbvjAnO5upyoONaFRzTbOYXdB653i"
    "MHbsngHqEH6fZISrUCQzyPj3e+jGJU3Id257L95U2Mjl/0e+998YgpTi/6J6n/mgHnpi5J"
    "t5dsu4YqSwG+adk8axnoQVRZAuioTgWGdgLoVhGYk9tJEZBbKV8SZOakQc5PUYtrrm8TqP"
    "myQfUqEtRsOM2g4PIx68uvcbyC9QzYo0KO4SjHLxyl3QKHKzt8li98UZ0qwLzuJa8+HZCP"
    "+OqeDjimtqTV45q11TfF6hn5iKktZHFZIHv9KnjTYM1elrjb+f/PSwbe/mnJ+RlqVXBubu"
    "9cTLvg4MJC2sJFrjlkWLi+RZmV/jChFlXz2FAO2hm6NeYFMOe3nMrSTl+nvhOVOBk3y/xj"
    "DV+8zt1IAqlDk6IyUIYKNZhpMKP3jctHKVn69V3lTQ5X6qtM9X+r3O5bInW22SumU7WRhc"
    "czJSOhyqvZzUupgqHMUzlVchjqGy6blYz0E1m0ZGZBRKWCaQUvcuuCT6oSCHviFUT3RRK+"
    "WI/8Okoa4b+H/Z7k2CRUSUa8eGyDf4GO6TaGRzngcjDyD66SZ1SJAJY3cFIuF3/1i9njf1"
    "U11K4="
)
