"""Sign-in protection (issue 15): three failure counters, client addresses through trusted
proxies, and the settings behind them. Every test runs with the counters in memory and in Redis
(the `counters` fixture in conftest).

The counters: per email and client address together (RATE_LIMIT_LOGIN), per client address
across all emails (RATE_LIMIT_LOGIN_CLIENT), per email across all addresses
(RATE_LIMIT_LOGIN_ACCOUNT). The test client's peer is 127.0.0.1, a trusted proxy by default
(FORWARDED_ALLOW_IPS), so `X-Forwarded-For` sets the client address a request comes from.
"""

import asyncio
from collections.abc import AsyncIterator

import httpx
import limits
import pytest
from conftest import DEFAULT_PASSWORD, Auth, redis_storage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import ValidationError

import vocab

WRONG_PASSWORD = "not the password at all"
LIMIT_NAMES = ("LOGIN_LIMIT", "LOGIN_CLIENT_LIMIT", "LOGIN_ACCOUNT_LIMIT")
SETTING_OF = {
    "LOGIN_LIMIT": "RATE_LIMIT_LOGIN",
    "LOGIN_CLIENT_LIMIT": "RATE_LIMIT_LOGIN_CLIENT",
    "LOGIN_ACCOUNT_LIMIT": "RATE_LIMIT_LOGIN_ACCOUNT",
}
HOME = "203.0.113.10"  # the address most tests sign in from
UNTRUSTED_PEER = "198.51.100.20"


def default_limit(setting: str) -> limits.RateLimitItem:
    """A limit as Settings declares it by default (the suite's environment turns them off)."""
    limit = vocab.rate_limit(vocab.Settings.model_fields[setting].default)
    assert limit is not None
    return limit


def set_limits(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Set the three login limits by their vocab names, e.g. LOGIN_LIMIT="3/minute" or "off"."""
    for name in LIMIT_NAMES:
        monkeypatch.setattr(vocab, name, vocab.rate_limit(values.get(name, "1000/minute")))


@pytest.fixture
def default_limits(monkeypatch: pytest.MonkeyPatch, counters) -> None:
    """The three login limits at their defaults (10/15minutes, 100/hour, 100/day)."""
    for name, setting in SETTING_OF.items():
        monkeypatch.setattr(vocab, name, default_limit(setting))


async def sign_in(
    client: httpx.AsyncClient,
    email: str,
    *,
    password: str = DEFAULT_PASSWORD,
    address: str | None = HOME,
) -> httpx.Response:
    """POST /auth/token from `address` (as the trusted proxy in front names it)."""
    headers = {"X-Forwarded-For": address} if address else {}
    return await client.post(
        "/auth/token", data={"username": email, "password": password}, headers=headers
    )


def retry_after(r: httpx.Response) -> int:
    """A 429's Retry-After, in seconds, after checking the answer's shape."""
    assert r.status_code == 429, r.text
    assert r.json()["detail"].startswith("Too many attempts"), r.text
    assert r.headers["Retry-After"].isdigit(), r.headers["Retry-After"]
    return int(r.headers["Retry-After"])


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Auth:
    auth = Auth(client, email="alice@example.com")
    assert (await auth.register()).status_code == 201
    return auth


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Auth:
    auth = Auth(client, email="bob@example.com")
    assert (await auth.register()).status_code == 201
    return auth


@pytest.fixture
async def untrusted_client(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same running app, reached directly by a peer that is not a trusted proxy."""
    transport = httpx.ASGITransport(app=vocab.app, client=(UNTRUSTED_PEER, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


# --- Done when (issue 15) ---


async def test_login_after_12_failures_of_one_email_from_one_address_limits_only_that_pair(
    client, alice, bob, default_limits
):
    """With the default limits: 12 failed sign-ins for one email from one address; that pair
    is refused with Retry-After, another account signs in from the same address, and the same
    email signs in from another address until its account-wide budget (100) is spent."""
    statuses = [
        (await sign_in(client, alice.email, password=WRONG_PASSWORD)).status_code for _ in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2

    r = await sign_in(client, alice.email)  # even the right password waits
    assert 1 <= retry_after(r) <= 15 * 60
    r = await sign_in(client, bob.email)
    assert r.status_code == 200, r.text
    r = await sign_in(client, alice.email, address="192.0.2.1")
    assert r.status_code == 200, r.text

    # The account has 10 failures; 90 more from other addresses (9 each, under the pair
    # limit) spend its budget of 100.
    for n in range(10):
        for _ in range(9):
            r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address=f"192.0.2.{n}")
            assert r.status_code == 401, r.text
    r = await sign_in(client, alice.email, address="192.0.2.200")  # a fresh address
    assert 15 * 60 < retry_after(r) <= 24 * 3600  # the day-long account counter
    # Bob, from the address whose pair with Alice is spent, is untouched.
    assert (await sign_in(client, bob.email)).status_code == 200


# --- Each counter ---


@pytest.mark.parametrize(
    ("limit_name", "email_of", "address_of"),
    [
        pytest.param("LOGIN_LIMIT", lambda n: "alice@example.com", lambda n: HOME, id="pair"),
        pytest.param(
            "LOGIN_CLIENT_LIMIT", lambda n: f"stranger{n}@example.com", lambda n: HOME, id="client"
        ),
        pytest.param(
            "LOGIN_ACCOUNT_LIMIT",
            lambda n: "alice@example.com",
            lambda n: f"192.0.2.{n}",
            id="account",
        ),
    ],
)
@pytest.mark.parametrize("value", ["3/minute", "off"])
async def test_login_failures_over_one_counter_are_429_unless_it_is_off(
    client, alice, counters, monkeypatch, limit_name, email_of, address_of, value
):
    """Failures that only this counter groups together (the other two are generous)."""
    set_limits(monkeypatch, **{limit_name: value})
    for n in range(3):
        r = await sign_in(client, email_of(n), password=WRONG_PASSWORD, address=address_of(n))
        assert r.status_code == 401, r.text
    r = await sign_in(client, email_of(3), password=WRONG_PASSWORD, address=address_of(3))
    if value == "off":
        assert r.status_code == 401, r.text
    else:
        assert 1 <= retry_after(r) <= 60


async def test_login_other_account_from_address_over_client_limit_is_429(
    client, alice, bob, counters, monkeypatch
):
    """A school behind one address signs in until the address used its whole budget."""
    set_limits(monkeypatch, LOGIN_CLIENT_LIMIT="5/minute")
    for n in range(4):
        r = await sign_in(client, f"student{n}@example.com", password=WRONG_PASSWORD)
        assert r.status_code == 401, r.text
    assert (await sign_in(client, bob.email)).status_code == 200  # 4 of 5 used
    r = await sign_in(client, f"student{4}@example.com", password=WRONG_PASSWORD)
    assert r.status_code == 401, r.text
    retry_after(await sign_in(client, alice.email))  # 5 of 5: the address waits
    assert (await sign_in(client, alice.email, address="192.0.2.7")).status_code == 200


async def test_login_success_neither_counts_nor_forgives_failures(
    client, alice, counters, monkeypatch
):
    """The counters are time windows: only time frees them, a correct sign-in does not (an
    attacker sharing the learner's address gains nothing from the learner's sign-ins)."""
    set_limits(monkeypatch, LOGIN_LIMIT="3/minute")
    for _ in range(2):
        assert (await sign_in(client, alice.email, password=WRONG_PASSWORD)).status_code == 401
    for _ in range(3):
        assert (await sign_in(client, alice.email)).status_code == 200
    assert (await sign_in(client, alice.email, password=WRONG_PASSWORD)).status_code == 401
    retry_after(await sign_in(client, alice.email))  # the pair's third failure spent it


async def test_login_retry_after_waits_for_the_longest_spent_counter(
    client, alice, counters, monkeypatch
):
    set_limits(monkeypatch, LOGIN_LIMIT="2/minute", LOGIN_ACCOUNT_LIMIT="3/hour")
    for address in (HOME, HOME, "192.0.2.1"):
        r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address=address)
        assert r.status_code == 401, r.text
    assert 60 < retry_after(await sign_in(client, alice.email)) <= 3600


async def test_login_counts_an_email_in_any_case_as_one(client, alice, counters, monkeypatch):
    set_limits(monkeypatch, LOGIN_LIMIT="2/minute")
    for email in ("Alice@Example.com", " ALICE@example.com "):
        assert (await sign_in(client, email, password=WRONG_PASSWORD)).status_code == 401
    retry_after(await sign_in(client, alice.email))


async def test_login_concurrent_failures_from_many_addresses_are_limited_per_account(
    client, alice, counters, monkeypatch
):
    """Attempts that arrive together are judged one at a time per key, here the account's."""
    set_limits(monkeypatch, LOGIN_ACCOUNT_LIMIT="3/minute")
    responses = await asyncio.gather(
        *(
            sign_in(client, alice.email, password=WRONG_PASSWORD, address=f"192.0.2.{n}")
            for n in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [401] * 3 + [429] * 7


async def test_login_concurrent_attempts_over_shared_keys_never_deadlock(
    client, alice, bob, counters, monkeypatch
):
    """Attempts for two emails from two addresses share client and account locks in every
    combination; each takes its locks in one order, so all of them finish."""
    set_limits(monkeypatch, LOGIN_LIMIT="50/minute")
    attempts = [
        sign_in(client, email, password=password, address=address)
        for _ in range(5)
        for email in (alice.email, bob.email)
        for address in (HOME, "192.0.2.1")
        for password in (DEFAULT_PASSWORD, WRONG_PASSWORD)
    ]
    responses = await asyncio.wait_for(asyncio.gather(*attempts), timeout=60)
    assert sorted(r.status_code for r in responses) == [200] * 20 + [401] * 20


# --- Client addresses and trusted proxies ---


async def test_login_forwarded_for_from_untrusted_peer_is_ignored(
    untrusted_client, alice, counters, monkeypatch
):
    """A client that is not a trusted proxy cannot pick the address it is counted under."""
    set_limits(monkeypatch, LOGIN_LIMIT="3/minute")
    for n in range(3):
        r = await sign_in(
            untrusted_client, alice.email, password=WRONG_PASSWORD, address=f"192.0.2.{n}"
        )
        assert r.status_code == 401, r.text
    retry_after(await sign_in(untrusted_client, alice.email, address="192.0.2.99"))


async def test_login_forwarded_for_counts_the_address_the_trusted_proxy_saw(
    client, alice, counters, monkeypatch
):
    """The proxy appends the address it saw; what the client wrote before it is not trusted."""
    set_limits(monkeypatch, LOGIN_LIMIT="3/minute")
    for n in range(3):
        forged = f"192.0.2.{n}, {HOME}"
        r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address=forged)
        assert r.status_code == 401, r.text
    retry_after(await sign_in(client, alice.email, address=f"192.0.2.99, {HOME}"))
    assert (await sign_in(client, alice.email, address="192.0.2.99")).status_code == 200


async def test_login_from_one_ipv6_network_counts_as_one_client(
    client, alice, counters, monkeypatch
):
    """A host picks any address in its /64: every one of them is the same client."""
    set_limits(monkeypatch, LOGIN_LIMIT="3/minute")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:abcd::9"):
        r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address=host)
        assert r.status_code == 401, r.text
    retry_after(await sign_in(client, alice.email, address="2001:db8:1:2:ffff::1"))
    r = await sign_in(client, alice.email, address="2001:db8:1:3::1")  # the next /64
    assert r.status_code == 200, r.text


async def test_login_from_an_ipv4_mapped_ipv6_address_counts_as_the_ipv4_client(
    client, alice, counters, monkeypatch
):
    set_limits(monkeypatch, LOGIN_LIMIT="2/minute")
    for address in (HOME, f"::ffff:{HOME}"):
        r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address=address)
        assert r.status_code == 401, r.text
    retry_after(await sign_in(client, alice.email))


async def test_login_forwarded_for_that_is_no_address_is_a_client_of_its_own(
    client, alice, counters, monkeypatch
):
    """What a trusted proxy names is taken as it is, even when it is not an IP address."""
    set_limits(monkeypatch, LOGIN_LIMIT="2/minute")
    for _ in range(2):
        r = await sign_in(client, alice.email, password=WRONG_PASSWORD, address="unix-socket")
        assert r.status_code == 401, r.text
    retry_after(await sign_in(client, alice.email, address="unix-socket"))
    assert (await sign_in(client, alice.email)).status_code == 200


async def test_register_user_limit_counts_the_forwarded_client(client, counters, monkeypatch):
    monkeypatch.setattr(vocab, "REGISTER_LIMIT", vocab.rate_limit("2/minute"))
    for n in range(2):
        r = await client.post(
            "/auth/register",
            json={"email": f"new{n}@example.com", "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": HOME},
        )
        assert r.status_code == 201, r.text
    r = await client.post(
        "/auth/register",
        json={"email": "new9@example.com", "password": DEFAULT_PASSWORD},
        headers={"X-Forwarded-For": HOME},
    )
    assert 1 <= retry_after(r) <= 60
    r = await client.post(
        "/auth/register",
        json={"email": "new9@example.com", "password": DEFAULT_PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.1"},
    )
    assert r.status_code == 201, r.text


# --- Redis: one set of counters for every replica ---


async def test_login_counters_in_redis_are_shared_by_every_replica(
    client, alice, redis_url, monkeypatch
):
    """Two app instances with RATE_LIMIT_STORAGE=redis://... count together: what another
    replica counts (a second, independent limiter on the same Redis) limits this one."""
    prefix = f"vocab-test-replicas-{id(client):x}"
    here, there = redis_storage(redis_url, prefix), redis_storage(redis_url, prefix)
    monkeypatch.setattr(vocab, "rate_limiter", MovingWindowRateLimiter(here))
    other_replica = MovingWindowRateLimiter(there)
    set_limits(monkeypatch, LOGIN_CLIENT_LIMIT="3/minute")
    limit = vocab.LOGIN_CLIENT_LIMIT
    key = vocab.LoginCounters.of(alice.email, HOME).client
    try:
        for _ in range(2):
            r = await sign_in(client, alice.email, password=WRONG_PASSWORD)
            assert r.status_code == 401, r.text
        assert (await other_replica.get_window_stats(limit, key)).remaining == 1
        assert await other_replica.hit(limit, key)  # a failure the other replica saw
        retry_after(await sign_in(client, "someone@example.com", password=WRONG_PASSWORD))
    finally:
        await here.reset()  # this prefix only
        for storage in (here, there):
            await storage.bridge.storage.aclose()


# --- Settings ---


def test_settings_login_limits_default_to_the_documented_values():
    defaults = {name: vocab.Settings.model_fields[name].default for name in SETTING_OF.values()}
    assert defaults == {
        "RATE_LIMIT_LOGIN": "10/15minutes",
        "RATE_LIMIT_LOGIN_CLIENT": "100/hour",
        "RATE_LIMIT_LOGIN_ACCOUNT": "100/day",
    }
    assert [default_limit(name).get_expiry() for name in SETTING_OF.values()] == [
        900,
        3600,
        86400,
    ]


@pytest.mark.parametrize("field", ["RATE_LIMIT_LOGIN_CLIENT", "RATE_LIMIT_LOGIN_ACCOUNT"])
def test_settings_new_login_limit_off_disables_it(field):
    settings = vocab.Settings(_env_file=None, **{field: "OFF"})
    assert vocab.rate_limit(getattr(settings, field)) is None


@pytest.mark.parametrize("field", ["RATE_LIMIT_LOGIN_CLIENT", "RATE_LIMIT_LOGIN_ACCOUNT"])
def test_settings_new_login_limit_unparseable_is_refused(field):
    with pytest.raises(ValidationError, match=field):
        vocab.Settings(_env_file=None, **{field: "100 per fortnight"})


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("127.0.0.1,::1", "127.0.0.1,::1"),
        (" 10.0.0.0/8 , 192.168.1.7 ", "10.0.0.0/8,192.168.1.7"),
        ("fd00::/8", "fd00::/8"),
        ("*", "*"),
        ("none", "none"),
    ],
)
def test_settings_forwarded_allow_ips_accepts_addresses_and_networks(value, stored):
    trusted = vocab.Settings(_env_file=None, FORWARDED_ALLOW_IPS=value).FORWARDED_ALLOW_IPS
    assert trusted == stored


@pytest.mark.parametrize("value", ["10.0.0.1/8", "proxy.internal", "300.1.1.1", "10.0.0.0/33"])
def test_settings_forwarded_allow_ips_refuses_what_would_never_match(value):
    with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
        vocab.Settings(_env_file=None, FORWARDED_ALLOW_IPS=value)
