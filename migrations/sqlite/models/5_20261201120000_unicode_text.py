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
#: SQLite's placeholders.
P1 = P2 = "?"
PLACEHOLDERS = ["?"] * 9

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
    # Statement by statement in the migration's transaction: a script would commit it (SQLite
    # commits a pending transaction before a script), and the columns are only added where
    # they are missing, so that a run cut short can run again.
    columns = {row["name"] for row in await db.execute_query_dict('PRAGMA table_info("words")')}
    for name, definition in (
        ("word_fold", "VARCHAR(600) NOT NULL DEFAULT ''"),
        ("definition_fold", "TEXT NOT NULL DEFAULT ''"),
        ("tags_key", "TEXT NOT NULL DEFAULT ' '"),
    ):
        if name not in columns:
            await db.execute_query(f'ALTER TABLE "words" ADD "{name}" {definition}')
    await migrate_words(db)
    return """
        CREATE INDEX IF NOT EXISTS "idx_words_user_id_1fb48e" ON "words" ("user_id", "word_fold", "id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Word keys stay lower-cased (the old case-folded keys could collide: Masse and Maße).
    return """
        DROP INDEX IF EXISTS "idx_words_user_id_1fb48e";
        ALTER TABLE "words" DROP COLUMN "tags_key";
        ALTER TABLE "words" DROP COLUMN "word_fold";
        ALTER TABLE "words" DROP COLUMN "definition_fold";"""


MODELS_STATE = (
    "eJztXVtv47YS/iuEnlIgZ5HLbtKmRQEnUXbdJnZhO01Pm0JlLNoWIlOuKDVr9Ox/PyQl6k"
    "5FUmyvLPAliKkZSvpmOBzODKl/taVjIpu8u4KuqV2AfzUMl4j+k2o/BBpcreJW1uDBJ5sT"
    "TikFb4FPxHPh1KONM2gTRJtMRKautfIsBzPSIUbAtFw0ZQ3AmQEIXhzXPAQvlrcAlkeA84"
    "LBzXg0BmS6QKZvo3esZ9OZ0q4tPG/aySN+xPo/yF1zUrCAhHLNHPeFPjtgL3AIIDZpm4so"
    "FUG8DcxcZwm8BQIzyyUe8Kwl4v3/FVL9BV4gecSe72JkAvowB89o5SUeZGERz3HXtGWBcI"
    "LNIkAwzejzz6GFv+Ev6mPrbx8ZnjNH9L4ufd0//tDYI3MUxEtrf/5Jf1rYRJ8RCWh8QqmZ"
    "DCjBP4hT036gp1HKoqvEg16KjPW4ejZmFrLTemDxe/N2w1uveFsfezeckHXwZEwd21/imH"
    "i19hYOjqgt7LHWOcLIpXdl3Xuuz9QD+7YdqpHQmACBmCR4ywSPiWbQt5mSMe7gAeI2zTAG"
    "w4kx1ieGoeUUUHAk1ClsmjqYKS99VMLffs4e4T8nx+/P3397evb+W0rCHzNqOf8S3DoGJm"
    "Dk8Awm2hd+HXowoOBiikGNRZnD9moBXR37Sw5wnz4VxFOUAzrVQQZv+iJZvAW6ZYCLhhjx"
    "eBQ3h1y7GY4eeqPrCzHcHvFI/1UfjfULMdiyI1wikiX8bNgIz70F/VkG/6+90dWn3ujg/B"
    "vWs0NNUmCoBuGFE3aFySeWRzww0sK4dBwbQVys7DFTRgBPlGtbEhCjYAtKXwLp5XB4y3pe"
    "EvK3zRv6kwy493eX+ujgmGNOiSwPJYdCDHVkeZqofcS8O5XXMHrRaur8QH+gIKOXR3yr90"
    "aD/uDjBaB65GIKP9f/PiOg6m8xmpEeU7lI0DUZFcdHFYbF8ZF0XLBLaWmF00NOXNcUZTYf"
    "Fo+MmCsjJzNkeyf+aY+h2sQwmfTv9PGkd/dLaqxc9yY6u3LCW9eZ1oOzjDiiTsBDf/IJsJ"
    "/g9+FA53A6xJu7/I4x3eR3jT0T9D3HwM6LAc0kJqJZNGUH45NFx+o6L+Eb24GSWT7FlZHw"
    "jLFVkGpox/ZAqNfD+8tbHfwy0q/64/5wkJYiv5i2eSO9d5sZRjPiEsO0ZjNrSh+7HtoFvA"
    "rzCpgTD63yQI+X0Lal/qvged2DbT+8oQ97enJ+Frmv7EeZ6zS+693e5udsF61IjVWAIG+E"
    "YiNzf9TqdUAMpA1XBNWBMmZQYObBJJ4ROFHIbOClFPFvwF9pmRnokrvC4hhGrYBEgmN3A6"
    "j1gYkYURZbqodogkMhGiLKgmez58JIjwjeZdw9x0XWHP+M1rn1bgbUMAz7EHazZ+B+Edoj"
    "WmP76MKXKNqYVCr67vSNUeDWXfXGV71rXctZgQ1Aeh9201FIE5avGFKmtE9w+syCcoZEe4"
    "PZscBhuQwZb34eIRtKApEh0CPeSYeg5tA5J04CshSY+UvLk2W2BWI456/E7s3uFKE1ozPm"
    "YuI8I6wVJGRS1w/LEjNuQGl4jLRGhsYixEcmCNkBZz8Ez5ilVZ7WPLHx08MEWCzlYa/BAQ"
    "Smv1yxTIy3YJkNdn9gO3MCsENJaIdhdiOXxtnanQryKJmUSa18x/19/7pGwsP3LfMd42mi"
    "86/nPbQfZj4Osl/8TuzP+x9rxig34T/ycOJp4BAmXT3+6uUJkBlcWnZBHESOdMyxSbTzFm"
    "aXaaa3YBtjiT6vLHq1wQoozalitW1f/DRZ5SbY1OK2zfKlvhad/5qIOM2ppNxmKU9dxHBv"
    "IOU0ZweNNdVjaA6poyfc7P0QezhYVODqa4ZZVExgyzGB7S55eYCgcLErQgdly9woRlFtfR"
    "swBJWDQe0fL9hjhX6iYBA8oRnVnaAocOYhl65FwYHnUN6VDdfAcYGPTYe2Sla2W7jH62va"
    "uFQwmdVIVQBGF1gVIbswDes7qVaoGkBVA1ilICos5KsZcNiPQkAKVlh71UQiMXerSzJ7H3"
    "v9wUVQd/yIP3GhLLhEPg6H9P+549D/9d74vxcAQbJuIpcPFeTyQSqXDzm5NE/zbj7D29Lp"
    "v+2OctVVcDRBFQr6FSEXWsOUkLslYCa0XM2myzMyxrJOpUmGq0MVUBtLlvPqYyNw25pOEd"
    "k+Wj1RdKeOmRX2SSX3ek2gXGD7PDA2URoY1QJL0a1SSCzHV9W2FtW2xuXATWAv5Fa4V8Hd"
    "l9v/17dESMFWTmi7nNB0ZWgzgcv6UOmZNks+cM94OO5tHl7UhXLwdufgSeRWwb+TiUu5d8"
    "JDk2BbybuToVvVydijuW7D3l191IuYFexVnTsJ3hW2u0qwVq5duyZ4lu+ql4lPcKhMfEFU"
    "TNU2qE05bUS0pFpEJL3fWC0izkbaM3CrVoskDN/rm3LUPie1z0nVNB2mUS+oaBLSkNczsR"
    "eqWM3UCxbryP0e8BenePJtMAEKhJUbWS4/8ozwMqNgJ1C+YukN/Wx4p42qKnpjVRFaQssu"
    "Dl1J9oAIhs0Eqr4uuKkg0+lJlSgTpZKGmfi1tG+2goRwK76AZFEH5xxjmwODDRE/+VCl7I"
    "dSSRHn1zLLckQsF5mGS00RLq6XKwuHFHHvMh5y9O677c6Q2wqHqJ0Kcq3v7k4FbqKmjo8L"
    "pF6+/IyY1Ek12QU995cMVuNaaL6kuOb4FLT5o6l46bARnUKchrb0AM8c7w7P8Yxa9vYgT3"
    "4u3Qq69KcXrljS2P80Hg4ke7nzrBnobYvsYeKtBHgGRgp44fMc3PV+y7pDV7fDy6xtZx1c"
    "FoW1qpzjIRsdNU7x6FiwK2NEsidlNMcpez5HN/FSx8K8AhEPlrwNoI7FQrd6ag7HqiDcJj"
    "CUh9siQVUJt/GvB0DAQnTsEH9RAvM9P6pGbOwjALqIfQ6ANXLLWxRxe0tXhZ8JEOFi7ow/"
    "I75rx4Z47lPESr4YkFispXYK8m5mjq12B36VOF5xPkUeXhL0HYwqHR9VqxYrKxfLxfGSo6"
    "QOxoKngzifVsL5tATnUwnOwozUAlow7XBnq7YTnM8q4XxWgvNZHmf6zBa25NuJZdHRJFcH"
    "dZqO/IrGo9R6lMAtUe4J+iyNSOdYO6DiZSFQ/bdJ+dI3ioDeDgcfBXl2PZw99AwuV7ZkG5"
    "4k0xWzNAK8ZcGG3Sh65EHWADrJ0wHVzgB9VgXmbAQ/AfJZzpaUfBeivHS99KsQWwwOn27X"
    "qd5E4boH5wXLb7nOCvod6ivYjcKeVzIM5yV24TxvFhhcxe6zfOJL8nQB5l1PeSohK9f47i"
    "Zk/ZXZUOppTiX1tki9YJ9CUYRdnIhUP6FZIG6Vyiz9JqFPVoi+YcE6rhTvFJ9CvAbiatOI"
    "OhBzv4vHVXJdJYvbmg3tIdeaLrSCfGh45bAsIwpjmtdSonIY1L6AduUTpcWH8pCIvO6wC5"
    "mBrdSqs0FVA+GQvIPobiVnS+/IivjzCMsrDRMs2QWwNfXA/0DFQsO2od2ySsPNT2Zf/g/M"
    "N4+s"
)
