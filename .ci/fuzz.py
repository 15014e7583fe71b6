"""Contract fuzzing: Schemathesis against the app's own OpenAPI schema, in-process over ASGI.

Run from anywhere: `python .ci/fuzz.py`. It starts the app on an in-memory SQLite database (or
on FUZZ_DATABASE_URL, e.g. a PostgreSQL test database: it adds users with fresh emails),
registers a user, signs in and adds a few words, then lets Schemathesis generate requests for
every operation: the schema's examples, coverage of boundaries and malformed input (bodies that
are not JSON or not UTF-8, broken multipart, unsupported methods), random valid and invalid data,
and stateful sequences that reuse ids from `Location` headers and responses. Every request
carries `Authorization: Bearer <token>`. Each response must have a documented status code, the
documented media type, headers and body schema, and never be a 5xx; and every request the schema
forbids (Schemathesis' negative data, for every operation) must be refused with a 4xx: the
server accepts exactly what its schema documents. `DELETE /users/me` runs
last, with a throwaway user of its own, so it cannot delete the fuzzing user halfway.

It also checks that the schema documents every status code API.md lists for each operation.
Prints the requests per operation (by status) and in total, and every distinct failure with a
curl command and the response; exits 1 on any failure. Fixed seed and derandomized generation,
so a run is reproducible; FUZZ_MAX_EXAMPLES overrides the examples per operation and mode.
"""

import logging
import os
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # vocab reads `.env` from the working directory: keep that predictable
os.environ.update(
    DATABASE_URL=os.environ.get("FUZZ_DATABASE_URL", "sqlite://:memory:"),
    SECRET_KEY=secrets.token_hex(32),  # 64 characters
    ARGON2_MEMORY_KIB="8",
    ARGON2_TIME_COST="1",
    RATE_LIMIT_LOGIN="off",
    RATE_LIMIT_LOGIN_CLIENT="off",
    RATE_LIMIT_LOGIN_ACCOUNT="off",
    RATE_LIMIT_REGISTER="off",
    LOG_LEVEL="WARNING",
    LOG_FORMAT="text",
)

import schemathesis  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.core.mutations import OperatorKind  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.engine import Status, events  # noqa: E402
from schemathesis.python import asgi  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

import vocab  # noqa: E402

# Malformed multipart bodies are the point here; the parser's warning about each is noise.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

SEED = 20240605
#: Generated cases per operation and generation mode (valid, invalid) in the fuzzing phase.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
#: Every check judges every request; `negative_data_rejection` fails when the server accepts a
#: request that the schema forbids (Schemathesis' "negative" data: wrong types, values out of
#: range, patterns broken, required properties missing, in every generation phase).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
]
#: The status codes API.md lists for each operation (success and errors); the OpenAPI schema
#: must document each of them, and 413 and 503 (app-wide) on every operation.
CONTRACT: dict[tuple[str, str], set[int]] = {
    ("POST", "/auth/register"): {201, 409, 415, 422, 429},
    ("POST", "/auth/token"): {200, 401, 429},
    ("POST", "/auth/refresh"): {200, 401, 415},
    ("POST", "/auth/logout"): {204, 401, 415},
    ("GET", "/users/me"): {200, 401},
    ("PATCH", "/users/me"): {200, 401, 403, 415, 422},
    ("DELETE", "/users/me"): {204, 401},
    ("POST", "/users/me/optimize"): {200, 401},
    ("GET", "/words"): {200, 401, 422},
    ("POST", "/words"): {201, 401, 409, 415, 422},
    ("GET", "/words/{word_id}"): {200, 401, 404},
    ("PATCH", "/words/{word_id}"): {200, 401, 404, 409, 415, 422},
    ("DELETE", "/words/{word_id}"): {204, 401, 404},
    ("POST", "/words/{word_id}/reviews"): {201, 401, 404, 415, 422},
    ("GET", "/words/{word_id}/reviews"): {200, 401, 404},
    ("DELETE", "/words/{word_id}/reviews/{review_id}"): {200, 401, 404, 409},
    ("GET", "/study"): {200, 401},
    ("GET", "/stats"): {200, 401},
    ("GET", "/words/export"): {200, 401},
    ("POST", "/words/import"): {200, 401, 413, 422},
    ("GET", "/health"): {200, 503},
    ("HEAD", "/health"): {200, 503},
    ("GET", "/metrics"): {200, 401, 404},
}
CHECK_FUNCTIONS = {
    "not_a_server_error": not_a_server_error,
    **{name: getattr(openapi_checks, name) for name in CHECKS[1:]},
}
APP_WIDE = {413, 503}
THROWAWAY = {"method": "DELETE", "path": "/users/me"}


@dataclass
class Report:
    """What the runs sent and what failed."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: defaultdict[str, Counter[int | str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    phases: Counter[str] = field(default_factory=Counter)
    #: Distinct failures (operation, check, title) -> description, and how often each occurred.
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    occurrences: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    #: Negative cases that are valid on the wire (see `valid_on_the_wire`).
    exempt: int = 0


def undocumented_statuses(openapi: dict[str, Any]) -> list[str]:
    """The contract's status codes that the OpenAPI schema does not document."""
    problems = []
    for (method, path), codes in CONTRACT.items():
        operation = openapi["paths"].get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{method} {path}: missing from the OpenAPI schema")
            continue
        documented = {int(code) for code in operation.get("responses", {}) if code.isdigit()}
        missing = sorted((codes | APP_WIDE) - documented)
        if missing:
            problems.append(f"{method} {path}: the schema lacks {', '.join(map(str, missing))}")
    return problems


def sign_up(client: Any, email: str) -> str:
    """Register a user and sign in through the app; returns an access token."""
    password = secrets.token_urlsafe(16)
    response = client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    response = client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def config(token: str) -> schemathesis.Config:
    """A fixed seed, every generation mode and phase, and the checks that judge the contract."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "cache": {"enabled": False},  # nothing carried over between runs, nothing written
            "suppress-health-check": ["all"],
            "continue-on-failure": True,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


def valid_on_the_wire(case: Any) -> bool:
    """Whether a negative case is only a changed JSON type of a multipart file part (a number,
    boolean, null or object where the schema says binary). A part is bytes on the wire: such a
    case arrives as a file holding the text "null" or "7.2e+296", which is a file like any other
    and not a request the schema forbids. Schemathesis makes the same exemption for path and
    query parameters, whose values are text on the wire too; arrays become several parts, which
    the server refuses, so they are judged as usual."""
    mutations = getattr(getattr(case.meta, "phase", None), "data", None)
    mutations = getattr(mutations, "mutations", ())
    return bool(mutations) and all(
        mutation.operator == OperatorKind.CHANGE_TYPE
        and mutation.parameter_location == ParameterLocation.BODY
        and case.media_type == "multipart/form-data"
        and mutation.schema_pointer == "/properties/file"
        and mutation.new_value != "array"
        for mutation in mutations
    )


def record(event: events.ScenarioFinished, report: Report) -> None:
    """Count a scenario's requests and keep its failures."""
    recorder = event.recorder
    for case_id, interaction in recorder.interactions.items():
        label = recorder.cases[case_id].value.operation.label
        report.requests[label] += 1
        report.statuses[label][
            interaction.response.status_code if interaction.response else "-"
        ] += 1
        report.phases[event.phase.value] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            case = recorder.cases[case_id].value
            if check.name == "negative_data_rejection" and valid_on_the_wire(case):
                report.exempt += 1
                continue
            operation = case.operation.label
            key = (operation, check.name, failure.title)
            report.occurrences[key] += 1
            if key in report.failures:
                continue
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction else None
            answer = "no response"
            if response is not None:
                body = (response.content or b"")[:1000].decode("utf-8", "replace")
                headers = "; ".join(f"{k}: {', '.join(v)}" for k, v in response.headers.items())
                answer = f"{response.status_code}\n    headers: {headers}\n    body: {body}"
            report.failures[key] = (
                f"{operation} -- {check.name}: {failure.title}\n"
                f"  {failure.message.replace(chr(10), chr(10) + '  ')}\n"
                f"  request:  {check.failure_info.code_sample}\n"
                f"  response: {answer}"
            )


def chunks(size: int) -> Iterator[bytes]:
    """A request body of `size` bytes sent in chunks, without a Content-Length."""
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


#: Requests that random generation rarely or never produces; each is judged by the same checks.
#: (name, method, path template, path parameters, arguments for the HTTP client)
EDGE_CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("JSON body that is not UTF-8", "POST", "/words", {}, {"data": b'{"word": "\xff"}'}),
    ("JSON body over the limit", "POST", "/words", {}, {"data": b" " * 1_100_000}),
    ("chunked JSON body over the limit", "POST", "/words", {}, {"data": chunks(1_100_000)}),
    ("form instead of JSON", "PATCH", "/words/{word_id}", {"word_id": 1}, {"data": {"word": 1}}),
    (
        "JSON sent as text/plain",
        "POST",
        "/words",
        {},
        {"data": b'{"word": "a", "definition": "b"}', "headers": {"Content-Type": "text/plain"}},
    ),
    ("HEAD of a word that is missing", "HEAD", "/words/{word_id}", {"word_id": 999999}, {}),
    ("sign-in with JSON", "POST", "/auth/token", {}, {"json": {"username": "a@b.c"}}),
    ("form that is not UTF-8", "POST", "/auth/token", {}, {"data": "username=%ff&password=%fe"}),
    ("import of a binary file", "POST", "/words/import", {}, {"files": {"file": b"\x00\xff"}}),
    (
        "import of an empty file",
        "POST",
        "/words/import",
        {},
        {"files": {"file": ("deck.csv", b"", "text/csv")}},
    ),
    ("import over 5 MB", "POST", "/words/import", {}, {"files": {"file": b"a,b\n" * 1_400_000}}),
    (
        "import with a broken multipart body",
        "POST",
        "/words/import",
        {},
        {"data": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    ),
    (
        "import without a multipart boundary",
        "POST",
        "/words/import",
        {},
        {"data": b"x", "headers": {"Content-Type": "multipart/form-data"}},
    ),
    (
        "import with two file parts",
        "POST",
        "/words/import",
        {},
        {
            "files": [
                ("file", ("a.csv", b"a,b\n", "text/csv")),
                ("file", ("b.csv", b"c,d\n", "text/csv")),
            ]
        },
    ),
    (
        "difficulty as a string",
        "POST",
        "/words",
        {},
        {"json": {"word": "w", "definition": "d", "difficulty": "4"}},
    ),
    (
        "duration as a boolean",
        "POST",
        "/words/{word_id}/reviews",
        {"word_id": 1},
        {"json": {"rating": "good", "duration_ms": False}},
    ),
    (
        "right-to-left override in a word",
        "POST",
        "/words",
        {},
        {"json": {"word": "a\u202eb", "definition": "d"}},
    ),
    (
        "control character in a tag",
        "PATCH",
        "/words/{word_id}",
        {"word_id": 1},
        {"json": {"tags": ["a\x1fb"]}},
    ),
    (
        "word that NFC makes too long",
        "POST",
        "/words",
        {},
        {"json": {"word": "\u0958" * 100, "definition": "d"}},
    ),
    ("word id that is not a number", "GET", "/words/{word_id}", {"word_id": "abc"}, {}),
    ("word id over 32 bits", "GET", "/words/{word_id}", {"word_id": 2**40}, {}),
    ("negative word id", "DELETE", "/words/{word_id}", {"word_id": -1}, {}),
    (
        "reviews of a word id that is not a number",
        "GET",
        "/words/{word_id}/reviews",
        {"word_id": "1.5"},
        {},
    ),
    ("non-ASCII bearer token", "GET", "/users/me", {}, {"headers": {"Authorization": "Bearer é"}}),
    ("non-ASCII request id", "GET", "/users/me", {}, {"headers": {"X-Request-ID": "été"}}),
    ("NUL in a query", "GET", "/words", {}, {"params": {"q": "a\x00b", "tag": "\x00"}}),
    ("NUL in a language filter", "GET", "/words", {}, {"params": {"language": "e\x00"}}),
    ("NUL in a word", "POST", "/words", {}, {"json": {"word": "a\x00", "definition": "b"}}),
    ("NUL in a tag", "PATCH", "/words/{word_id}", {"word_id": 1}, {"json": {"tags": ["\x00"]}}),
    (
        "NUL in an email",
        "POST",
        "/auth/register",
        {},
        {"json": {"email": "a\x00b@example.com", "password": "long enough"}},
    ),
    (
        "NUL in a sign-in name",
        "POST",
        "/auth/token",
        {},
        {"data": {"username": "a\x00b@example.com", "password": "long enough"}},
    ),
]


def run_edge_cases(schema: Any, client: Any, token: str, report: Report) -> None:
    """Send the hand-written requests and judge each response with the same checks."""
    checks = [CHECK_FUNCTIONS[name] for name in CHECKS]
    for name, method, path, parameters, arguments in EDGE_CASES:
        operation = schema[path][method]
        case = operation.Case(path_parameters=parameters)
        arguments = dict(arguments)
        headers = {"Authorization": f"Bearer {token}", **arguments.pop("headers", {})}
        if isinstance(arguments.get("data"), bytes) and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        url = path.format(**parameters)
        response = client.request(method, url, headers=headers, **arguments)
        label = operation.label
        report.requests[label] += 1
        report.statuses[label][response.status_code] += 1
        report.phases["edge cases"] += 1
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (label, name, failure.title)
                report.occurrences[key] += 1
                report.failures[key] = (
                    f"{label} -- edge case {name!r}: {failure.title}\n"
                    f"  {failure.message.replace(chr(10), chr(10) + '  ')}\n"
                    f"  request:  {method} {url} {describe(arguments, headers)}\n"
                    f"  response: {response.status_code} {response.text[:1000]}"
                )


def describe(arguments: dict[str, Any], headers: dict[str, str]) -> str:
    """A short description of an edge case's request."""
    parts = [f"{k}: {v}" for k, v in headers.items() if k != "Authorization"]
    for key, value in arguments.items():
        text = repr(value)
        parts.append(f"{key}={text[:80]}{'...' if len(text) > 80 else ''}")
    return "; ".join(parts)


def run(schema: Any, report: Report) -> None:
    """Run every phase of Schemathesis on the schema."""
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            record(event, report)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")


def main() -> int:
    """Fuzz, print the report, and return the exit status."""
    started = time.monotonic()
    report = Report()
    # Schemathesis runs the app's lifespan (migrations on the fresh in-memory database) in its
    # own event-loop thread when the app is first entered, and keeps it up for every later
    # request; the setup below therefore goes through the same client and the same database.
    with asgi.get_client(vocab.app) as client:
        openapi = client.get("/openapi.json").json()
        run_id = secrets.token_hex(4)  # fresh emails, so that any database will do
        token = sign_up(client, f"fuzz-{run_id}@example.com")
        for word, language in (("Haus", "de"), ("run", "en"), ("saudade", None)):
            response = client.post(
                "/words",
                json={"word": word, "definition": f"a {word}", "language": language},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.text
        throwaway = sign_up(client, f"throwaway-{run_id}@example.com")
    report.errors += undocumented_statuses(openapi)

    schema = schemathesis.openapi.from_asgi("/openapi.json", vocab.app, config=config(token))
    with asgi.get_client(vocab.app) as client:
        run_edge_cases(schema, client, token, report)
    run(schema.exclude(**THROWAWAY), report)
    # The first 204 deletes the throwaway user; from then on the answer must be 401.
    schema = schemathesis.openapi.from_asgi("/openapi.json", vocab.app, config=config(throwaway))
    run(schema.include(**THROWAWAY), report)
    asgi.shutdown_lifespans()

    print("requests per operation (count: status codes)")
    for label, count in sorted(report.requests.items(), key=lambda item: item[0].split()[::-1]):
        answers = ", ".join(f"{code}×{n}" for code, n in sorted(report.statuses[label].items()))
        print(f"  {count:5d}  {label:34s} {answers}")
    total = sum(report.requests.values())
    phases = ", ".join(f"{name} {n}" for name, n in report.phases.items())
    print(f"  {total:5d}  in total ({phases}), {time.monotonic() - started:.0f} s")
    if report.exempt:
        print(f"  ({report.exempt} negative cases were a file part's JSON type: bytes on the wire)")
    for key, description in report.failures.items():
        print(f"\nFAILURE ({report.occurrences[key]}×) {description}")
    for error in report.errors:
        print(f"\nERROR {error}")
    problems = len(report.failures) + len(report.errors)
    print(f"\n{problems} problem(s)" if problems else "\nno failures")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
