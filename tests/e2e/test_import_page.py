"""The study page's import panel in a real browser (issue 14): an Anki package goes through a
background job, with a progress bar fed by GET /imports/{id}, then the result with the notes
that could not be imported."""

import os
from pathlib import Path

import httpx
import pytest

from .test_cards_page import go, learner, sign_in

try:
    from playwright.sync_api import Page, Route, expect
except ImportError:
    if os.environ.get("E2E_REQUIRED") == "1":
        raise  # CI: a missing Playwright is a failure, not a skip
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anki"


def sign_up(page: Page, api: httpx.Client, email: str) -> None:
    """Register through the API, then sign in on the page."""
    learner(api, email)
    sign_in(page, email)


def test_import_anki_package_shows_progress_then_the_result(
    page: Page, api: httpx.Client, email: str, screenshots: Path
) -> None:
    sign_up(page, api, email)
    go(page, "Import & export")
    # The fixture imports in a moment: the job's first answers are shown as still running,
    # until the progress bar has been seen.
    holding = [True]

    def still_running(route: Route) -> None:
        response = route.fetch()
        job = response.json()
        if holding[0]:
            job = {**job, "status": "running", "progress": {"done": 5, "total": 14}}
            job["result"] = job["finished_at"] = None
        route.fulfill(response=response, json=job)

    page.route("**/imports/*", still_running)
    file_input = page.get_by_label("File to import")
    assert ".apkg" in file_input.get_attribute("accept")
    file_input.set_input_files(FIXTURES / "vocab-modern.apkg")
    page.get_by_role("button", name="Import", exact=True).click()

    bar = page.get_by_label("Importing vocab-modern.apkg: 5 of 14…")
    expect(bar).to_be_visible()
    assert bar.evaluate("(el) => [el.value, el.max]") == [5, 14]
    page.screenshot(path=screenshots / "import-progress.png")
    holding[0] = False

    expect(page.locator("#import-counts")).to_have_text(
        "Created 13 words. Skipped 0 you already have. Imported 36 reviews. "
        "1 note(s) could not be imported:"
    )
    expect(page.locator("#import-errors li")).to_have_text(
        ["Note 1791187214000: Cloze notes cannot be imported as words"]
    )
    expect(page.locator("#import-progress")).to_be_hidden()
    go(page, "Words")
    expect(page.locator("#words-summary")).to_have_text("13 words.")
    assert page.script_errors == []


def test_import_hostile_package_shows_the_jobs_error(
    page: Page, api: httpx.Client, email: str
) -> None:
    sign_up(page, api, email)
    go(page, "Import & export")
    truncated = (FIXTURES / "vocab-legacy.apkg").read_bytes()[:20_000]

    page.get_by_label("File to import").set_input_files(
        {"name": "broken.apkg", "mimeType": "application/octet-stream", "buffer": truncated}
    )
    page.get_by_role("button", name="Import", exact=True).click()

    alert = page.locator("#import-form").get_by_role("alert")
    expect(alert).to_contain_text("not a complete zip archive")
    expect(page.locator("#import-result")).to_be_hidden()
