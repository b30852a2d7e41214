"""Server-side request forgery through POST /api/v1/messages `mediaUrls`: every address form,
names that resolve to internal addresses, redirects, and slow or lying servers. Each is refused
with the URL and the reason named, and no message is stored.

The address cases run on an app with `outbound_allow_loopback=False` (production's setting);
the redirect and slow-server cases need a peer on 127.0.0.1, so they run on the session app
(loopback allowed) and show that what the peer points at is still refused."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from shared.app import App, install
from shared.outbound import AddressPolicy, OutboundClient
from tests.conftest import TenantAccount, app_with
from tests.peers import Resource, media_host, serve
from tests.security.conftest import expect, stored

pytestmark = pytest.mark.e2e

# Names that must never be looked up over the network: resolved by the fake resolver below.
FAKE_DNS = {
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "metadata.attacker.test": ["169.254.169.254"],
    "mixed.attacker.test": ["93.184.216.34", "10.1.2.3"],
    "v6-internal.attacker.test": ["fd00::1"],
}


@pytest.fixture
def no_loopback(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in FAKE_DNS:
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, port))
                for a in FAKE_DNS[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with app_with(app, outbound_allow_loopback=False) as strict:
        yield strict


def send_media(base_url: str, account: TenantAccount, *urls: str) -> requests.Response:
    body = {"from": account.number, "to": ["+15559876543"], "mediaUrls": list(urls)}
    return requests.post(f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=30)


def refused(
    base_url: str, app: App, account: TenantAccount, url: str, status: int, reason: str
) -> dict[str, Any]:
    before = stored(app, account.tenant_id)
    code = "media_url_invalid" if status == 400 else "media_url_rejected"
    problem = expect(send_media(base_url, account, url), status, code)
    error: dict[str, Any] = problem["errors"][0]
    assert error["field"] == "mediaUrls[0]" and error["reason"] == reason, error
    assert stored(app, account.tenant_id) == before
    return error


ADDRESS_FORMS = [
    ("loopback", "https://127.0.0.1/a.jpg", "address_forbidden"),
    ("loopback-other", "https://127.45.6.7:8443/a.jpg", "address_forbidden"),
    ("localhost-name", "https://localhost/a.jpg", "address_forbidden"),
    ("ipv6-loopback", "https://[::1]/a.jpg", "address_forbidden"),
    ("ipv4-mapped-ipv6", "https://[::ffff:127.0.0.1]/a.jpg", "address_forbidden"),
    ("ipv4-compatible-ipv6", "https://[::127.0.0.1]/a.jpg", "address_forbidden"),
    ("nat64-loopback", "https://[64:ff9b::7f00:1]/a.jpg", "address_forbidden"),
    ("6to4-private", "https://[2002:a00:1::]/a.jpg", "address_forbidden"),
    ("decimal", "https://2130706433/a.jpg", "address_forbidden"),
    ("octal", "https://0177.0.0.1/a.jpg", "address_forbidden"),
    ("hex", "https://0x7f.0x0.0x0.0x1/a.jpg", "address_forbidden"),
    ("short-form", "https://127.1/a.jpg", "address_forbidden"),
    ("unspecified", "https://0.0.0.0/a.jpg", "address_forbidden"),
    ("metadata", "https://169.254.169.254/latest/meta-data/", "address_forbidden"),
    ("azure-wireserver", "https://168.63.129.16/machine?comp=goalstate", "address_forbidden"),
    ("private-10", "https://10.0.0.1/a.jpg", "address_forbidden"),
    ("private-172", "https://172.16.5.4/a.jpg", "address_forbidden"),
    ("private-192", "https://192.168.1.1/a.jpg", "address_forbidden"),
    ("cgnat", "https://100.64.0.1/a.jpg", "address_forbidden"),
    ("multicast", "https://224.0.0.1/a.jpg", "address_forbidden"),
    ("ipv6-unique-local", "https://[fd12:3456::1]/a.jpg", "address_forbidden"),
    ("ipv6-link-local-scoped", "https://[fe80::1%25eth0]/a.jpg", "address_forbidden"),
    ("dns-to-loopback", "https://127.0.0.1.nip.io/a.jpg", "address_forbidden"),
    ("dns-to-metadata", "https://metadata.attacker.test/a.jpg", "address_forbidden"),
    ("dns-one-public-one-private", "https://mixed.attacker.test/a.jpg", "address_forbidden"),
    ("dns-to-ipv6-private", "https://v6-internal.attacker.test/a.jpg", "address_forbidden"),
]

STATIC_FORMS = [
    ("plain-http", "http://93.184.216.34/a.jpg", "scheme_not_allowed"),
    ("file-scheme", "file:///etc/passwd", "scheme_not_allowed"),
    ("gopher-scheme", "gopher://127.0.0.1:6379/_INFO", "scheme_not_allowed"),
    ("credentials", "https://user:secret@93.184.216.34/a.jpg", "credentials_in_url"),
    ("too-long", "https://93.184.216.34/" + "a" * 3000, "url_too_long"),
    ("not-a-url", "https://[::1/a.jpg", "invalid_url"),
]


@pytest.mark.parametrize(("url", "reason"), [pytest.param(u, r, id=i) for i, u, r in ADDRESS_FORMS])
def test_internal_address_forms_are_refused(
    no_loopback: App, base_url: str, account: TenantAccount, url: str, reason: str
) -> None:
    refused(base_url, no_loopback, account, url, 422, reason)


@pytest.mark.parametrize(("url", "reason"), [pytest.param(u, r, id=i) for i, u, r in STATIC_FORMS])
def test_malformed_or_non_https_urls_are_400(
    no_loopback: App, base_url: str, account: TenantAccount, url: str, reason: str
) -> None:
    error = refused(base_url, no_loopback, account, url, 400, reason)
    assert "secret" not in error["url"]  # credentials never echoed


def test_refused_url_is_named_without_its_query(
    no_loopback: App, base_url: str, account: TenantAccount
) -> None:
    error = refused(
        base_url, no_loopback, account, "https://10.0.0.1/a.jpg?sig=TOKEN", 422, "address_forbidden"
    )
    assert error["url"] == "https://10.0.0.1/a.jpg"


@pytest.mark.parametrize(
    ("target", "status", "reason"),
    [
        pytest.param(
            "https://169.254.169.254/latest/meta-data/", 422, "address_forbidden", id="to-metadata"
        ),
        pytest.param("https://10.0.0.1/a.jpg", 422, "address_forbidden", id="to-private"),
        pytest.param("https://127.0.0.1.nip.io/x", 422, "dns_failure", id="to-unresolvable-name"),
        # The URL as sent was fine; where it led is not: unusable (422), not malformed (400).
        pytest.param(
            "http://169.254.169.254/latest/meta-data/",
            422,
            "scheme_not_allowed",
            id="to-plain-http",
        ),
        pytest.param("file:///etc/passwd", 422, "scheme_not_allowed", id="to-file"),
    ],
)
def test_redirect_to_an_internal_target_is_refused(
    base_url: str, app: App, account: TenantAccount, target: str, status: int, reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    real = socket.getaddrinfo

    def offline(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1.nip.io":  # never asked of a real resolver
            raise socket.gaierror(socket.EAI_NONAME, "not found")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    with media_host({"/a.jpg": Resource(b"", status=302, location=target)}) as host:
        refused(base_url, app, account, f"{host}/a.jpg", status, reason)


def test_redirect_chain_longer_than_three_is_refused(
    base_url: str, app: App, account: TenantAccount
) -> None:
    hops = {f"/{n}": Resource(b"", status=302, location=f"/{n + 1}") for n in range(5)}
    hops["/5"] = Resource(b"\xff\xd8\xff" + bytes(100))
    with media_host(hops) as host:
        refused(base_url, app, account, f"{host}/0", 422, "too_many_redirects")


def test_redirect_loop_is_refused(base_url: str, app: App, account: TenantAccount) -> None:
    with media_host({"/loop": Resource(b"", status=301, location="/loop")}) as host:
        refused(base_url, app, account, f"{host}/loop", 422, "too_many_redirects")


def test_content_length_over_five_mb_is_refused(
    base_url: str, app: App, account: TenantAccount
) -> None:
    class Liar(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(5 * 1024 * 1024 + 1))
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Liar) as host:
        refused(base_url, app, account, f"{host}/big.jpg", 422, "too_large")


def test_negative_content_length_is_refused_as_a_broken_answer(
    base_url: str, app: App, account: TenantAccount
) -> None:
    class Liar(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _answer(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "-1")
            self.end_headers()

        do_HEAD = do_GET = _answer

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Liar) as host:
        refused(base_url, app, account, f"{host}/lying.jpg", 422, "connection_failed")


@pytest.fixture
def short_timeout(app: App) -> Iterator[App]:
    """The session app with a 2 s outbound deadline (production: 15 s), to keep the test fast."""
    outbound = OutboundClient(AddressPolicy.local_development(), total_timeout=2)
    quick = App.build(app.settings, outbound=outbound)
    install(quick)
    yield quick
    install(app)


def test_slow_drip_server_is_refused_within_the_deadline(
    short_timeout: App, base_url: str, account: TenantAccount
) -> None:
    stop = threading.Event()

    class Drip(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            # Headers one byte every 0.2 s: each read succeeds, only the overall deadline ends it.
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 9\r\n":
                if stop.wait(0.2):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Drip) as host:
        started = time.monotonic()
        refused(base_url, short_timeout, account, f"{host}/drip.jpg", 422, "timeout")
        assert time.monotonic() - started < 5
        stop.set()


def test_server_that_never_answers_is_refused_within_the_deadline(
    short_timeout: App, base_url: str, account: TenantAccount
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/a.jpg"
        refused(base_url, short_timeout, account, url, 422, "timeout")
        assert time.monotonic() - started < 5
    finally:
        silent.close()


@pytest.mark.parametrize(
    "callback",
    ["https://[::1/status", "file:///etc/passwd", "https://user:pw@example.com/cb"],
    ids=["unclosed-ipv6", "file-scheme", "credentials"],
)
def test_hostile_status_callback_is_400_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, callback: str
) -> None:
    body = {
        "from": account.number,
        "to": ["+15559876543"],
        "body": "hi",
        "statusCallback": callback,
    }
    before = stored(app, account.tenant_id)
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=10
    )
    expect(response, 400, "validation_failed")
    assert stored(app, account.tenant_id) == before
