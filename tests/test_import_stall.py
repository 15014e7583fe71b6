"""An import never stalls other requests (issue 11): while one learner imports a 5 MiB CSV
file (about 90,000 rows), `/health` keeps answering in under 100 ms at the 99th percentile.

The app runs as a real `uvicorn vocab:app` process (as in test_faults.py), on SQLite in a file
and on a throwaway PostgreSQL cluster of its own. Figures are kept with `record_figure`.
"""

import asyncio
import statistics
import threading
from time import perf_counter

import httpx
import pytest
from conftest import Auth, record_figure, uvicorn_process
from test_faults import PG_CTL, cluster  # noqa: F401 (a fixture)

pytestmark = pytest.mark.process

IMPORT_BYTES = 5 * 1024 * 1024
HEALTH_P99_SECONDS = 0.1
HEALTH_INTERVAL_SECONDS = 0.02


def big_csv() -> tuple[bytes, int]:
    """A CSV file of real-looking rows, just under the 5 MiB limit, and its row count."""
    rows, size, lines = [], 0, 0
    header = "word,definition,example,language,difficulty,tags\n"
    size += len(header)
    while True:
        row = (
            f"Wort{lines},eine Bedeutung von Wort Nummer {lines},"
            f"Ein Satz mit dem Wort {lines}.,de,{lines % 5 + 1},nomen übung\n"
        )
        if size + len(row.encode()) > IMPORT_BYTES:
            break
        rows.append(row)
        size += len(row.encode())
        lines += 1
    return (header + "".join(rows)).encode(), lines


def health_until(done: threading.Event, url: str) -> list[float]:
    """/health's response times, one request every HEALTH_INTERVAL_SECONDS until `done`; on a
    thread of its own, so that sending the file does not delay the measurements."""
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        while not done.is_set():
            started = perf_counter()
            r = http.get("/health")
            times.append(perf_counter() - started)
            assert r.status_code == 200, r.text
            done.wait(HEALTH_INTERVAL_SECONDS)
    return times


#: What these tests measure is /health while the import runs, not whether the import fits in
#: REQUEST_TIMEOUT_SECONDS: on a slow machine, or one other jobs load, a 5 MiB file takes
#: 13–16 s (its time is recorded as a figure; files this large belong in POST /imports).
IMPORT_TIME = {"REQUEST_TIMEOUT_SECONDS": "60"}


async def import_and_measure(url: str, name: str) -> None:
    content, rows = big_csv()
    assert IMPORT_BYTES - 200 < len(content) <= IMPORT_BYTES
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        headers = (await Auth(http, email=f"stall-{name}@example.com").setup()).headers
        done = threading.Event()
        poller = asyncio.create_task(asyncio.to_thread(health_until, done, url))
        started = perf_counter()
        r = await http.post(
            "/words/import", headers=headers, files={"file": ("big.csv", content, "text/csv")}
        )
        took = perf_counter() - started
        done.set()
        times = await poller
        assert r.status_code == 200, r.text
        assert r.json() == {"created": rows, "skipped": 0, "errors": []}
        r = await http.get("/words", headers=headers, params={"limit": 1, "q": "WORT 4"})
        assert r.status_code == 200, r.text
    p99 = statistics.quantiles(times, n=100)[98]
    record_figure(
        f"import stall ({name}): 5 MiB CSV, {rows} rows, import / health p50 / p99 / max",
        f"{took:.1f} s / {statistics.median(times) * 1000:.0f} ms / {p99 * 1000:.0f} ms / "
        f"{max(times) * 1000:.0f} ms over {len(times)} requests",
    )
    assert len(times) >= 20, "the import ended too soon to prove anything"
    assert p99 < HEALTH_P99_SECONDS, (p99, sorted(times)[-10:])


async def test_health_answers_quickly_while_a_5_mib_import_runs_on_sqlite(tmp_path):
    with uvicorn_process(
        tmp_path, DATABASE_URL=f"sqlite://{tmp_path}/vocab.sqlite3", **IMPORT_TIME
    ) as app:
        await import_and_measure(app.url, "sqlite")
        assert "unhandled error" not in app.log_text()


@pytest.mark.skipif(not PG_CTL, reason="needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin)")
async def test_health_answers_quickly_while_a_5_mib_import_runs_on_postgres(cluster, tmp_path):  # noqa: F811
    with uvicorn_process(tmp_path, DATABASE_URL=cluster.url, **IMPORT_TIME) as app:
        await import_and_measure(app.url, "postgres")
        assert "unhandled error" not in app.log_text()
