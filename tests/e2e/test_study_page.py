"""The study page (static/) in a real browser, against a real server."""

import csv
import io
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from conftest import DEFAULT_PASSWORD, access_claims, make_token

try:
    from playwright.sync_api import Locator, Page, Request, Route, expect
except ImportError:
    if os.environ.get("E2E_REQUIRED") == "1":
        raise  # CI: a missing Playwright is a failure, not a skip
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

WORDS = [
    {
        "word": "Fernweh",
        "definition": "longing for faraway places",
        "example": "Every winter the Fernweh comes back.",
        "language": "de",
        "tags": "noun, b2",
        "difficulty": "4",
    },
    {
        "word": "Sobremesa",
        "definition": "time spent talking at the table after a meal",
        "example": "",
        "language": "es",
        "tags": "noun culture",
        "difficulty": "3",
    },
    {
        "word": "Hygge",
        "definition": "a cosy, contented mood",
        "example": "Candles and tea: pure hygge.",
        "language": "da",
        "tags": "",
        "difficulty": "2",
    },
]
SESSION_ENDED = "Your session has expired. Please sign in again."


# --- Helpers ----------------------------------------------------------------------------


def status(page: Page) -> Locator:
    return page.get_by_role("status").first


def stat(page: Page, name: str) -> Locator:
    """The value shown for one figure on the Stats screen."""
    return (
        page.locator("#stats-list .stat")
        .filter(has=page.locator("dt", has_text=re.compile(f"^{name}$")))
        .locator(".value")
    )


def register_in_page(page: Page, email: str) -> None:
    page.goto("/")
    page.get_by_role("button", name="Create an account").click()
    form = page.locator("#register-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(DEFAULT_PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()


def sign_in_page(page: Page, email: str, password: str = DEFAULT_PASSWORD) -> None:
    form = page.locator("#signin-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def add_word_in_page(page: Page, word: dict[str, str]) -> None:
    page.get_by_role("button", name="Add a word").click()
    dialog = page.get_by_role("dialog", name="Add a word")
    fill_word_form(dialog, word)
    dialog.get_by_role("button", name="Add word").click()


def fill_word_form(dialog: Locator, word: dict[str, str]) -> None:
    dialog.get_by_label("Word", exact=True).fill(word["word"])
    dialog.get_by_label("Definition").fill(word["definition"])
    dialog.get_by_label("Example").fill(word.get("example", ""))
    dialog.get_by_label("Language").fill(word.get("language", ""))
    dialog.get_by_label("Difficulty").select_option(word.get("difficulty", "3"))
    dialog.get_by_label("Tags").fill(word.get("tags", ""))


def learner_auth(api: httpx.Client, email: str) -> dict[str, str]:
    """Sign a learner in through the API; returns the Authorization header."""
    r = api.post("/auth/token", data={"username": email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def api_learner(api: httpx.Client, email: str, words: list[dict[str, str]] = ()) -> dict:
    """Register a learner through the API and give them words; returns the user."""
    user = api.post("/auth/register", json={"email": email, "password": DEFAULT_PASSWORD})
    assert user.status_code == 201, user.text
    auth = learner_auth(api, email)
    for word in words:
        body = {**word, "tags": word["tags"].replace(",", " ").split()}
        body["difficulty"] = int(body["difficulty"])
        assert api.post("/words", json=body, headers=auth).status_code == 201
    return user.json()


def go(page: Page, link: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=link, level=1)).to_be_visible()


class TokenExpiry:
    """Make the access token the page holds expire, as seen by the real server.

    Once armed, every request that carries the page's current access token has it replaced by
    a correctly signed token for the same user whose `exp` has passed, so the server answers
    401 exactly as it would 15 minutes later. A token the page obtains afterwards (by
    refreshing) passes untouched.
    """

    def __init__(self, page: Page, user_id: int) -> None:
        now = int(time.time())
        expired = make_token(access_claims(user_id, iat=now - 3600, exp=now - 60))
        self.expired = f"Bearer {expired}"
        self.armed = False
        self.stale: str | None = None
        page.route("**/*", self.handle)

    def arm(self) -> None:
        self.armed, self.stale = True, None

    def handle(self, route: Route, request: Request) -> None:
        auth = request.headers.get("authorization")
        if self.armed and auth:
            self.stale = self.stale or auth  # the first token seen is the one that expires
            if auth == self.stale:
                route.continue_(headers={**request.headers, "authorization": self.expired})
                return
        route.continue_()


def record_api_calls(page: Page) -> list[tuple[str, str, int]]:
    """(method, path, status) of every API response the page receives, in order."""
    calls: list[tuple[str, str, int]] = []

    def on_response(response) -> None:
        path = re.sub(r"^https?://[^/]+", "", response.url).split("?")[0]
        if not path.startswith("/static/") and path != "/":
            calls.append((response.request.method, path, response.status))

    page.on("response", on_response)
    return calls


# --- The learner's journey --------------------------------------------------------------


def test_learner_journey(page: Page, server, email: str) -> None:
    """Register, add three words, study them by keyboard, see stats, export, delete, import."""
    outside = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((server.url, "blob:", "data:")) else outside.append(r),
    )

    # Sign-up lands on an empty word list.
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    register_in_page(page, email)
    expect(status(page)).to_contain_text("Welcome")
    expect(page.locator("#words-summary")).to_contain_text("No words yet")
    expect(page.locator("#account-email")).to_have_text(email)

    # Three words, with tags typed the way people type them.
    for word in WORDS:
        add_word_in_page(page, word)
        expect(status(page)).to_have_text(f"Added “{word['word']}”.")
    expect(page.locator("#words-summary")).to_have_text("3 words.")
    fernweh = page.locator(".word-item", has=page.get_by_role("heading", name="Fernweh"))
    expect(fernweh.locator(".tag")).to_have_text(["noun", "b2"])
    expect(fernweh).to_contain_text("Difficulty 4 of 5")
    expect(fernweh.locator(".badge")).to_have_text("de")

    # Search, then edit.
    page.get_by_label("Search words and definitions").fill("faraway")
    expect(page.locator("#words-summary")).to_have_text("1 word matching “faraway”.")
    expect(page.locator(".word-title")).to_have_text(["Fernweh"])
    page.get_by_label("Search words and definitions").fill("")
    expect(page.locator("#words-summary")).to_have_text("3 words.")
    page.get_by_role("button", name="Edit Hygge").click()
    dialog = page.get_by_role("dialog", name="Edit “Hygge”")
    expect(dialog.get_by_label("Definition")).to_have_value("a cosy, contented mood")
    dialog.get_by_label("Tags").fill("feeling, danish")
    dialog.get_by_role("button", name="Save changes").click()
    expect(status(page)).to_have_text("Saved “Hygge”.")
    hygge = page.locator(".word-item", has=page.get_by_role("heading", name="Hygge"))
    expect(hygge.locator(".tag")).to_have_text(["feeling", "danish"])

    # A reload keeps the session (refresh token in sessionStorage, access token in memory).
    page.reload()
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()
    expect(page.locator("#words-summary")).to_have_text("3 words.")
    storage = page.evaluate("() => [Object.keys(sessionStorage), Object.keys(localStorage)]")
    assert storage == [["vocab.refresh_token"], []]

    go(page, "Stats")
    expect(stat(page, "Reviewed today")).to_have_text("0")
    expect(stat(page, "Due now")).to_have_text("3")

    # Study with the keyboard only: Enter on the link, Space to reveal, 2/3/4 to rate.
    page.get_by_role("link", name="Study").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Study", level=1)).to_be_visible()
    answer = page.locator("#study-answer")
    for left, (word, key) in enumerate(zip(WORDS, ["3", "4", "2"], strict=True)):
        expect(page.locator("#study-left")).to_have_text(
            ["3 cards", "2 cards", "1 card"][left] + " left"
        )
        expect(page.locator("#study-word")).to_have_text(word["word"])  # new words, oldest first
        expect(answer).to_be_hidden()
        page.keyboard.press("Space")
        expect(answer).to_be_visible()
        expect(page.locator("#study-definition")).to_have_text(word["definition"])
        page.keyboard.press(key)
        expect(status(page)).to_contain_text(f"“{word['word']}”")
        expect(status(page)).to_contain_text("Next review in")
    expect(page.locator("#study-left")).to_have_text("0 cards left")
    expect(page.get_by_role("heading", name="All done for now")).to_be_visible()

    go(page, "Stats")
    expect(stat(page, "Reviewed today")).to_have_text("3")
    expect(stat(page, "Due now")).to_have_text("0")
    expect(stat(page, "Streak")).to_have_text("1 day")
    expect(stat(page, "Reviews in total")).to_have_text("3")

    # Export: the download is the CSV of the three words.
    go(page, "Import & export")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "vocab-words.csv"
    exported_bytes = Path(download.path()).read_bytes()
    assert exported_bytes.startswith(b"\xef\xbb\xbf")  # a UTF-8 byte order mark first
    exported = exported_bytes.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(r["word"] for r in rows) == ["Fernweh", "Hygge", "Sobremesa"]
    assert {r["word"]: r["tags"] for r in rows}["Fernweh"] == "noun b2"

    # Delete a word (with confirmation), then import the export back.
    go(page, "Words")
    page.get_by_role("button", name="Delete Fernweh").click()
    confirm = page.get_by_role("dialog", name="Delete this word?")
    expect(confirm).to_contain_text("“Fernweh” and its review history will be deleted.")
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(status(page)).to_have_text("Deleted “Fernweh”.")
    expect(page.locator("#words-summary")).to_have_text("2 words.")
    expect(page.get_by_role("heading", name="Fernweh")).to_have_count(0)

    go(page, "Import & export")
    page.get_by_label("File to import").set_input_files(download.path())
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-counts")).to_have_text(
        "Created 1 word. Skipped 2 you already have."
    )
    go(page, "Words")
    expect(page.locator("#words-summary")).to_have_text("3 words.")
    fernweh = page.locator(".word-item", has=page.get_by_role("heading", name="Fernweh"))
    expect(fernweh.locator(".tag")).to_have_text(["noun", "b2"])
    expect(fernweh).to_contain_text("Every winter the Fernweh comes back.")

    # Sign out ends the login on the server too.
    refresh_token = page.evaluate("() => sessionStorage.getItem('vocab.refresh_token')")
    with page.expect_response("**/auth/logout") as logout:
        page.get_by_role("button", name="Sign out").click()
    assert logout.value.status == 204
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(status(page)).to_have_text("You are signed out.")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0
    spent = httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": refresh_token})
    assert spent.status_code == 401
    page.reload()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()

    assert outside == [], "the page loaded something from another origin"


# --- Errors -----------------------------------------------------------------------------


def test_api_errors_are_shown_clearly(
    page: Page, api: httpx.Client, email: str, screenshots: Path
) -> None:
    """401, 409, 422 (with the field), 413, an unreadable file and import line errors."""
    api_learner(api, email)
    page.goto("/")

    # The registration form names a taken email.
    page.get_by_role("button", name="Create an account").click()
    form = page.locator("#register-form")
    form.get_by_label("Email").fill(email.upper())
    form.get_by_label("Password").fill(DEFAULT_PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect(form.get_by_role("alert")).to_have_text("Email already registered.")
    page.get_by_role("button", name="Sign in").click()

    sign_in_page(page, email, "not the password")
    expect(page.locator("#signin-form").get_by_role("alert")).to_have_text(
        "Incorrect email or password."
    )
    sign_in_page(page, email)
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()

    add_word_in_page(page, WORDS[0])
    expect(status(page)).to_have_text("Added “Fernweh”.")

    # 409: the same word in the same language, whatever its case.
    page.get_by_role("button", name="Add a word").click()
    dialog = page.get_by_role("dialog", name="Add a word")
    fill_word_form(dialog, {**WORDS[0], "word": "fernweh"})
    dialog.get_by_role("button", name="Add word").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_have_text("You already have this word in this language.")
    expect(dialog.get_by_label("Word", exact=True)).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=screenshots / "error-duplicate-desktop.png")

    # 422, with the field named and marked.
    dialog.get_by_label("Language").fill("en_US")
    dialog.get_by_role("button", name="Add word").click()
    expect(alert).to_have_text("Language: use a code such as en, de or pt-BR")
    expect(dialog.get_by_label("Language")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Language").fill("en")
    dialog.get_by_label("Tags").fill("ok " + "x" * 40)
    dialog.get_by_role("button", name="Add word").click()
    expect(alert).to_have_text("Tag 2: String should have at most 32 characters")

    # A required field is checked before sending.
    dialog.get_by_label("Definition").fill("   ")
    dialog.get_by_role("button", name="Add word").click()
    expect(alert).to_have_text("Definition: please fill this in.")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    go(page, "Import & export")
    import_form = page.locator("#import-form")
    file_input = page.get_by_label("File to import")
    import_button = page.get_by_role("button", name="Import", exact=True)

    # 413: over 5 MB.
    big = b"word,definition\n" + b"a,b\n" * (6 * 1024 * 1024 // 4)
    file_input.set_input_files({"name": "big.csv", "mimeType": "text/csv", "buffer": big})
    import_button.click()
    expect(import_form.get_by_role("alert")).to_contain_text("too large")
    expect(import_form.get_by_role("alert")).to_contain_text("5 MB")

    # 422 from the import: not text.
    file_input.set_input_files(
        {"name": "deck.csv", "mimeType": "text/csv", "buffer": b"\x00\x01\x02\xff\xfe"}
    )
    import_button.click()
    expect(import_form.get_by_role("alert")).to_contain_text(
        "The file is neither an Anki package (.apkg, .colpkg) nor UTF-8 CSV or TSV"
    )

    # Bad rows are listed with their line numbers; good ones are created.
    text = "word,definition,difficulty\nSaudade,a longing for what is gone,2\n,no word,3\n"
    text += "Klar,clear,9\n"
    file_input.set_input_files(
        {"name": "deck.csv", "mimeType": "text/csv", "buffer": text.encode()}
    )
    import_button.click()
    expect(page.locator("#import-counts")).to_contain_text("Created 1 word. Skipped 0")
    problems = page.locator("#import-errors li")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("Line 3:")
    expect(problems.nth(1)).to_contain_text("Line 4:")


def test_too_many_sign_ins_say_when_to_retry(open_page, start_server, email: str) -> None:
    """429 from the rate limit: the page says how long to wait (from Retry-After)."""
    limited = start_server(RATE_LIMIT_LOGIN="2/minute")
    with httpx.Client(base_url=limited.url) as client:
        api_learner(client, email)
    page = open_page(limited)
    page.goto("/")
    alert = page.locator("#signin-form").get_by_role("alert")
    for _ in range(2):
        sign_in_page(page, email, "wrong password")
        expect(alert).to_have_text("Incorrect email or password.")
    sign_in_page(page, email, "wrong password")
    expect(alert).to_have_text(re.compile(r"^Too many attempts\. Try again in \d+ seconds\.$"))
    assert not page.script_errors


# --- Sessions ---------------------------------------------------------------------------


def test_expired_access_token_is_renewed_and_an_ended_login_returns_to_sign_in(
    page: Page, api: httpx.Client, email: str, screenshots: Path
) -> None:
    user = api_learner(api, email, WORDS[:2])
    calls = record_api_calls(page)
    expiry = TokenExpiry(page, user["id"])
    page.goto("/")
    sign_in_page(page, email)
    expect(page.locator("#words-summary")).to_have_text("2 words.")

    # The access token expires while the learner reads: the next call renews it and retries.
    expiry.arm()
    calls.clear()
    go(page, "Stats")
    expect(stat(page, "Words")).to_have_text("2")
    # The Stats screen asks three things at once: each is refused, one refresh serves all
    # three, and each is asked again.
    refresh = calls.index(("POST", "/auth/refresh", 200))
    stats_paths = ["/stats", "/stats/forecast", "/stats/history"]
    assert sorted(calls[:refresh]) == [("GET", path, 401) for path in stats_paths]
    assert sorted(calls[refresh + 1 :]) == [("GET", path, 200) for path in stats_paths]

    # The same in the middle of a review: it is recorded once, and studying goes on.
    go(page, "Study")
    expect(page.locator("#study-left")).to_have_text("2 cards left")
    page.keyboard.press("Space")
    expiry.arm()
    calls.clear()
    page.keyboard.press("1")
    expect(page.locator("#study-left")).to_have_text("1 card left")
    posts = [c for c in calls if c[0] == "POST"]
    assert posts[:3] == [
        ("POST", f"/words/{first_word_id(api, email)}/reviews", 401),
        ("POST", "/auth/refresh", 200),
        ("POST", f"/words/{first_word_id(api, email)}/reviews", 201),
    ]
    assert review_count(api, email) == 1
    expect(page.get_by_role("alert")).to_be_hidden()

    # The login is ended elsewhere (sign-out on another device, a password change...): the
    # access token expires, the refresh fails, and the page returns to sign-in, saying so.
    refresh_token = page.evaluate("() => sessionStorage.getItem('vocab.refresh_token')")
    assert api.post("/auth/logout", json={"refresh_token": refresh_token}).status_code == 204
    expiry.arm()
    go_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Words")
    go_link.click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator("#alert")).to_have_text(SESSION_ENDED)
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.locator("#word-list li")).to_have_count(0)  # nothing of the learner's stays
    assert page.evaluate("() => sessionStorage.length") == 0
    page.screenshot(path=screenshots / "session-ended-desktop.png")

    # Signing in again picks up where the learner was.
    sign_in_page(page, email)
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()
    expect(page.locator("#words-summary")).to_have_text("2 words.")
    expect(page.locator("#alert")).to_be_hidden()


def first_word_id(api: httpx.Client, email: str) -> int:
    words = api.get("/words?sort=created_at", headers=learner_auth(api, email)).json()
    return words["items"][0]["id"]


def review_count(api: httpx.Client, email: str) -> int:
    auth = learner_auth(api, email)
    return api.get("/stats", headers=auth).json()["reviews_total"]


# --- Screens at phone and desktop width -------------------------------------------------

UNLABELLED_CONTROLS = """() => [
  ...document.querySelectorAll('input, select, textarea, button, a[href]'),
].filter((el) => el.offsetParent !== null || el.closest('dialog[open]'))
 .filter((el) => el.matches('a, button')
   ? !(el.textContent.trim() || el.getAttribute('aria-label'))
   : !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
 .map((el) => el.outerHTML.slice(0, 80))"""


def check_screen(page: Page, shots: Path, name: str, viewport: str, full: bool = True) -> None:
    """No sideways scrolling, every visible control named, and a screenshot."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways at {viewport} width"
    assert page.evaluate(UNLABELLED_CONTROLS) == [], f"unlabelled controls on {name}"
    page.screenshot(path=shots / f"{name}-{viewport}.png", full_page=full)


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_screens(
    server, open_page, api: httpx.Client, email: str, screenshots: Path, viewport: str
) -> None:
    """The main screens fit, are labelled, show keyboard focus, and are saved as screenshots."""
    api_learner(api, email, WORDS)
    page = open_page(server, viewport)
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    check_screen(page, screenshots, "signin", viewport)
    sign_in_page(page, email)
    expect(page.locator("#words-summary")).to_have_text("3 words.")

    # Focus moved to the screen's heading; Tab reaches the next control with a visible ring.
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => [document.activeElement.textContent.trim(),"
        " getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused == ["Add a word", "solid"]
    check_screen(page, screenshots, "words", viewport)

    page.get_by_role("button", name="Add a word").click()
    expect(page.get_by_role("dialog", name="Add a word")).to_be_visible()
    check_screen(page, screenshots, "add-word", viewport, full=False)  # a modal: the viewport
    page.keyboard.press("Escape")

    go(page, "Study")
    expect(page.locator("#study-left")).to_have_text("3 cards left")
    page.keyboard.press("Space")
    expect(page.locator("#study-answer")).to_be_visible()
    check_screen(page, screenshots, "study", viewport)
    page.keyboard.press("3")
    expect(page.locator("#study-left")).to_have_text("2 cards left")

    go(page, "Stats")
    expect(stat(page, "Reviewed today")).to_have_text("1")
    check_screen(page, screenshots, "stats", viewport)

    go(page, "Import & export")
    check_screen(page, screenshots, "import-export", viewport)
    assert not page.script_errors


# --- Safe retries -----------------------------------------------------------------------

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class LoseFirstAnswer:
    """Let the server process the first matching request, then lose its answer on the way
    back (`how`: the connection reset, or a 503 in its place); pass the rest through. Keeps
    each request's Idempotency-Key and whether the server said it replayed its answer."""

    def __init__(self, page: Page, pattern: str, method: str, how: str) -> None:
        self.method, self.how = method, how
        self.keys: list[str | None] = []
        self.replayed: list[str | None] = []
        page.route(pattern, self.handle)

    def handle(self, route: Route, request: Request) -> None:
        if request.method != self.method:
            route.continue_()
            return
        self.keys.append(request.headers.get("idempotency-key"))
        answer = route.fetch()  # the server does the write...
        self.replayed.append(answer.headers.get("idempotent-replayed"))
        if len(self.keys) > 1:
            route.fulfill(response=answer)
        elif self.how == "reset":  # ...and its answer never arrives
            route.abort("connectionreset")
        else:
            route.fulfill(status=503, json={"detail": "The database is unavailable"})


def test_review_whose_answer_was_lost_is_sent_again_with_its_key_and_recorded_once(
    page: Page, api: httpx.Client, email: str
) -> None:
    api_learner(api, email, WORDS[:1])
    lost = LoseFirstAnswer(page, "**/words/*/reviews", "POST", "reset")
    page.goto("/")
    sign_in_page(page, email)
    go(page, "Study")
    expect(page.locator("#study-word")).to_have_text("Fernweh")
    page.keyboard.press("Space")
    page.keyboard.press("3")  # good
    expect(status(page)).to_contain_text("“Fernweh”: Good.")
    assert len(lost.keys) == 2 and lost.keys[0] == lost.keys[1], lost.keys
    assert UUID.match(lost.keys[0])
    assert lost.replayed == [None, "true"]
    assert review_count(api, email) == 1


def test_word_whose_answer_was_a_503_is_sent_again_with_its_key_and_added_once(
    page: Page, api: httpx.Client, email: str
) -> None:
    api_learner(api, email)
    lost = LoseFirstAnswer(page, "**/words", "POST", "503")
    page.goto("/")
    sign_in_page(page, email)
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()
    add_word_in_page(page, WORDS[0])
    expect(status(page)).to_have_text("Added “Fernweh”.")
    assert len(lost.keys) == 2 and lost.keys[0] == lost.keys[1], lost.keys
    assert lost.replayed == [None, "true"]
    words = api.get("/words", headers=learner_auth(api, email)).json()
    assert [word["word"] for word in words["items"]] == ["Fernweh"]
    # The next word is a new write with a key of its own.
    add_word_in_page(page, WORDS[1])
    expect(status(page)).to_have_text("Added “Sobremesa”.")
    assert len(lost.keys) == 3 and lost.keys[2] != lost.keys[0]
