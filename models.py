"""vocab's tables: users, their words, each word's cards (the spaced-repetition schedules), the
review log, refresh tokens, the responses kept for retries (idempotency keys) and
import jobs.

Constraints live here so that the database schema, the Aerich migrations and the Pydantic
models generated from these classes all agree.
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model
from tortoise.validators import MaxValueValidator, MinValueValidator


class State(StrEnum):
    """Where a card stands in spaced repetition (`new` until its first review)."""

    NEW = "new"
    LEARNING = "learning"
    REVIEW = "review"
    RELEARNING = "relearning"


class Direction(StrEnum):
    """Which way a card asks: `forward` shows the word, `reverse` shows the definition."""

    FORWARD = "forward"
    REVERSE = "reverse"


class Rating(StrEnum):
    """How well a learner recalled a word."""

    AGAIN = "again"
    HARD = "hard"
    GOOD = "good"
    EASY = "easy"


class JobStatus(StrEnum):
    """Where an import job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class User(Model):
    """A learner; deleting one deletes their words and tokens."""

    id = fields.IntField(primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive on every database.
    email = fields.CharField(max_length=320, unique=True)
    # argon2id, never leaves the server.
    password_hash = fields.CharField(max_length=255)
    # The recall probability FSRS schedules for (0.7–0.99).
    desired_retention = fields.FloatField(
        default=0.9, validators=[MinValueValidator(0.7), MaxValueValidator(0.99)]
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    # How many words the user has, kept in step with every insert and delete (in the same
    # transaction), so that an unfiltered list needs no COUNT over all of them.
    word_count = fields.IntField(default=0)
    # Raised by every password change. Tokens carry the value they were issued under, so those
    # from before a change stop working at once (a counter, so a token issued in the same
    # second as the change is still told apart).
    token_version = fields.IntField(default=0)
    # Whether new words get a reverse card unless they say otherwise.
    reverse_cards = fields.BooleanField(default=False)
    # The learner's own FSRS parameters (21 numbers, from POST /users/me/optimize); null while
    # FSRS' defaults are used.
    fsrs_parameters: list[float] | None = fields.JSONField(null=True, field_type=list[float])
    # The learner's study day: an IANA time zone and the hour (0–23, local) a new day starts.
    # Stored timestamps stay UTC; only where the days fall moves with these.
    timezone = fields.CharField(max_length=64, default="UTC")
    day_starts_at = fields.SmallIntField(
        default=4, validators=[MinValueValidator(0), MaxValueValidator(23)]
    )
    # Daily limits: new cards first reviewed, and reviews of cards seen before, per study day.
    new_per_day = fields.SmallIntField(
        default=20, validators=[MinValueValidator(0), MaxValueValidator(9999)]
    )
    reviews_per_day = fields.SmallIntField(
        default=200, validators=[MinValueValidator(0), MaxValueValidator(9999)]
    )

    words: fields.ReverseRelation["Word"]
    cards: fields.ReverseRelation["Card"]
    reviews: fields.ReverseRelation["Review"]
    refresh_tokens: fields.ReverseRelation["RefreshToken"]
    import_jobs: fields.ReverseRelation["ImportJob"]

    class Meta:
        table = "users"

    class PydanticMeta:
        exclude = (
            "password_hash",
            "word_count",
            "token_version",
            "words",
            "cards",
            "reviews",
            "refresh_tokens",
            "import_jobs",
        )


class Word(Model):
    """A word a user is learning; its schedules are on its cards."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="words", on_delete=fields.CASCADE
    )
    user_id: int  # the foreign key's column, declared for the type checker
    # Text is stored in Unicode NFC, trimmed (vocab's Words section has the rules).
    word = fields.CharField(max_length=100)
    # `word` lower-cased (str.lower, not case folding: Masse and Maße are two words): the key of
    # the one-word-per-user-and-language rule. Where the unicode_text migration found a word to
    # be the same as an older word of its user (the same text in another Unicode form, or with
    # an invisible character at an end), it kept both and put the later one's id after a
    # U+001F in its key: no API input holds U+001F, so such a key never meets a real word's.
    word_key = fields.CharField(max_length=300)
    # `word` as search compares it (vocab.search_key: no case, no accents) for `q` and the
    # order of `sort=word`; cut at 600 characters (compatibility forms can make it 18 times
    # longer than the word) so that its index entries stay within PostgreSQL's limit.
    word_fold = fields.CharField(max_length=600, default="")
    definition = fields.CharField(max_length=1000)
    # `definition` as search compares it.
    definition_fold = fields.TextField(default="")
    example = fields.CharField(max_length=1000, null=True)
    # "" when the word has no language: NULLs never collide in a unique index, "" does.
    language = fields.CharField(max_length=16, default="")
    # The learner's own rating of how hard the word is.
    difficulty = fields.SmallIntField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    # Tags joined by single spaces with a space on either end (" verb b1 "), so that a tag
    # filter is one indexable LIKE '% tag %' on every database; tags never contain spaces.
    tags = fields.CharField(max_length=700, default=" ")
    # The tags case-folded, in the same format: what the tag filter compares.
    tags_key = fields.TextField(default=" ")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    # Whether the word is also studied the other way round (its reverse card).
    reverse = fields.BooleanField(default=False)
    # A suspended word is set aside: none of its cards is studied or counted as due.
    suspended = fields.BooleanField(default=False)

    cards: fields.ReverseRelation["Card"]
    reviews: fields.ReverseRelation["Review"]

    class Meta:
        table = "words"
        unique_together = (("user", "word_key", "language"),)
        indexes = (("user", "created_at"), ("user", "word_fold", "id"))


class Card(Model):
    """One direction of a word, with its own FSRS schedule.

    Every word has a forward card, and a reverse card from the first time its `reverse` was
    turned on (kept, with its history, when `reverse` is turned off again)."""

    id = fields.IntField(primary_key=True)
    word: fields.ForeignKeyRelation[Word] = fields.ForeignKeyField(
        "models.Word", related_name="cards", on_delete=fields.CASCADE
    )
    word_id: int
    # The owner again, so that the study queue and due counts read this table alone.
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cards", on_delete=fields.CASCADE
    )
    user_id: int
    direction = fields.CharEnumField(Direction, max_length=7)
    # Whether the card is studied: its word is not suspended and, for a reverse card, the
    # word's `reverse` is on. Kept in step with those two in the same transaction, so that
    # the study queue and due counts need no join.
    active = fields.BooleanField(default=True)

    # The FSRS schedule. A new card is due at once: its due time is its word's creation, so
    # new cards sorted by due time come oldest word first.
    state = fields.CharEnumField(State, max_length=10, default=State.NEW)
    due_at = fields.DatetimeField()
    stability = fields.FloatField(null=True)
    # FSRS' own difficulty (1–10), not the learner's `difficulty` of the word.
    fsrs_difficulty = fields.FloatField(null=True)
    # FSRS' position in the (re)learning steps.
    step = fields.SmallIntField(null=True)
    reps = fields.IntField(default=0)
    lapses = fields.IntField(default=0)
    last_reviewed_at = fields.DatetimeField(null=True)

    reviews: fields.ReverseRelation["Review"]

    class Meta:
        table = "cards"
        unique_together = (("word", "direction"),)
        # The study queue: due reviewed cards by due time, new cards by due time.
        indexes = (("user", "active", "due_at"), ("user", "active", "state", "due_at"))


class Review(Model):
    """One review of a card, with the schedule before and after it (to replay or undo it)."""

    id = fields.IntField(primary_key=True)
    card: fields.ForeignKeyRelation[Card] = fields.ForeignKeyField(
        "models.Card", related_name="reviews", on_delete=fields.CASCADE
    )
    card_id: int
    # The card's direction and word again, so that a word's history needs no join.
    direction = fields.CharEnumField(Direction, max_length=7, default=Direction.FORWARD)
    word: fields.ForeignKeyRelation[Word] = fields.ForeignKeyField(
        "models.Word", related_name="reviews", on_delete=fields.CASCADE
    )
    word_id: int
    # The owner again, so that statistics need no join and go with the user.
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="reviews", on_delete=fields.CASCADE
    )
    user_id: int
    rating = fields.CharEnumField(Rating, max_length=5)
    reviewed_at = fields.DatetimeField()
    # The UTC calendar day of `reviewed_at`: daily counts and streaks group by it on every
    # database without dialect-specific date functions.
    reviewed_on = fields.DateField()
    duration_ms = fields.IntField(null=True)

    state_before = fields.CharEnumField(State, max_length=10)
    step_before = fields.SmallIntField(null=True)
    stability_before = fields.FloatField(null=True)
    difficulty_before = fields.FloatField(null=True)
    due_before = fields.DatetimeField()
    last_reviewed_before = fields.DatetimeField(null=True)

    state_after = fields.CharEnumField(State, max_length=10)
    step_after = fields.SmallIntField(null=True)
    stability_after = fields.FloatField()
    difficulty_after = fields.FloatField()
    due_after = fields.DatetimeField()

    class Meta:
        table = "reviews"
        # (user, reviewed_at, rating): today's counts, streaks and the history count study
        # days, whose bounds are instants in the learner's time zone; with the rating in the
        # index, a year of history is read from the index alone.
        indexes = (
            ("word", "reviewed_at"),
            ("user", "reviewed_on"),
            ("user", "reviewed_at", "rating"),
            ("card", "id"),
        )


class RefreshToken(Model):
    """One issued refresh token, known by its JWT id only (a dump of this table logs no one in)."""

    # The token's `jti`; the token itself is a signed JWT that is never stored.
    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    # One login: every token rotated from the same sign-in shares it.
    family = fields.UUIDField(db_index=True)
    expires_at = fields.DatetimeField()
    # Set when the token was exchanged; presenting it again is reuse.
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refresh_tokens"


class IdempotencyKey(Model):
    """A request sent with an Idempotency-Key, and its response for retries.

    A marker while the request runs (a concurrent retry answers 409), then its response, kept
    until `expires_at` and replayed to retries."""

    id = fields.IntField(primary_key=True)
    # Whose keys these are: `user:<id>` for a signed-in user's requests, `register:<hash of the
    # email>` for registrations (there is no user yet).
    scope = fields.CharField(max_length=100)
    key = fields.CharField(max_length=255)
    # The signed-in user, so that deleting the account deletes the responses kept for them
    # (null for registrations).
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.CASCADE
    )
    user_id: int | None
    # HMAC-SHA256 (under a key derived from the server's secret) of the method, path and body:
    # a retry must match it, and a dump of this table reveals no password.
    fingerprint = fields.CharField(max_length=64)
    # Null while the first request runs; then its response's status, headers (JSON) and body.
    status_code = fields.SmallIntField(null=True)
    response_headers = fields.TextField(null=True)
    response_body = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    # A marker lapses after REQUEST_TIMEOUT_SECONDS (its request has ended by then, even if it
    # crashed), a response after IDEMPOTENCY_KEY_TTL_SECONDS; lapsed rows are purged.
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "idempotency_keys"
        unique_together = (("scope", "key"),)


class ImportJob(Model):
    """One file imported in the background (POST /imports), with its progress and outcome.

    Progress lives here rather than in the process that runs the job, so that any worker or
    replica answers for it."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="import_jobs", on_delete=fields.CASCADE
    )
    user_id: int
    status = fields.CharEnumField(JobStatus, max_length=7, default=JobStatus.QUEUED)
    #: The name the client gave the file (shown, never used as a path).
    filename = fields.CharField(max_length=255)
    #: "anki" (a package) or "table" (CSV/TSV): what the file was recognised as.
    kind = fields.CharField(max_length=5)
    #: Notes (or rows) handled so far, of `total` (0 until the file has been read).
    done = fields.IntField(default=0)
    total = fields.IntField(default=0)
    #: What the import did, once it is done.
    result: dict | None = fields.JSONField(null=True)
    #: Why it failed.
    error = fields.CharField(max_length=1000, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)
    #: Written every few seconds by the process running the job: a queued or running job
    #: whose heartbeat stopped belonged to a process that died.
    heartbeat_at = fields.DatetimeField()

    class Meta:
        table = "import_jobs"
        indexes = (("user", "id"), ("status", "heartbeat_at"))
