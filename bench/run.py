"""vocab's HTTP benchmark: vocab against a raw Starlette + asyncpg + orjson server, with wrk.

    .venv/bin/python bench/run.py            # the full benchmark (~15 minutes)
    .venv/bin/python bench/run.py --smoke    # small data, short runs: CI's check that it works

It makes a fresh PostgreSQL database, migrates it with `python vocab.py migrate`, seeds it through
vocab's models (bench/seed.py), starts vocab and bench/raw_server.py under uvicorn (one worker,
uvloop, httptools) pinned to one core, drives each endpoint with wrk pinned to the other core,
alternating vocab and raw, and prints a Markdown report (also written to bench/results/). It exits
non-zero when a server fails to start, answers differently from the other, or answers errors.
See bench/README.md.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WRK_DIR = BENCH / "wrk"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVERS = ("vocab", "raw")
#: Other processes may use this share of a core during a run before the run is flagged.
OTHER_CPU_LIMIT = 0.10


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    log(f"FAILED: {message}")
    sys.exit(1)


# --- Tools ---


def ensure_wrk() -> str:
    """wrk's path; installed with apt-get when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: installing it with apt-get")
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
        if path:
            return path
    fail("wrk is not installed: run `sudo apt-get install wrk` (Debian/Ubuntu) and try again")
    raise AssertionError


def ensure_python_packages() -> None:
    """The raw server's extras (bench/requirements.txt) in this interpreter's environment."""
    missing = []
    for module in ("orjson", "argon2", "uvloop", "httptools", "asyncpg", "fsrs"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if not missing:
        return
    if sys.prefix == sys.base_prefix:
        fail(
            f"missing Python modules {missing}: run this with the project's virtual environment "
            "(.venv/bin/python bench/run.py) after `.venv/bin/pip install -r requirements.txt "
            "-r bench/requirements.txt`"
        )
    log(f"missing {missing}: installing bench/requirements.txt into {sys.prefix}")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(BENCH / "requirements.txt")], check=True)


# --- Processes and CPU accounting ---


def proc_stat(pid: int) -> tuple[str, int]:
    """(command name, utime + stime in clock ticks) of a process, all its threads included."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
        text = file.read()
    name = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return name, int(rest[11]) + int(rest[12])


def postgres_ticks() -> dict[int, int]:
    """CPU ticks of every PostgreSQL process, by pid."""
    ticks = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, used = proc_stat(int(entry))
                if name == "postgres" or name.startswith("postgres:"):
                    ticks[int(entry)] = used
    return ticks


def busy_ticks() -> int:
    """Non-idle ticks of the whole machine (all cores) since boot."""
    with open("/proc/stat", encoding="ascii") as file:
        fields = [int(v) for v in file.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuWindow:
    """CPU used during a window: by the server, PostgreSQL, wrk and everything else."""

    server_pid: int
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.server0 = proc_stat(self.server_pid)[1]
        self.pg0 = postgres_ticks()
        self.busy0 = busy_ticks()
        self.children0 = children_cpu_seconds()

    def close(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        server = (proc_stat(self.server_pid)[1] - self.server0) / CLK_TCK
        pg_now = postgres_ticks()
        pg = sum(used - self.pg0.get(pid, 0) for pid, used in pg_now.items()) / CLK_TCK
        busy = (busy_ticks() - self.busy0) / CLK_TCK
        client = children_cpu_seconds() - self.children0
        other = max(0.0, busy - server - pg - client)
        return {
            "elapsed_s": elapsed,
            "server_cpu_s": server,
            "postgres_cpu_s": pg,
            "wrk_cpu_s": client,
            "other_cpu_s": other,
            "other_cores": other / elapsed,
        }


class Server:
    """A uvicorn server started by this script (pinned to one core unless told otherwise);
    with several workers, `pid` is uvicorn's parent process, which serves no request."""

    def __init__(
        self, name: str, app: str, app_dir: Path, port: int, env: dict[str, str], workers: int = 1
    ):
        self.name, self.app, self.app_dir, self.port, self.env = name, app, app_dir, port, env
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, workdir: Path, cpu: str | None) -> None:
        self.launch(workdir, cpu)
        self.wait_ready()

    def launch(self, workdir: Path, cpu: str | None) -> None:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--app-dir",
            str(self.app_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(self.workers),
        ]
        if cpu is not None:
            command = ["taskset", "-c", cpu, *command]  # taskset execs: the pid is uvicorn's
        self.log_path = workdir / f"{self.name}-server.log"
        with self.log_path.open("ab") as log_file:
            # The working directory is the results folder, so no .env of a developer applies.
            self.process = subprocess.Popen(
                command, cwd=workdir, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail_start(f"exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(self.url + "/health", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        self.fail_start("did not answer /health within 90 s")

    def fail_start(self, why: str) -> None:
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""
        fail(f"{self.name} server {why}; its log ends with:\n{tail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- HTTP helpers (setup and contract checks, not measurement) ---


def http(
    method: str, url: str, *, token: str | None = None, body: Any = None, form: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def recall_shaped(value: Any) -> Any:
    """A response with every `retrievability` reduced to its type (it moves with the clock)."""
    if isinstance(value, dict):
        return {
            k: shape(v) if k == "retrievability" else recall_shaped(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [recall_shaped(v) for v in value]
    return value


def shape(value: Any) -> Any:
    """The JSON structure of a value: keys and types, not contents."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) else type(value).__name__


# --- Database ---


async def recreate_database(pg_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url.rstrip("/") + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(pg_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url.rstrip("/") + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def query(database_url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


# --- wrk ---


@dataclass
class Scenario:
    key: str
    label: str
    script: str
    args: list[str]
    connections: int
    threads: int


def run_wrk(
    wrk: str,
    server: Server,
    scenario: Scenario,
    duration: float,
    cpu: str | None,
    *,
    extra: Scenario | None = None,
) -> dict[str, Any]:
    """One wrk run against a server (optionally with a second wrk alongside); returns figures."""

    def command(s: Scenario, seconds: float) -> list[str]:
        line = [
            wrk,
            f"-t{s.threads}",
            f"-c{s.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(WRK_DIR / s.script),
            server.url,
            "--",
            *s.args,
        ]
        return ["taskset", "-c", cpu, *line] if cpu is not None else line

    window = CpuWindow(server.pid)
    rss_before = rss_mib(server.pid)
    side = None
    if extra is not None:
        side = subprocess.Popen(command(extra, duration), stdout=subprocess.PIPE, text=True)
    # Scripts that cap their requests (mixed.lua) print THREAD_DONE per finished thread; wrk
    # itself would sleep out its whole duration, so it gets the SIGINT that ends it early.
    main = subprocess.Popen(
        command(scenario, duration), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert main.stdout is not None
    output, finished = [], 0
    for line in main.stdout:
        output.append(line)
        if line.strip() == "THREAD_DONE":
            finished += 1
            if finished == scenario.threads:
                main.send_signal(signal.SIGINT)
    main.wait()
    side_out = side.communicate()[0] if side is not None else ""
    cpu_use = window.close()
    result = parse_wrk("".join(output), main.returncode, "")
    result.update(cpu_use)
    result["rss_mib_before"] = rss_before
    result["rss_mib_after"] = rss_mib(server.pid)
    requests = max(result["requests"], 1)
    result["cpu_ms_per_request"] = 1000 * cpu_use["server_cpu_s"] / requests
    if side is not None:
        result["side"] = parse_wrk(side_out, side.returncode, "")
    return result


def parse_wrk(stdout: str, returncode: int, stderr: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("WRK_JSON "):
            r = json.loads(line[len("WRK_JSON ") :])
            seconds = r["duration_us"] / 1e6
            return {
                "requests": r["requests"],
                "rps": r["requests"] / seconds if seconds else 0.0,
                "p50_ms": r["p50_us"] / 1000,
                "p90_ms": r["p90_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000,
                "max_ms": r["max_us"] / 1000,
                "non_2xx": r["status"],
                "socket_errors": r["connect"] + r["read"] + r["write"] + r["timeout"],
            }
    fail(f"wrk exited with {returncode} without a summary:\n{stdout}\n{stderr}")
    raise AssertionError


# --- The benchmark ---


@dataclass
class Bench:
    args: argparse.Namespace
    wrk: str
    workdir: Path
    database_url: str
    secret: str
    seed: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "RATE_LIMIT_", "ARGON2_", "SECRET_KEY"))
        }
        env.update(
            DATABASE_URL=self.database_url,
            ENVIRONMENT="production",
            SECRET_KEY=self.secret,
            # As deployed: every request writes its JSON access-log line (to the server's
            # log file, bench/results/*/NAME-server.log); the raw server writes the same line.
            LOG_LEVEL=self.args.log_level,
            RATE_LIMIT_LOGIN="off",
            RATE_LIMIT_LOGIN_CLIENT="off",
            RATE_LIMIT_LOGIN_ACCOUNT="off",
            RATE_LIMIT_REGISTER="off",
            DATABASE_POOL_SIZE=str(self.args.pool_size),
            # Long enough for every token the run signs in for to outlive it.
            ACCESS_TOKEN_MINUTES="240",
            PYTHONUNBUFFERED="1",
            **extra,
        )
        return env

    # -- setup --

    def prepare_database(self) -> None:
        name = self.args.db
        log(f"database {name}: dropping and creating it")
        asyncio.run(recreate_database(self.args.pg_url, name))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "vocab.py", "migrate"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            fail(f"`python vocab.py migrate` failed:\n{done.stdout}\n{done.stderr}")
        self.results["migrate_s"] = time.perf_counter() - started
        profile = "smoke" if self.args.smoke else "full"
        log(f"seeding the {profile} data set through vocab's models (bench/seed.py)")
        started = time.perf_counter()
        out = self.workdir / "seed.json"
        done = subprocess.run(
            [sys.executable, str(BENCH / "seed.py"), "--profile", profile, "--out", str(out)],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            fail(f"seeding failed:\n{done.stdout}\n{done.stderr}")
        self.seed = json.loads(out.read_text())
        self.results["seed_wall_s"] = time.perf_counter() - started
        log(f"seeded in {self.results['seed_wall_s']:.1f} s: {self.seed['counts']}")

    def start_servers(self) -> None:
        self.servers = {
            "vocab": Server("vocab", "vocab:app", ROOT, self.args.port, self.env()),
            "raw": Server("raw", "raw_server:app", BENCH, self.args.port + 1, self.env()),
        }
        for server in self.servers.values():
            log(f"starting {server.name} on {server.url}")
            server.launch(self.workdir, self.args.server_cpu)
        for server in self.servers.values():
            server.wait_ready()

    def sign_in(self) -> None:
        """Access tokens from vocab's own /auth/token (both servers accept them)."""
        for name, user in self.seed["users"].items():
            status, body = http(
                "POST",
                self.servers["vocab"].url + "/auth/token",
                form={"username": user["email"], "password": self.seed["password"]},
            )
            if status != 200:
                fail(f"signing in as {user['email']} failed: {status} {body}")
            self.tokens[name] = body["access_token"]

    def write_id_files(self) -> None:
        users = self.seed["users"]
        for name in ("main", "writer"):
            rows = asyncio.run(
                query(self.database_url, "SELECT id FROM words WHERE user_id=$1", users[name]["id"])
            )
            ids = [r["id"] for r in rows]
            random.Random(7).shuffle(ids)
            (self.workdir / f"ids-{name}.txt").write_text("".join(f"{i}\n" for i in ids))

    def check_contract(self) -> None:
        """Both servers must answer the benchmark's requests alike (same JSON for reads of the
        same rows, same structure for writes), or the comparison means nothing."""
        vocab, raw = self.servers["vocab"].url, self.servers["raw"].url
        main, big, writer = self.tokens["main"], self.tokens["big"], self.tokens["writer"]
        word_id = int((self.workdir / "ids-main.txt").read_text().split()[0])
        q = urllib.parse.quote(self.seed["search_term"])
        reads = [
            ("/words?limit=20", main),
            (f"/words/{word_id}", main),
            (f"/words?limit=20&q={q}", big),
            ("/study?limit=20", main),
            ("/stats/forecast?days=30", main),
            ("/words/2147483647", main),
        ]
        for path, token in reads:
            a, b = http("GET", vocab + path, token=token), http("GET", raw + path, token=token)
            if path.startswith("/study"):  # "now" differs by a moment: compare the structure
                a, b = (a[0], shape(a[1])), (b[0], shape(b[1]))
            else:  # so does a card's retrievability now, a moment later
                a, b = (a[0], recall_shaped(a[1])), (b[0], recall_shaped(b[1]))
            if a != b:
                self.problems.append(f"GET {path}: vocab and raw differ:\n{a}\n{b}")
        tag = secrets.token_hex(4)
        writer_ids = (self.workdir / "ids-writer.txt").read_text().split()
        for n, url in enumerate((vocab, raw)):
            body = {"word": f"check-{tag}-{n}", "definition": "a check", "tags": ["x"]}
            created = http("POST", url + "/words", token=writer, body=body)
            reviewed = http(
                "POST",
                f"{url}/words/{writer_ids[0]}/reviews",
                token=writer,
                body={"rating": "good", "duration_ms": 1000},
            )
            unauthorized = http("GET", url + "/words", token=main[:-2] + "xx")
            for what, (status, _), expected in (
                ("POST /words", created, 201),
                ("POST /words/{id}/reviews", reviewed, 201),
                ("GET /words with a bad signature", unauthorized, 401),
            ):
                if status != expected:
                    self.problems.append(f"{what} on {url}: {status}, expected {expected}")
            self.results.setdefault("shapes", {})[url] = [shape(created[1]), shape(reviewed[1])]
        shapes = list(self.results.pop("shapes").values())
        if shapes[0] != shapes[1]:
            self.problems.append(f"write responses differ in structure:\n{shapes[0]}\n{shapes[1]}")
        if self.problems:
            fail("the servers do not answer alike:\n" + "\n".join(self.problems))
        log("contract check: vocab and raw answer alike")

    # -- measurement --

    def scenarios(self) -> list[Scenario]:
        t, c = self.args.threads, self.args.connections
        w = self.workdir
        q = urllib.parse.quote(self.seed["search_term"])
        tk = self.tokens
        big_words = f"{self.seed['counts']['words_big']:,}"
        small_words = f"{self.seed['counts']['words_small']:,}"
        return [
            Scenario(
                "list", "GET /words?limit=50", "get.lua", [tk["main"], "/words?limit=50"], c, t
            ),
            Scenario(
                "get", "GET /words/{id}", "get_word.lua", [tk["main"], f"{w}/ids-main.txt"], c, t
            ),
            Scenario("create", "POST /words", "post_word.lua", [tk["writer"], "PREFIX"], c, t),
            Scenario(
                "study", "GET /study (with previews)", "get.lua", [tk["main"], "/study"], c, t
            ),
            Scenario(
                "forecast",
                "GET /stats/forecast (30 days)",
                "get.lua",
                [tk["main"], "/stats/forecast"],
                c,
                t,
            ),
            Scenario(
                "review",
                "POST /words/{id}/reviews",
                "review.lua",
                [tk["writer"], f"{w}/ids-writer.txt"],
                c,
                t,
            ),
            Scenario(
                "list_big",
                f"GET /words?limit=50 ({big_words} words)",
                "get.lua",
                [tk["big"], "/words?limit=50"],
                c,
                t,
            ),
            Scenario(
                "search_big",
                f"GET /words?q={q}&limit=50 ({big_words} words)",
                "get.lua",
                [tk["big"], f"/words?q={q}&limit=50"],
                c,
                t,
            ),
            Scenario(
                "list_small",
                f"GET /words?limit=50 ({small_words} words)",
                "get.lua",
                [tk["small"], "/words?limit=50"],
                c,
                t,
            ),
            Scenario(
                "login", "POST /auth/token (1 connection)", "login.lua", [self.login_form()], 1, 1
            ),
        ]

    def login_form(self) -> str:
        email = self.seed["users"]["main"]["email"]
        return urllib.parse.urlencode({"username": email, "password": self.seed["password"]})

    def measure(
        self,
        server: Server,
        scenario: Scenario,
        seconds: float,
        label: str,
        cpu: str | None = "client",  # "client": the client core
        **kw: Any,
    ):
        if "PREFIX" in scenario.args:  # unique words per run
            stamp = f"{server.name}-{label}-{int(time.time() * 1000) % 10**8}"
            args = [stamp if a == "PREFIX" else a for a in scenario.args]
            scenario = Scenario(**{**scenario.__dict__, "args": args})
        client_cpu = self.args.client_cpu if cpu == "client" else cpu
        result = run_wrk(self.wrk, server, scenario, seconds, client_cpu, **kw)
        where = f"{scenario.label} on {server.name} ({label})"
        # A warm-up of a slow endpoint, or the side load (logins) in a short smoke run, may finish
        # no request; a measured run must.
        must_answer = label != "warm-up"
        for r in (result, result.get("side")):
            idle = r is result and must_answer and not r["requests"]
            if r and (r["non_2xx"] or r["socket_errors"] or idle):
                self.problems.append(
                    f"{where}: {r['requests']} requests, {r['non_2xx']} non-2xx, "
                    f"{r['socket_errors']} socket errors"
                )
        if result["other_cores"] > OTHER_CPU_LIMIT:
            self.flagged.append(
                f"{where}: other processes used {100 * result['other_cores']:.0f} % of a core"
            )
        return result

    def run_scenarios(self) -> None:
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for scenario in self.scenarios():
            runs[scenario.key] = {name: [] for name in SERVERS}
            for name in SERVERS:  # warm-up: pool, caches, code paths; not recorded
                if self.args.warmup > 0:
                    self.measure(self.servers[name], scenario, self.args.warmup, "warm-up")
            for round_no in range(1, self.args.rounds + 1):
                for name in SERVERS:  # A B A B
                    r = self.measure(
                        self.servers[name], scenario, self.args.duration, f"r{round_no}"
                    )
                    runs[scenario.key][name].append(r)
                    log(
                        f"{scenario.label:<44} {name:<5} round {round_no}: {r['rps']:8.0f} req/s  "
                        f"p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                        f"cpu {r['cpu_ms_per_request']:.2f} ms/req  "
                        f"other {100 * r['other_cores']:.0f} %"
                    )
        self.results["runs"] = runs
        self.results["labels"] = {s.key: s.label for s in self.scenarios()}

    def run_login_burst(self) -> None:
        """GET /words/{id} while 4 connections keep signing in (argon2 at production cost),
        each right after the same load without logins (the baseline)."""
        scenarios = {s.key: s for s in self.scenarios()}
        burst = Scenario(**{**scenarios["login"].__dict__, "connections": 4})
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
        alone: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
        for round_no in range(1, self.args.rounds + 1):
            for name in SERVERS:
                base = self.measure(
                    self.servers[name],
                    scenarios["get"],
                    self.args.duration,
                    f"baseline r{round_no}",
                )
                alone[name].append(base)
                r = self.measure(
                    self.servers[name],
                    scenarios["get"],
                    self.args.duration,
                    f"login burst r{round_no}",
                    extra=burst,
                )
                runs[name].append(r)
                log(
                    f"GET /words/{{id}} + login burst {name:<5} round {round_no}: "
                    f"{r['rps']:.0f} req/s p99 {r['p99_ms']:.1f} ms, "
                    f"{r['side']['rps']:.1f} logins/s (alone: {base['rps']:.0f} req/s "
                    f"p99 {base['p99_ms']:.1f} ms)"
                )
        self.results["burst"] = runs
        self.results["burst_baseline"] = alone

    def run_workers(self) -> None:
        """`GET /words/{id}` on vocab with one worker and with WEB_CONCURRENCY=2, neither the
        servers nor wrk pinned (two workers need both cores)."""
        get = {s.key: s for s in self.scenarios()}["get"]
        runs: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
        self.servers["vocab"].stop()
        for round_no in range(1, self.args.rounds + 1):
            for workers in ("1", "2"):
                server = Server(
                    "vocab", "vocab:app", ROOT, self.args.port, self.env(WEB_CONCURRENCY=workers)
                )
                server.workers = int(workers)
                server.start(self.workdir, None)
                if self.args.warmup > 0:
                    self.measure(server, get, self.args.warmup, "warm-up", cpu=None)
                r = self.measure(
                    server, get, self.args.duration, f"{workers}w r{round_no}", cpu=None
                )
                server.stop()
                runs[workers].append(r)
                log(
                    f"GET /words/{{id}} vocab, {workers} worker(s), unpinned, round {round_no}: "
                    f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
                )
        self.servers["vocab"].start(self.workdir, self.args.server_cpu)
        self.results["workers"] = runs

    def run_memory(self) -> None:
        """RSS of freshly started servers after N/2 and N mixed requests."""
        total = self.args.memory_requests
        memory: dict[str, Any] = {}
        for server in self.servers.values():
            server.stop()
            server.launch(self.workdir, self.args.server_cpu)
        for server in self.servers.values():
            server.wait_ready()
        for name in SERVERS:
            server = self.servers[name]
            points = [{"requests": 0, "rss_mib": rss_mib(server.pid)}]
            served = 0
            for half in (1, 2):
                per_thread = total // 2 // self.args.threads
                scenario = Scenario(
                    "memory",
                    "mixed list/get/study/create",
                    "mixed.lua",
                    [
                        self.tokens["main"],
                        self.tokens["writer"],
                        f"{self.workdir}/ids-main.txt",
                        f"mem-{name}-{half}-{secrets.token_hex(3)}",
                        str(per_thread),
                    ],
                    self.args.connections,
                    self.args.threads,
                )
                # Generous duration: the threads stop themselves after their share of requests.
                r = self.measure(server, scenario, 900, f"memory {half}/2")
                served += r["requests"]
                points.append({"requests": served, "rss_mib": r["rss_mib_after"]})
            memory[name] = points
            log(
                f"{name} RSS: "
                + ", ".join(f"{p['rss_mib']:.1f} MiB @ {p['requests']}" for p in points)
            )
        self.results["memory"] = memory


# --- Report ---


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    requests = sum(r["requests"] for r in runs)
    return {
        "rps": statistics.mean(r["rps"] for r in runs),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
        "cpu_ms": 1000 * sum(r["server_cpu_s"] for r in runs) / max(requests, 1),
        "other_pct": 100 * max(r["other_cores"] for r in runs),
    }


def spread(s: dict[str, float]) -> str:
    """Mean req/s, with the range over rounds when there were several."""
    if s["rps_min"] == s["rps_max"]:
        return f"{s['rps']:,.0f}"
    return f"{s['rps']:,.0f} ({s['rps_min']:,.0f}–{s['rps_max']:,.0f})"


def machine() -> dict[str, str]:
    info = {"nproc": str(os.cpu_count()), "python": platform.python_version()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory"] = f"{kib / 1024 / 1024:.1f} GiB"
    info["kernel"] = platform.release()
    return info


#: Issue 16's targets: vocab/raw req/s at least this, p99 at most P99_LIMIT× raw's.
RATIO_TARGETS = {"get": 0.5, "list": 0.5, "create": 0.45, "review": 0.5, "study": 0.6}
P99_LIMIT = 2.5
WORKERS_TARGET = 1.6
RSS_LIMIT_MIB = 100
#: "Flat": RSS grows by at most this share from the middle of the memory run to its end.
RSS_FLAT = 0.05


def target_table(res: dict[str, Any], s: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The targets, each with its figure and whether it is met."""
    runs, labels = res["runs"], res["labels"]
    rows = []
    for key, target in RATIO_TARGETS.items():
        if key not in runs:
            continue
        pairs = zip(runs[key]["vocab"], runs[key]["raw"], strict=True)
        ratio = median([a["rps"] / b["rps"] for a, b in pairs])
        p99 = s[key]["vocab"]["p99_ms"] / s[key]["raw"]["p99_ms"]
        met = ratio >= target and p99 <= P99_LIMIT
        rows.append(
            f"| `{labels[key]}` ≥ {target}× raw req/s, p99 ≤ {P99_LIMIT}× raw | "
            f"{ratio:.2f}×, p99 {p99:.1f}× | {'yes' if met else 'no'} |"
        )
    if "workers" in res:
        one, two = (median([r["rps"] for r in res["workers"][n]]) for n in ("1", "2"))
        rows.append(
            f"| two workers ≥ {WORKERS_TARGET}× one on `GET /words/{{id}}` | {two / one:.2f}× | "
            f"{'yes' if two / one >= WORKERS_TARGET else 'no'} |"
        )
    if "memory" in res:
        points = res["memory"]["vocab"]
        middle, end = points[-2]["rss_mib"], points[-1]["rss_mib"]
        met = end <= RSS_LIMIT_MIB and end <= middle * (1 + RSS_FLAT)
        rows.append(
            f"| RSS ≤ {RSS_LIMIT_MIB} MB after {points[-1]['requests']:,} requests, flat from "
            f"the middle (≤ {100 * RSS_FLAT:.0f} % growth) | {middle:.0f} → {end:.0f} MiB | "
            f"{'yes' if met else 'no'} |"
        )
    return ["| target (issue 16) | vocab | met? |", "|---|---|---|", *rows]


def report(bench: Bench, command: str) -> str:
    res = bench.results
    runs, labels = res["runs"], res["labels"]
    s = {key: {name: summarise(runs[key][name]) for name in SERVERS} for key in runs}
    rounds = bench.args.rounds
    lines = [
        f"### vocab vs raw ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"wrk -t{bench.args.threads} -c{bench.args.connections} -d{bench.args.duration:g}s "
        f"--latency, {rounds} round(s) alternating vocab/raw; one uvicorn worker (uvloop, "
        f"httptools) pinned to CPU {bench.args.server_cpu}, wrk to CPU {bench.args.client_cpu}; "
        f"pool {bench.args.pool_size}. req/s: mean of rounds (min–max); p50/p99: median of "
        "rounds; CPU: server CPU time per request over all rounds; ratio: median of per-round "
        "vocab/raw.",
        "",
        "| endpoint | vocab req/s | raw req/s | vocab/raw | vocab p50 / p99 ms | "
        "raw p50 / p99 ms | vocab CPU ms/req | raw CPU ms/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in labels.items():
        v, r = s[key]["vocab"], s[key]["raw"]
        ratio = median(
            [a["rps"] / b["rps"] for a, b in zip(runs[key]["vocab"], runs[key]["raw"], strict=True)]
        )
        lines.append(
            f"| `{label}` | {spread(v)} | {spread(r)} | {ratio:.2f} | "
            f"{v['p50_ms']:.1f} / {v['p99_ms']:.1f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | "
            f"{v['cpu_ms']:.2f} | {r['cpu_ms']:.2f} |"
        )
    lines += ["", "| target | vocab | raw |", "|---|---|---|"]
    big = f"{bench.seed['counts']['words_big']:,}"
    small = f"{bench.seed['counts']['words_small']:,}"

    def both(fmt: Any) -> str:
        return " | ".join(fmt(name) for name in SERVERS)

    lines.append(
        f"| search (`q`) vs unfiltered list, user with {big} words: p50 ms (×) / req/s | "
        + both(
            lambda n: (
                f"{s['search_big'][n]['p50_ms']:.1f} vs {s['list_big'][n]['p50_ms']:.1f} "
                f"({s['search_big'][n]['p50_ms'] / s['list_big'][n]['p50_ms']:.2f}×) / "
                f"{s['search_big'][n]['rps']:,.0f} vs {s['list_big'][n]['rps']:,.0f}"
            )
        )
        + " |"
    )
    lines.append(
        f"| list p50, user with {big} words vs {small} words (target ≤ 1.3×) | "
        + both(
            lambda n: (
                f"{s['list_big'][n]['p50_ms']:.1f} vs {s['list_small'][n]['p50_ms']:.1f} ms "
                f"({s['list_big'][n]['p50_ms'] / s['list_small'][n]['p50_ms']:.2f}×)"
            )
        )
        + " |"
    )
    lines.append(
        "| login p50 (1 connection, argon2id production cost) | "
        + both(lambda n: f"{s['login'][n]['p50_ms']:.0f} ms")
        + " |"
    )
    if "burst" in res:
        b = {n: res["burst"][n] for n in SERVERS}
        b0 = {n: res["burst_baseline"][n] for n in SERVERS}
        lines.append(
            "| `GET /words/{id}` p99 during a login burst (4 connections signing in) vs without | "
            + both(
                lambda n: (
                    f"{median([r['p99_ms'] for r in b[n]]):.1f} vs "
                    f"{median([r['p99_ms'] for r in b0[n]]):.1f} ms "
                    f"({median([r['rps'] for r in b[n]]):,.0f} req/s, "
                    f"{median([r['side']['rps'] for r in b[n]]):.1f} logins/s)"
                )
            )
            + " |"
        )
    if "memory" in res:
        mem = res["memory"]
        lines.append(
            "| RSS of a fresh server: at start / after ~N/2 / after ~N mixed requests | "
            + both(
                lambda n: " / ".join(f"{p['rss_mib']:.0f} MiB @ {p['requests']:,}" for p in mem[n])
            )
            + " |"
        )
    if "workers" in res:
        one, two = (median([r["rps"] for r in res["workers"][n]]) for n in ("1", "2"))
        lines.append(
            "| `GET /words/{id}`, two workers (WEB_CONCURRENCY=2) vs one, nothing pinned | "
            f"{two:,.0f} vs {one:,.0f} req/s ({two / one:.2f}×) | – |"
        )
    lines += ["", *target_table(res, s)]
    counts, timings = bench.seed["counts"], bench.seed["timings"]
    m = res["machine"]
    lines += [
        "",
        f"Data: {counts['words']:,} words ({counts['words_main']:,} for the main user, "
        f"{counts['words_big']:,} and {counts['words_small']:,} for the big and small users), "
        f"{counts['reviews']:,} reviews over {counts['reviewed_main']:,} of the main user's words, "
        f"{counts['due_main']:,} due; search term `{bench.seed['search_term']}` matches "
        f"{res['search_matches']:,} of the big user's words. Seeded through the models in "
        f"{timings['total_s']:.1f} s ({res['seed_wall_s']:.1f} s with start-up).",
        "",
        f"Machine: {m['nproc']} CPUs, {m.get('cpu', '?')}, {m.get('memory', '?')} RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, {m['postgres']}, {m['wrk']}.",
        "",
        f"Command: `{command}`",
    ]
    if bench.flagged:
        lines += ["", "Runs during which other processes used more than 10 % of a core:"]
        lines += [f"- {f}" for f in bench.flagged]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark vocab against a raw asyncpg server with wrk (see bench/README.md)."
    )
    parser.add_argument("--smoke", action="store_true", help="small data, 1 s runs, one round")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--db", help="database to (re)create (vocab_bench; smoke: vocab_bench_smoke)"
    )
    parser.add_argument("--duration", type=float, help="seconds per run (15; smoke: 1)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per scenario (2; smoke 0)")
    parser.add_argument("--rounds", type=int, help="rounds of vocab/raw per endpoint (2; smoke 1)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--memory-requests", type=int, help="(100000; smoke: 1000)")
    parser.add_argument("--port", type=int, default=8731, help="vocab's port; raw gets the next")
    parser.add_argument("--server-cpu", default="0", help="core for the servers ('' for none)")
    parser.add_argument("--client-cpu", default="1", help="core for wrk ('' for none)")
    parser.add_argument("--only", help="comma-separated scenario keys (list,get,...) to run")
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="both servers' LOG_LEVEL (INFO: an access log, as deployed)",
    )
    parser.add_argument("--skip-extras", action="store_true", help="no login burst or memory")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    smoke = args.smoke
    defaults = {
        "db": "vocab_bench_smoke" if smoke else "vocab_bench",
        "duration": 1.0 if smoke else 15.0,
        "warmup": 0.0 if smoke else 2.0,
        "rounds": 1 if smoke else 2,
        "memory_requests": 1_000 if smoke else 100_000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.db.replace("_", "").isalnum():
        parser.error("--db must be letters, digits and underscores")
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        args.server_cpu = args.client_cpu = ""
    args.server_cpu = args.server_cpu or None
    args.client_cpu = args.client_cpu or None
    return args


def main() -> None:
    args = parse_args()
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    if args.server_cpu is None:
        log("warning: not pinning (needs 2+ cores and taskset): figures will be noisier")
    wrk = ensure_wrk()
    ensure_python_packages()
    workdir = BENCH / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"{args.pg_url.rstrip('/')}/{args.db}"
    bench = Bench(args, wrk, workdir, database_url, secrets.token_urlsafe(48))
    started = time.perf_counter()
    try:
        bench.prepare_database()
        info = machine()
        info["postgres"] = asyncio.run(query(database_url, "SHOW server_version"))[0][0]
        info["postgres"] = "PostgreSQL " + info["postgres"].split()[0]
        info["wrk"] = (
            subprocess.run([wrk, "-v"], capture_output=True, text=True)
            .stdout.split("\n")[0]
            .split(" Copyright")[0]
        )
        bench.results["machine"] = info
        big = bench.seed["users"]["big"]["id"]
        bench.results["search_matches"] = asyncio.run(
            query(
                database_url,
                "SELECT count(*) FROM words WHERE user_id=$1 AND (word ILIKE $2 OR definition "
                "ILIKE $2)",
                big,
                f"%{bench.seed['search_term']}%",
            )
        )[0][0]
        bench.start_servers()
        bench.sign_in()
        bench.write_id_files()
        bench.check_contract()
        if args.only:
            keep = set(args.only.split(","))
            all_scenarios = bench.scenarios
            bench.scenarios = lambda: [s for s in all_scenarios() if s.key in keep]  # type: ignore
        bench.run_scenarios()
        if not args.skip_extras and not args.only:
            bench.run_login_burst()
            bench.run_workers()
            bench.run_memory()
    finally:
        for server in bench.servers.values():
            server.stop()
    bench.results["wall_s"] = time.perf_counter() - started
    (workdir / "results.json").write_text(json.dumps(bench.results, indent=2, default=str))
    if not args.only:
        text = report(bench, command)
        (workdir / "report.md").write_text(text)
        print(text)
    log(f"done in {bench.results['wall_s']:.0f} s; results in {workdir.relative_to(ROOT)}")
    if not args.keep_db and args.smoke:
        asyncio.run(drop_database(args.pg_url, args.db))
    if bench.problems:
        fail("errors during the benchmark:\n" + "\n".join(bench.problems))


if __name__ == "__main__":
    main()
