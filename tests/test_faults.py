"""Faults a deployment meets: the database going away and coming back, and a SIGTERM during
traffic. Each test runs the app as a real `uvicorn vocab:app` process (settings are read at
import, so it cannot share this process) and talks to it over HTTP.

The database test starts a throwaway PostgreSQL cluster of its own with Debian's binaries (never
the machine's shared server), so it needs no TEST_DATABASE_URL. Figures go to
/tmp/hardening-figures.txt.
"""

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from time import monotonic, perf_counter

import httpx
import pytest
from conftest import Server, free_port, uvicorn_process

# Each test runs its own server process: run once per CI run (they need no TEST_DATABASE_URL).
pytestmark = pytest.mark.process

FIGURES = Path("/tmp/hardening-figures.txt")
PG_CTL = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
PASSWORD = "correct horse battery staple"
#: Every request must answer within this while the database is down: a 503, never a hang.
OUTAGE_DEADLINE_SECONDS = 10


def record_figure(name: str, value: object) -> None:
    """Keep one `name: value` line in the figures file (replacing an older value)."""
    lines = FIGURES.read_text().splitlines() if FIGURES.exists() else []
    lines = [line for line in lines if not line.startswith(f"{name}:")] + [f"{name}: {value}"]
    FIGURES.write_text("\n".join(sorted(lines)) + "\n")


# --- A throwaway PostgreSQL cluster ---


class Cluster:
    """A PostgreSQL cluster in a temporary directory, owned by the `postgres` user when we are
    root (PostgreSQL refuses to run as root)."""

    def __init__(self, root: Path) -> None:
        self.bin = Path(PG_CTL[-1]).parent  # the newest installed version
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_owner, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ctl(self, *args: str) -> None:
        done = self.run("pg_ctl", "-D", str(self.data), *args)
        assert done.returncode == 0, done.stdout + done.stderr + self.server_log()

    def server_log(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def init(self) -> None:
        done = self.run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "-N"
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self.ctl("-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self.ctl("-w", "-m", "fast", "stop")

    def is_running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.data), "status").returncode == 0


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh, running cluster; stopped and deleted afterwards, whatever happened."""
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root needs runuser to start PostgreSQL as postgres")
    # Not under pytest's tmp_path: its parents are private to root, and postgres must get in.
    root = Path(tempfile.mkdtemp(prefix="vocab-faults-pg-"))
    cluster = Cluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.data.exists() and cluster.is_running():
            cluster.run("pg_ctl", "-D", str(cluster.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


async def sign_up(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Register and log in; returns the Authorization header."""
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- Database outage ---

OUTAGE_REQUESTS = [
    ("GET", "/health", None),
    ("GET", "/words", None),
    ("POST", "/words", {"word": "ephemeral", "definition": "lasting a very short time"}),
    ("GET", "/users/me", None),
    ("POST", "/auth/token", None),
]


@pytest.mark.skipif(not PG_CTL, reason="needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin)")
async def test_api_while_database_is_down_answers_503_and_recovers(cluster, tmp_path):
    faults = requests = 0
    with uvicorn_process(tmp_path, DATABASE_URL=cluster.url, DATABASE_TIMEOUT_SECONDS="2") as app:
        async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
            headers = await sign_up(http, "outage@example.com")
            r = await http.post(
                "/words",
                headers=headers,
                json={"word": "resilient", "definition": "recovering quickly"},
            )
            assert r.status_code == 201, r.text
            word = r.json()
            requests += 3
            for _ in range(2):  # down and up twice: recovery is not a one-off
                cluster.stop()
                faults += 1
                for method, path, body in OUTAGE_REQUESTS:
                    form = {"username": "outage@example.com", "password": PASSWORD}
                    started = perf_counter()
                    r = await http.request(
                        method,
                        path,
                        headers=headers,
                        json=body,
                        data=form if path == "/auth/token" else None,
                    )
                    elapsed = perf_counter() - started
                    requests += 1
                    assert elapsed < OUTAGE_DEADLINE_SECONDS, (method, path, elapsed)
                    assert r.status_code == 503, (method, path, r.text)
                    if path == "/health":
                        assert r.json() == {"status": "error", "database": "unavailable"}
                    else:
                        assert r.json() == {
                            "detail": "The database is unavailable; try again shortly"
                        }
                cluster.start()
                r = await http.get("/health")
                assert r.status_code == 200, r.text
                assert r.json() == {"status": "ok", "database": "ok"}
                r = await http.get("/words", headers=headers)
                assert r.status_code == 200, r.text
                assert [w["id"] for w in r.json()["items"]] == [word["id"]]
                requests += 2
            assert app.process.poll() is None  # the same process throughout
    record_figure("database outage: faults injected (cluster stopped and restarted)", faults)
    record_figure("database outage: requests made", requests)
    record_figure("database outage: requests during the outages", faults * len(OUTAGE_REQUESTS))
    assert "unhandled error" not in app.log_text()  # no 500 on the way


# --- Graceful shutdown ---

IN_FLIGHT_LOGINS = 8
ASGI_BODY_READ = "Receive {'type': 'http.request'"


async def wait_for_log(server: Server, text: str, count: int, *, seconds: float) -> None:
    deadline = monotonic() + seconds
    while server.log_text().count(text) < count:
        assert monotonic() < deadline, f"waited for {count}x {text!r}:\n{server.log_text()}"
        await asyncio.sleep(0.01)


async def test_sigterm_lets_in_flight_logins_finish(tmp_path):
    """uvicorn stops taking connections on SIGTERM but finishes the requests it has; the app's
    lifespan then closes the database and the process exits. uvicorn (since 0.29) re-raises the
    signal after a clean shutdown, so "exits 0" reads as: ended by that SIGTERM, or 0."""
    with uvicorn_process(
        tmp_path,
        "--timeout-graceful-shutdown",
        "10",
        "--log-level",
        "trace",  # logs each request body the app reads: proof that a request is in flight
        DATABASE_URL=f"sqlite://{tmp_path}/vocab.sqlite3",
        ARGON2_MEMORY_KIB="19456",
        # A login takes ~0.2 s on an idle 2-core machine (8 at once ~1 s): long enough to be
        # caught in flight, short enough to drain well inside the 10 s under heavy load.
        ARGON2_TIME_COST="12",
    ) as app:
        limits = httpx.Limits(max_connections=IN_FLIGHT_LOGINS + 2)
        async with httpx.AsyncClient(base_url=app.url, timeout=60, limits=limits) as http:
            await sign_up(http, "shutdown@example.com")
            form = {"username": "shutdown@example.com", "password": PASSWORD}
            started = perf_counter()
            r = await http.post("/auth/token", data=form)
            one_login = perf_counter() - started
            assert r.status_code == 200, r.text
            already_read = app.log_text().count(ASGI_BODY_READ)
            logins = [
                asyncio.create_task(http.post("/auth/token", data=form))
                for _ in range(IN_FLIGHT_LOGINS)
            ]
            await wait_for_log(app, ASGI_BODY_READ, already_read + IN_FLIGHT_LOGINS, seconds=10)
            await asyncio.sleep(0.1)
            app.process.send_signal(signal.SIGTERM)
            in_flight = sum(not task.done() for task in logins)
            signalled = perf_counter()
            responses = await asyncio.gather(*logins)
            drained = perf_counter() - signalled
        exit_code = await asyncio.to_thread(app.process.wait, 15)
    record_figure("graceful shutdown: one login (argon2 19456 KiB, t=12)", f"{one_login:.2f} s")
    record_figure(
        "graceful shutdown: logins in flight at SIGTERM / drained in",
        f"{in_flight} of {IN_FLIGHT_LOGINS} / {drained:.2f} s",
    )
    assert in_flight > 0, "the logins finished before SIGTERM; the test proved nothing"
    assert [r.status_code for r in responses] == [200] * IN_FLIGHT_LOGINS
    assert all(r.json()["token_type"] == "bearer" for r in responses)
    assert exit_code in (0, -signal.SIGTERM), app.log_text()
    log = app.log_text()
    assert log.index("Shutting down") < log.index("Application shutdown complete")
    assert "Finished server process" in log
    assert "ERROR" not in log
