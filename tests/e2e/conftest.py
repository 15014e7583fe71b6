"""End-to-end fixtures: the real app in a uvicorn process, driven through headless Chromium.

The browser is Debian's `chromium` package (/usr/bin/chromium; CHROMIUM_PATH names another
Chromium-based browser, e.g. /usr/bin/google-chrome on GitHub's runners), driven by Playwright for
Python; Playwright's own browser downloads are never used. Run:

    python -m pytest tests/e2e -m e2e -p no:cacheprovider --no-cov

Without Playwright or Chromium these tests are skipped, unless E2E_REQUIRED=1 (CI), where a
missing browser is a failure.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # the default suite does not need it
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
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
#: The server's signing key, so a test can make an expired access token of the right shape.
E2E_SECRET_KEY = "e2e-secret-key-0123456789abcdef-not-for-production-use-0123456"
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 800}}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end tests in a real browser (tests/e2e)")


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install -y chromium, or set CHROMIUM_PATH)"
    return None


@dataclass
class Server:
    """A running app: its base URL and its log."""

    url: str
    log: Path
    process: subprocess.Popen
    secret_key: str = E2E_SECRET_KEY

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def server_args(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="package")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A factory: start the app (from the project root) with a fresh SQLite database."""
    started: list[Server] = []

    def start(**settings: str) -> Server:
        folder = tmp_path_factory.mktemp("server")
        port = free_port()
        env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite://{folder / 'e2e.sqlite3'}",
            "SECRET_KEY": E2E_SECRET_KEY,
            "ARGON2_MEMORY_KIB": "8",
            "ARGON2_TIME_COST": "1",
            "ARGON2_PARALLELISM": "1",
            "RATE_LIMIT_LOGIN": "off",
            "RATE_LIMIT_LOGIN_CLIENT": "off",
            "RATE_LIMIT_LOGIN_ACCOUNT": "off",
            "RATE_LIMIT_REGISTER": "off",
            "RATE_LIMIT_STORAGE": "memory://",
            "CORS_ORIGINS": "",
            "MIGRATE_ON_START": "true",
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        log = folder / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "vocab:app", *server_args(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(url=f"http://127.0.0.1:{port}", log=log, process=process)
        started.append(server)
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start in 30 s:\n{server.log_tail()}")
            time.sleep(0.1)
        page = httpx.get(f"{server.url}/", timeout=5)
        if page.status_code != 200 or "/static/app.js" not in page.text:
            pytest.fail(f"GET / does not serve the study page (HTTP {page.status_code})")
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


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
