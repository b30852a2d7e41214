"""SSRF guards of `shared.outbound`: the address classifier on its own, refusals that must happen
before any connection, and real exchanges with throwaway HTTP servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.outbound import (
    MAX_URL_LENGTH,
    AddressPolicy,
    OutboundClient,
    OutboundRefused,
    Reason,
    address_refusal,
)

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """A ThreadingHTTPServer whose paths are answered by test-supplied routes."""

    httpd: ThreadingHTTPServer
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path


class Handler(BaseHTTPRequestHandler):
    server: Any  # ThreadingHTTPServer carrying a `local` attribute

    def _dispatch(self) -> None:
        local: LocalServer = self.server.local
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        local.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        route = local.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_error(404)
            return
        # The client hangs up on purpose once a cap or deadline is reached.
        with contextlib.suppress(OSError):
            route(self)

    do_GET = do_HEAD = do_POST = _dispatch

    def log_message(self, format: str, *args: object) -> None:
        pass

    def respond(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers and body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def stall(self, seconds: float = 2.0) -> None:
        self.server.local.stopping.wait(seconds)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    local = LocalServer(httpd)
    httpd.local = local  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield local
    local.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def client(server: LocalServer) -> OutboundClient:
    return OutboundClient(
        AddressPolicy((server.origin,), loopback=True),
        connect_timeout=1.0,
        total_timeout=2.0,
    )


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection attempt. Only loopback ones are carried out, so a regression can
    never make these tests reach past this machine."""
    attempts: list[tuple[str, int]] = []
    real = socket.create_connection

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError(f"test refused to leave the machine: {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return attempts


@dataclass
class FakeDns:
    """Names answered by the test; `answers` are consumed in order, the last one repeats."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    delay: float = 0.0


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in fake.answers and host not in fake.fail:
            return real(host, port, *args, **kwargs)
        fake.lookups.append(host)
        time.sleep(fake.delay)
        if host in fake.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = fake.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


def refusal(call: Callable[[], object]) -> OutboundRefused:
    with pytest.raises(OutboundRefused) as caught:
        call()
    return caught.value


# --- the address classifier -------------------------------------------------------------------

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "private"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "scoped"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.100.100.200", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address under test, not a bind)
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("2002:7f00:1::", "6to4 loopback"),
    ("2002:a00:1::1", "6to4 private"),
    ("2002:a9fe:a9fe::", "6to4 link-local"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo documentation"),
    ("64:ff9b::7f00:1", "NAT64 loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 link-local"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("192.88.99.1", "6to4 relay"),
    ("2001:2::1", "IETF protocol assignment"),
    ("100::1", "discard-only"),
    ("fec0::1", "site-local"),
    ("4000::1", "reserved"),
    ("168.63.129.16", "Azure platform"),
]


@pytest.mark.parametrize(("address", "category"), FORBIDDEN)
def test_classifier_refuses_non_public_addresses(address: str, category: str) -> None:
    refusal_text = address_refusal(ipaddress.ip_address(address))
    assert refusal_text is not None
    assert category in refusal_text


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",  # just outside 172.16/12
        "100.128.0.1",  # just outside 100.64/10
        "198.20.0.1",  # just outside 198.18/15
        "2606:4700:4700::1111",
        "2002:808:808::1",  # 6to4 around a public IPv4
        "64:ff9b::808:808",  # NAT64 around a public IPv4
        "::ffff:8.8.8.8",
    ],
)
def test_classifier_admits_public_addresses(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_policy_admits_loopback(address: str) -> None:
    assert AddressPolicy(loopback=True).refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",
        "2002:7f00:1::",
        "10.0.0.1",
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "169.254.169.254",
        "::",
        "fc00::1",
    ],
)
def test_loopback_policy_admits_nothing_else(address: str) -> None:
    assert AddressPolicy(loopback=True).refusal(ipaddress.ip_address(address)) is not None


# --- refusals before any connection -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "https://0177.0.0.1/",
        "https://0x7f.1/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://0/",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://[fe80::1%25eth0]/",
        "https://100.64.0.1/",
        "https://[2002:a00:1::]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[fd00:ec2::254]/",
        "https://198.18.0.1/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://168.63.129.16/",
    ],
)
@pytest.mark.parametrize("operation", ["probe", "fetch", "post_json"])
def test_forbidden_address_is_refused_without_connecting(
    url: str, operation: str, connections: list[tuple[str, int]]
) -> None:
    outbound = OutboundClient()
    calls: dict[str, Callable[[], object]] = {
        "probe": lambda: outbound.probe(url),
        "fetch": lambda: outbound.fetch(url, max_bytes=1024),
        "post_json": lambda: outbound.post_json(url, b"{}"),
    }
    refused = refusal(calls[operation])
    assert refused.reason is Reason.ADDRESS_FORBIDDEN
    assert connections == []


def test_unusual_ip_forms_are_refused_even_with_loopback_allowed(
    connections: list[tuple[str, int]],
) -> None:
    outbound = OutboundClient(AddressPolicy(loopback=True))
    for url in ["https://2130706433/", "https://0x7f.1/", "https://127.1/", "https://0177.0.0.1/"]:
        assert refusal(partial(outbound.fetch, url, max_bytes=1)).reason is (
            Reason.ADDRESS_FORBIDDEN
        )
    assert connections == []


def test_name_resolving_to_any_private_address_is_refused(
    dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    dns.answers["media.example"] = [["8.8.8.8", "10.0.0.5"]]
    refused = refusal(lambda: OutboundClient().probe("https://media.example/cat.png"))
    assert refused.reason is Reason.ADDRESS_FORBIDDEN
    assert "media.example resolves to a private address" in refused.message
    assert "10.0.0.5" not in refused.message  # internal DNS answers are not echoed back
    assert connections == []


def test_unresolvable_name_is_dns_failure(dns: FakeDns, connections: list[tuple[str, int]]) -> None:
    dns.fail.add("nowhere.example")
    refused = refusal(lambda: OutboundClient().fetch("https://nowhere.example/", max_bytes=1))
    assert refused.reason is Reason.DNS_FAILURE


def test_slow_resolver_is_bounded_by_the_total_timeout(
    dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    dns.answers["slow.example"] = [["8.8.8.8"]]
    dns.delay = 1.5
    started = time.monotonic()
    refused = refusal(
        lambda: OutboundClient(total_timeout=0.3).fetch("https://slow.example/", max_bytes=1)
    )
    assert refused.reason is Reason.TIMEOUT
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://files.example/a.png", Reason.SCHEME_NOT_ALLOWED),
        ("file:///etc/passwd", Reason.SCHEME_NOT_ALLOWED),
        ("gopher://files.example/", Reason.SCHEME_NOT_ALLOWED),
        ("data:image/png;base64,AAAA", Reason.SCHEME_NOT_ALLOWED),
        ("http://files.example/a.png", Reason.SCHEME_NOT_ALLOWED),
        ("https://user:hunter2@files.example/a.png", Reason.CREDENTIALS_IN_URL),
        ("https://files.example/" + "a" * MAX_URL_LENGTH, Reason.URL_TOO_LONG),
        ("/relative/path.png", Reason.INVALID_URL),
        ("https:///no-host", Reason.INVALID_URL),
        ("https://files.example:0/", Reason.INVALID_URL),
        ("https://files%2eexample/", Reason.INVALID_URL),
        ("https://[::1/", Reason.INVALID_URL),
    ],
)
def test_url_shape_is_checked_before_any_lookup(
    url: str, reason: Reason, dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    dns.answers["files.example"] = [["8.8.8.8"]]
    refused = refusal(lambda: OutboundClient().fetch(url, max_bytes=1))
    assert refused.reason is reason
    assert dns.lookups == []
    assert connections == []


def test_refusal_never_shows_credentials_or_query_string() -> None:
    refused = refusal(
        lambda: OutboundClient().fetch(
            "https://user:hunter2@10.0.0.1/p.png?sig=SECRET#frag", max_bytes=1
        )
    )
    for text in (refused.url, refused.message, refused.detail):
        assert "hunter2" not in text
        assert "SECRET" not in text
    assert refused.url == "https://10.0.0.1/p.png"
    assert refused.code == "credentials_in_url"
    assert refused.extra == {"url": "https://10.0.0.1/p.png"}


# --- exchanges with a local server ------------------------------------------------------------


def test_plain_http_is_refused_unless_the_origin_is_allowed(server: LocalServer) -> None:
    server.routes["/a"] = lambda h: h.respond(200, b"ok")
    other_port = OutboundClient(AddressPolicy(("http://127.0.0.1:1",), loopback=True))
    for outbound in (OutboundClient(AddressPolicy(loopback=True)), other_port):
        refused = refusal(partial(outbound.fetch, server.url("/a"), max_bytes=10))
        assert refused.reason is Reason.SCHEME_NOT_ALLOWED
    assert server.seen == []


def test_local_development_policy_reaches_loopback_over_plain_http_on_any_port(
    server: LocalServer, connections: list[tuple[str, int]]
) -> None:
    server.routes["/a"] = lambda h: h.respond(200, b"ok")
    outbound = OutboundClient(AddressPolicy.local_development())
    assert outbound.fetch(server.url("/a"), max_bytes=10).content == b"ok"
    for url, reason in [
        ("http://10.0.0.1/", Reason.SCHEME_NOT_ALLOWED),
        ("https://10.0.0.1/", Reason.ADDRESS_FORBIDDEN),
        ("https://[::ffff:127.0.0.1]/", Reason.ADDRESS_FORBIDDEN),
    ]:
        assert refusal(partial(outbound.fetch, url, max_bytes=10)).reason is reason
    assert connections == [("127.0.0.1", server.port)]


def test_loopback_is_refused_unless_allowed(server: LocalServer) -> None:
    server.routes["/a"] = lambda h: h.respond(200, b"ok")
    outbound = OutboundClient(AddressPolicy((server.origin,)))
    assert refusal(lambda: outbound.fetch(server.url("/a"), max_bytes=10)).reason is (
        Reason.ADDRESS_FORBIDDEN
    )
    assert server.seen == []


def test_probe_uses_head(server: LocalServer, client: OutboundClient) -> None:
    server.routes["/cat.png"] = lambda h: h.respond(
        200, Content_Type="image/PNG; charset=binary", Content_Length="1234"
    )
    probe = client.probe(server.url("/cat.png?sig=abc"))
    assert (probe.status, probe.content_type, probe.size) == (200, "image/png", 1234)
    assert probe.final_url == server.url("/cat.png?sig=abc")
    assert [s.method for s in server.seen] == ["HEAD"]
    assert server.seen[0].headers["Accept-Encoding"] == "identity"


def _ranged(h: Handler, total: int = 5000) -> None:
    if h.command == "HEAD":
        h.respond(405, Allow="GET")
        return
    assert h.headers["Range"] == "bytes=0-0"
    h.respond(206, b"\x89", Content_Type="image/png", Content_Range=f"bytes 0-0/{total}")


@pytest.mark.parametrize("head_status", [405, 501, 403])
def test_probe_falls_back_to_ranged_get_when_head_is_refused(
    server: LocalServer, client: OutboundClient, head_status: int
) -> None:
    def route(h: Handler) -> None:
        if h.command == "HEAD":
            h.respond(head_status)
        else:
            _ranged(h)

    server.routes["/cat.png"] = route
    probe = client.probe(server.url("/cat.png"))
    assert (probe.status, probe.content_type, probe.size) == (206, "image/png", 5000)
    assert [(s.method, s.headers.get("Range")) for s in server.seen] == [
        ("HEAD", None),
        ("GET", "bytes=0-0"),
    ]


def test_probe_falls_back_when_head_gives_no_size(
    server: LocalServer, client: OutboundClient
) -> None:
    def route(h: Handler) -> None:
        if h.command == "HEAD":
            h.respond(200, Content_Type="image/png")
        else:
            _ranged(h, total=77)

    server.routes["/cat.png"] = route
    assert client.probe(server.url("/cat.png")).size == 77


def test_probe_does_not_download_when_the_server_ignores_range(
    server: LocalServer, client: OutboundClient
) -> None:
    def route(h: Handler) -> None:
        if h.command == "HEAD":
            h.respond(405)
            return
        h.respond(200, b"\x89PNG", Content_Type="image/png", Content_Length="50000000")
        h.wfile.flush()
        h.stall()

    server.routes["/big.png"] = route
    started = time.monotonic()
    probe = client.probe(server.url("/big.png"))
    assert (probe.status, probe.size) == (200, 50_000_000)
    assert time.monotonic() - started < 1.0


def test_probe_of_missing_resource_is_http_status(
    server: LocalServer, client: OutboundClient
) -> None:
    refused = refusal(lambda: client.probe(server.url("/missing")))
    assert (refused.reason, refused.upstream_status) == (Reason.HTTP_STATUS, 404)


def test_fetch_returns_body_type_and_final_url(server: LocalServer, client: OutboundClient) -> None:
    server.routes["/a.txt"] = lambda h: h.respond(200, b"hello", Content_Type="text/plain")
    fetched = client.fetch(server.url("/a.txt"), max_bytes=5)
    assert (fetched.content, fetched.content_type) == (b"hello", "text/plain")
    assert fetched.final_url == server.url("/a.txt")


def test_fetch_one_byte_over_the_cap_without_length_is_too_large(
    server: LocalServer, client: OutboundClient
) -> None:
    def route(h: Handler) -> None:
        h.send_response(200)  # HTTP/1.0, no Content-Length: the body runs until close
        h.end_headers()
        for _ in range(11):
            h.wfile.write(b"x" * 100)
            h.wfile.flush()

    server.routes["/stream"] = route
    assert client.fetch(server.url("/stream"), max_bytes=1100).content == b"x" * 1100
    refused = refusal(lambda: client.fetch(server.url("/stream"), max_bytes=1099))
    assert refused.reason is Reason.TOO_LARGE


def test_fetch_rejects_declared_oversize_before_reading(
    server: LocalServer, client: OutboundClient
) -> None:
    def route(h: Handler) -> None:
        h.respond(200, b"x" * 10, Content_Length="1000000000")
        h.wfile.flush()
        h.stall()

    server.routes["/huge"] = route
    started = time.monotonic()
    assert refusal(lambda: client.fetch(server.url("/huge"), max_bytes=100)).reason is (
        Reason.TOO_LARGE
    )
    assert time.monotonic() - started < 1.0


def test_fetch_never_returns_more_than_a_lying_content_length(
    server: LocalServer, client: OutboundClient
) -> None:
    server.routes["/liar"] = lambda h: h.respond(200, b"y" * 5000, Content_Length="10")
    assert client.fetch(server.url("/liar"), max_bytes=100).content == b"y" * 10


def test_fetch_refuses_compressed_content(server: LocalServer, client: OutboundClient) -> None:
    server.routes["/gz"] = lambda h: h.respond(200, b"\x1f\x8b", Content_Encoding="gzip")
    assert refusal(lambda: client.fetch(server.url("/gz"), max_bytes=100)).reason is (
        Reason.UNSUPPORTED_ENCODING
    )


def test_fetch_error_status_is_http_status(server: LocalServer, client: OutboundClient) -> None:
    server.routes["/boom"] = lambda h: h.respond(500, b"no")
    refused = refusal(lambda: client.fetch(server.url("/boom"), max_bytes=100))
    assert (refused.reason, refused.upstream_status) == (Reason.HTTP_STATUS, 500)


def test_url_of_exactly_the_maximum_length_is_fetched(
    server: LocalServer, client: OutboundClient
) -> None:
    server.routes["/a"] = lambda h: h.respond(200, b"ok")
    base = server.url("/a?pad=")
    url = base + "p" * (MAX_URL_LENGTH - len(base))
    assert client.fetch(url, max_bytes=10).content == b"ok"
    assert refusal(lambda: client.fetch(url + "p", max_bytes=10)).reason is Reason.URL_TOO_LONG


def test_slow_drip_body_hits_the_total_timeout(server: LocalServer) -> None:
    def route(h: Handler) -> None:
        h.send_response(200)
        h.end_headers()
        while not h.server.local.stopping.wait(0.05):
            h.wfile.write(b"x")
            h.wfile.flush()

    server.routes["/drip"] = route
    outbound = OutboundClient(AddressPolicy((server.origin,), loopback=True), total_timeout=0.5)
    started = time.monotonic()
    assert refusal(lambda: outbound.fetch(server.url("/drip"), max_bytes=10**6)).reason is (
        Reason.TIMEOUT
    )
    assert time.monotonic() - started < 1.0


def test_slow_drip_headers_hit_the_total_timeout(server: LocalServer) -> None:
    def route(h: Handler) -> None:
        h.wfile.write(b"HTTP/1.0 200 OK\r\n")
        while not h.server.local.stopping.wait(0.05):
            h.wfile.write(b"X-Drip: 1\r\n")
            h.wfile.flush()

    server.routes["/drip-headers"] = route
    outbound = OutboundClient(AddressPolicy((server.origin,), loopback=True), total_timeout=0.5)
    started = time.monotonic()
    assert refusal(lambda: outbound.probe(server.url("/drip-headers"))).reason is Reason.TIMEOUT
    assert time.monotonic() - started < 1.0


def test_nothing_listening_is_connection_failed(connections: list[tuple[str, int]]) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    outbound = OutboundClient(AddressPolicy((origin,), loopback=True))
    assert refusal(lambda: outbound.fetch(origin + "/", max_bytes=1)).reason is (
        Reason.CONNECTION_FAILED
    )
    assert connections == [("127.0.0.1", port)]


def _hops(h: Handler) -> None:
    remaining = int(h.path.rsplit("/", 1)[1])
    if remaining:
        h.respond(302, Location=f"/hop/{remaining - 1}")
    else:
        h.respond(200, b"arrived", Content_Type="text/plain")


@pytest.fixture
def hops(server: LocalServer) -> LocalServer:
    for n in range(6):
        server.routes[f"/hop/{n}"] = _hops
    return server


def test_three_redirects_are_followed(hops: LocalServer, client: OutboundClient) -> None:
    fetched = client.fetch(hops.url("/hop/3"), max_bytes=100)
    assert (fetched.content, fetched.final_url) == (b"arrived", hops.url("/hop/0"))
    assert client.probe(hops.url("/hop/3")).final_url == hops.url("/hop/0")


def test_a_redirects_body_is_never_read(server: LocalServer, client: OutboundClient) -> None:
    def endless(h: Handler) -> None:
        h.send_response(302)
        h.send_header("Location", "/a")
        h.end_headers()
        while not h.server.local.stopping.wait(0.01):
            h.wfile.write(b"x" * 65536)

    server.routes["/away"] = endless
    server.routes["/a"] = lambda h: h.respond(200, b"ok")
    started = time.monotonic()
    assert client.fetch(server.url("/away"), max_bytes=10).content == b"ok"
    assert time.monotonic() - started < 1.0


def test_fourth_redirect_is_refused(hops: LocalServer, client: OutboundClient) -> None:
    refused = refusal(lambda: client.fetch(hops.url("/hop/4"), max_bytes=100))
    assert refused.reason is Reason.TOO_MANY_REDIRECTS
    assert [s.path for s in hops.seen] == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://10.0.0.1/internal", Reason.ADDRESS_FORBIDDEN),
        ("https://169.254.169.254/latest/meta-data/", Reason.ADDRESS_FORBIDDEN),
        ("https://[::ffff:127.0.0.1]/", Reason.ADDRESS_FORBIDDEN),
        ("http://10.0.0.1/internal", Reason.SCHEME_NOT_ALLOWED),
        ("file:///etc/passwd", Reason.SCHEME_NOT_ALLOWED),
        ("ftp://files.example/x", Reason.SCHEME_NOT_ALLOWED),
        ("https://user:pw@files.example/x", Reason.CREDENTIALS_IN_URL),
    ],
)
def test_redirect_target_is_checked_like_the_first_url(
    server: LocalServer,
    client: OutboundClient,
    connections: list[tuple[str, int]],
    location: str,
    reason: Reason,
) -> None:
    server.routes["/away"] = lambda h: h.respond(302, Location=location)
    refused = refusal(lambda: client.fetch(server.url("/away"), max_bytes=100))
    assert refused.reason is reason
    assert refused.url == server.url("/away")
    assert "redirected to" in refused.message
    assert connections == [("127.0.0.1", server.port)]


def test_redirect_to_private_address_names_the_hop(
    server: LocalServer, client: OutboundClient
) -> None:
    server.routes["/away"] = lambda h: h.respond(301, Location="https://10.0.0.1/internal?k=v")
    refused = refusal(lambda: client.probe(server.url("/away")))
    assert refused.message == (
        f"{server.url('/away')} (redirected to https://10.0.0.1/internal) was refused: "
        "the address is private"
    )


def test_post_json_sends_body_and_headers(server: LocalServer, client: OutboundClient) -> None:
    server.routes["/hook"] = lambda h: h.respond(202, b'{"ok":true}', X_Reply="yes")
    posted = client.post_json(
        server.url("/hook"), b'{"messageId":"m1"}', headers={"webhook-id": "msg_1"}
    )
    assert (posted.status, posted.body, posted.headers["x-reply"]) == (202, b'{"ok":true}', "yes")
    (seen,) = server.seen
    assert (seen.method, seen.body) == ("POST", b'{"messageId":"m1"}')
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["webhook-id"] == "msg_1"


def test_post_json_returns_error_status_and_truncates_body(
    server: LocalServer, client: OutboundClient
) -> None:
    server.routes["/hook"] = lambda h: h.respond(503, b"z" * 5000)
    posted = client.post_json(server.url("/hook"), b"{}", max_response_bytes=100)
    assert (posted.status, posted.body) == (503, b"z" * 100)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_post_json_does_not_follow_redirects(
    server: LocalServer, client: OutboundClient, status: int
) -> None:
    server.routes["/hook"] = lambda h: h.respond(status, Location="/elsewhere")
    server.routes["/elsewhere"] = lambda h: h.respond(200)
    refused = refusal(lambda: client.post_json(server.url("/hook"), b"{}"))
    assert (refused.reason, refused.upstream_status) == (Reason.REDIRECT_REFUSED, status)
    assert [s.path for s in server.seen] == ["/hook"]


# --- the connection goes to the checked address -----------------------------------------------


def test_connection_goes_to_the_pinned_address_with_the_original_host(
    server: LocalServer, dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    server.routes["/a.png"] = lambda h: h.respond(200, b"png")
    dns.answers["media.test"] = [["127.0.0.1"]]
    origin = f"http://media.test:{server.port}"
    outbound = OutboundClient(AddressPolicy((origin,), loopback=True))
    assert outbound.fetch(origin + "/a.png", max_bytes=10).content == b"png"
    assert server.seen[0].headers["Host"] == f"media.test:{server.port}"
    assert dns.lookups == ["media.test"]
    assert connections == [("127.0.0.1", server.port)]


def test_rebinding_after_the_check_does_not_move_the_connection(
    server: LocalServer, dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    server.routes["/a.png"] = lambda h: h.respond(200, b"png")
    dns.answers["media.test"] = [["127.0.0.1"], ["10.0.0.7"]]
    origin = f"http://media.test:{server.port}"
    outbound = OutboundClient(AddressPolicy((origin,), loopback=True))
    assert outbound.fetch(origin + "/a.png", max_bytes=10).content == b"png"
    assert connections == [("127.0.0.1", server.port)]


def test_each_redirect_hop_is_resolved_and_checked_again(
    server: LocalServer, dns: FakeDns, connections: list[tuple[str, int]]
) -> None:
    server.routes["/first"] = lambda h: h.respond(302, Location="/second")
    dns.answers["media.test"] = [["127.0.0.1"], ["10.0.0.7"]]
    origin = f"http://media.test:{server.port}"
    outbound = OutboundClient(AddressPolicy((origin,), loopback=True))
    refused = refusal(lambda: outbound.fetch(origin + "/first", max_bytes=10))
    assert refused.reason is Reason.ADDRESS_FORBIDDEN
    assert dns.lookups == ["media.test", "media.test"]
    assert [s.path for s in server.seen] == ["/first"]
    assert connections == [("127.0.0.1", server.port)]


def test_policy_rejects_a_plain_http_origin_with_a_path() -> None:
    with pytest.raises(ValueError, match="origin"):
        AddressPolicy(("http://127.0.0.1:10000/devstoreaccount1",))
