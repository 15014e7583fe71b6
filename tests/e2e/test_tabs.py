"""Two tabs of one session (issue 15): renewing at the same moment, or one after the other,
never signs the learner out.

A tab the page opens (like a duplicated tab) starts with a copy of sessionStorage, so both tabs
hold the same refresh token; both pages live in one browser context.
"""

import base64
import json
import os
import sqlite3
from contextlib import closing

import httpx
import pytest

from .conftest import Server
from .test_study_page import WORDS, api_learner, sign_in_page

try:
    from playwright.sync_api import Page, Request, Route, expect
except ImportError:
    if os.environ.get("E2E_REQUIRED") == "1":
        raise  # CI: a missing Playwright is a failure, not a skip
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

REFRESH_KEY = "vocab.refresh_token"


def signed_in(page: Page) -> None:
    expect(page.get_by_role("heading", name="Words", level=1)).to_be_visible()
    expect(page.locator("#words-summary")).to_have_text("1 word.")


def stored_refresh_token(page: Page) -> str:
    token = page.evaluate(f"() => sessionStorage.getItem('{REFRESH_KEY}')")
    assert token, "the tab holds no refresh token"
    return token


def login_rows(server: Server, email: str) -> list[tuple[str, bool, bool]]:
    """(family, spent, revoked) of each refresh token of that learner, read from the server's
    own database file."""
    with closing(sqlite3.connect(server.log.parent / "e2e.sqlite3")) as db:
        return db.execute(
            "SELECT family, used_at IS NOT NULL, revoked_at IS NOT NULL FROM refresh_tokens"
            " JOIN users ON users.id = refresh_tokens.user_id WHERE users.email = ?",
            (email,),
        ).fetchall()


def family_of(refresh_token: str) -> str:
    """The login a refresh token belongs to (its `fam` claim; the signature is not checked)."""
    payload = refresh_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["fam"]


def open_second_tab(first: Page, *, reload_first: bool = False) -> Page:
    """A second tab opened by the first (it gets a copy of the first's sessionStorage); the
    first reloads at the same moment when asked."""
    reload = "setTimeout(() => location.reload(), 0);" if reload_first else ""
    with first.context.expect_page() as opened:
        first.evaluate(f"() => {{ window.open('/'); {reload} }}")
    second = opened.value
    second.set_default_timeout(10_000)
    second.script_errors = []
    second.on("pageerror", lambda error: second.script_errors.append(str(error)))
    return second


def test_two_tabs_renewing_at_the_same_moment_both_stay_signed_in(
    open_page, server: Server, api: httpx.Client, email: str
) -> None:
    api_learner(api, email, WORDS[:1])
    first = open_page(server)
    first.goto("/")
    sign_in_page(first, email)
    signed_in(first)

    # Both tabs load at once and each renews its session: the two refreshes are held until
    # both are on their way, so they certainly present the same token together.
    held: list[tuple[Route, str]] = []

    def hold_until_both(route: Route, request: Request) -> None:
        held.append((route, json.loads(request.post_data or "{}")["refresh_token"]))
        if len(held) == 2:
            for waiting, _ in held:
                waiting.continue_()

    first.context.route("**/auth/refresh", hold_until_both)
    second = open_second_tab(first, reload_first=True)
    signed_in(first)
    signed_in(second)
    first.context.unroute("**/auth/refresh")
    assert len(held) == 2 and held[0][1] == held[1][1], "the tabs did not renew together"

    # Each tab carries on with a token of its own in the one login; renewing again works.
    assert stored_refresh_token(first) != stored_refresh_token(second)
    for page in (first, second):
        page.reload()
        signed_in(page)
    login = {family_of(stored_refresh_token(page)) for page in (first, second)}
    assert len(login) == 1, "the tabs are in two logins"
    rows = [row for row in login_rows(server, email) if row[0] in login]
    assert len(rows) == 5  # the sign-in, two renewals at once, then one per reload
    assert not any(revoked for _, _, revoked in rows), "the login was ended"
    assert not first.script_errors and not second.script_errors


def test_a_tab_takes_the_token_its_copy_renewed_to(open_page, start_server, email: str) -> None:
    """Renewals one after the other: with no grace window at all, a tab that renewed with a
    spent token would end the login. The copy that renewed first tells the other which token
    replaced it."""
    strict = start_server(REFRESH_REUSE_GRACE_SECONDS="0")
    with httpx.Client(base_url=strict.url) as client:
        api_learner(client, email, WORDS[:1])
    first = open_page(strict)
    first.goto("/")
    sign_in_page(first, email)
    signed_in(first)
    copied = stored_refresh_token(first)

    second = open_second_tab(first)
    signed_in(second)  # it renewed with the copied token
    renewed = stored_refresh_token(second)
    assert renewed != copied
    first.wait_for_function(f"t => sessionStorage.getItem('{REFRESH_KEY}') === t", arg=renewed)

    for page in (first, second, first):  # each renewal is passed on to the other tab
        page.reload()
        signed_in(page)
    newest = stored_refresh_token(first)
    second.wait_for_function(f"t => sessionStorage.getItem('{REFRESH_KEY}') === t", arg=newest)
    rows = login_rows(strict, email)
    assert not any(revoked for _, _, revoked in rows), "the login was ended"
    assert not first.script_errors and not second.script_errors
