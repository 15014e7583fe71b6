"""End-to-end fixtures: the real app in a uvicorn process, driven through headless Chromium.

The browser is Debian's `chromium` package (/usr/bin/chromium; CHROMIUM_PATH names another
Chromium-based browser, e.g. /usr/bin/google-chrome on GitHub's runners), driven by Playwright for
Python; Playwright's own browser downloads are never used. Run:

    python -m pytest tests/e2e -m e2e -p no:cacheprovider --no-cov

Without Playwright or Chromium these tests are skipped, unless E2E_REQUIRED=1 (CI), where a
missing browser is a failure.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from conftest import Server, uvicorn_process

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # the default suite does not need it
    sync_playwright = None

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 800}}
#: What the browser tests' servers change in the suite's settings: no CORS origins (the page is
#: served by the app itself), migrations on start-up, and only warnings in the log.
E2E_SETTINGS = {"CORS_ORIGINS": "", "MIGRATE_ON_START": "true", "LOG_LEVEL": "WARNING"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end tests in a real browser (tests/e2e)")


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install -y chromium, or set CHROMIUM_PATH)"
    return None


@pytest.fixture(scope="package")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A factory: start the app (from the project root) with a fresh SQLite database; every
    server it started is stopped when the package's tests are done."""
    with ExitStack() as running:

        def start(**settings: str) -> Server:
            folder = tmp_path_factory.mktemp("server")
            database = f"sqlite://{folder / 'e2e.sqlite3'}"
            server = running.enter_context(
                uvicorn_process(
                    folder, "--no-access-log", DATABASE_URL=database, **E2E_SETTINGS | settings
                )
            )
            page = httpx.get(f"{server.url}/", timeout=5)
            if page.status_code != 200 or "/static/app.js" not in page.text:
                pytest.fail(f"GET / does not serve the study page (HTTP {page.status_code})")
            return server

        yield start


@pytest.fixture(scope="package")
def browser() -> Iterator["Browser"]:
    """Headless Chromium from the system package (or CHROMIUM_PATH)."""
    problem = missing_requirement()
    if problem:
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(f"E2E_REQUIRED=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def server(browser: "Browser", start_server) -> Server:
    """The app every test shares (each test signs up its own learner)."""
    return start_server()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """A plain HTTP client for the same server, to set up data and check the page's effects."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def email() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def open_page(browser: "Browser") -> Iterator:
    """A factory: a page on a server in a fresh browser context (empty storage), at phone or
    desktop size; uncaught script errors and Content-Security-Policy violations are collected
    in `page.script_errors`."""
    contexts = []

    def new_page(server: Server, viewport: str = "desktop") -> "Page":
        context = browser.new_context(
            base_url=server.url, viewport=VIEWPORTS[viewport], accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.script_errors = []
        page.on("pageerror", lambda error: page.script_errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                page.script_errors.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return page

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page, server: Server) -> Iterator["Page"]:
    """A desktop-sized page; the test fails if the page threw an uncaught error."""
    page = open_page(server)
    yield page
    assert not page.script_errors, f"uncaught errors in the page: {page.script_errors}"


@pytest.fixture(scope="package")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
