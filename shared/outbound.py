"""Server-side-request-forgery-safe outbound HTTP: the one way this service calls a URL that a
customer or the carrier gave it (media URL checks, inbound MMS downloads, customer webhooks).

Each hop's host is resolved once, every resolved address is checked, and the connection is pinned
to a checked address while the original host name is kept for `Host`, TLS SNI and certificate
verification, so a DNS answer that changes between check and connect (rebinding) cannot redirect
us. Ports are not restricted: the address, not the port, decides what is reachable, and customers
legitimately serve media on ports such as 8443.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

import httpcore
import httpx

from shared.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
DEFAULT_USER_AGENT = "media-mms-backend/0.1 (outbound)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# 403 is here because URLs presigned for GET (object stores) reject HEAD with 403.
HEAD_FALLBACK_STATUSES = frozenset({403, 405, 501})
# Writes go out in slices so the overall deadline is re-checked while a slow peer drains them.
_WRITE_SLICE = 64 * 1024
_MAX_HOST_LENGTH = 253
_SHOWN_URL_LENGTH = 200
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})


class Reason(StrEnum):
    """Stable machine codes for why an outbound call was refused or failed."""

    INVALID_URL = "invalid_url"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    CREDENTIALS_IN_URL = "credentials_in_url"
    URL_TOO_LONG = "url_too_long"
    ADDRESS_FORBIDDEN = "address_forbidden"
    DNS_FAILURE = "dns_failure"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    REDIRECT_REFUSED = "redirect_refused"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    HTTP_STATUS = "http_status"
    CONNECTION_FAILED = "connection_failed"


class OutboundRefused(Unprocessable):
    """An outbound call was refused before connecting or failed on the way.

    `code` is the `Reason`, so an unhandled refusal still maps to a meaningful 422; callers that
    know their context (media URL, webhook delivery) usually translate it. `url` and the message
    never contain userinfo, query string or fragment, where signatures and tokens live.
    """

    def __init__(
        self, url: str, reason: Reason, message: str, *, upstream_status: int | None = None
    ) -> None:
        self.url = redact_url(url)
        super().__init__(message, code=reason, extra={"url": self.url})
        self.reason = reason
        self.message = message
        self.upstream_status = upstream_status


@dataclass(frozen=True, slots=True)
class Probe:
    """What a URL serves, learned without downloading it. `status` is that of the answer used
    (HEAD's, or 206/200 from the ranged GET fallback); `content_type` is the media type,
    lower-cased and without parameters; `size` is None when the server does not say."""

    status: int
    content_type: str | None
    size: int | None
    final_url: str


@dataclass(frozen=True, slots=True)
class Fetched:
    content: bytes
    content_type: str | None
    final_url: str


@dataclass(frozen=True, slots=True)
class Posted:
    """The answer to a POST. `body` holds at most the requested number of leading bytes."""

    status: int
    headers: httpx.Headers
    body: bytes


def redact_url(url: str) -> str:
    """The URL without userinfo, query string or fragment, shortened for messages and logs."""
    shown = re.split(r"[?#]", url, maxsplit=1)[0]
    scheme, sep, rest = shown.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        shown = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    if len(shown) > _SHOWN_URL_LENGTH:
        shown = shown[:_SHOWN_URL_LENGTH] + "..."
    return shown


def _net4(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _net6(cidr: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(cidr)


_LOOPBACK_V4 = _net4("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")

# Explicit tables: `ipaddress.is_global` differs between Python releases and, on 3.11, calls
# multicast and 6to4-wrapped private addresses global. Order matters where ranges nest.
_FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_net4("0.0.0.0/8"), "unspecified ('this network')"),
    (_net4("10.0.0.0/8"), "private"),
    (_net4("100.64.0.0/10"), "carrier-grade NAT (shared address space)"),
    (_LOOPBACK_V4, "loopback"),
    (_net4("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
    (_net4("172.16.0.0/12"), "private"),
    (_net4("192.0.0.0/24"), "IETF protocol assignment"),
    (_net4("192.0.2.0/24"), "documentation"),
    (_net4("192.88.99.0/24"), "6to4 relay anycast"),
    (_net4("192.168.0.0/16"), "private"),
    (_net4("198.18.0.0/15"), "benchmarking"),
    (_net4("198.51.100.0/24"), "documentation"),
    (_net4("203.0.113.0/24"), "documentation"),
    (_net4("224.0.0.0/4"), "multicast"),
    (_net4("255.255.255.255/32"), "broadcast"),
    (_net4("240.0.0.0/4"), "reserved"),
    # Public-looking, but it is the Azure host's virtual IP (WireServer, platform DNS).
    (_net4("168.63.129.16/32"), "Azure platform"),
)

_FORBIDDEN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_net6("::/128"), "unspecified"),
    (_net6("::/96"), "IPv4-compatible (deprecated)"),
    (_net6("64:ff9b:1::/48"), "local-use NAT64"),
    (_net6("100::/64"), "discard-only"),
    (_net6("2001:db8::/32"), "documentation"),
    (_net6("2001::/23"), "IETF protocol assignment"),
    (_net6("3fff::/20"), "documentation"),
    (_net6("fc00::/7"), "private (unique local)"),
    (_net6("fe80::/10"), "link-local"),
    (_net6("fec0::/10"), "site-local (deprecated)"),
    (_net6("ff00::/8"), "multicast"),
)
_GLOBAL_UNICAST_V6 = _net6("2000::/3")
_NAT64_WELL_KNOWN = _net6("64:ff9b::/96")


def _embedded_ipv4(
    address: ipaddress.IPv6Address,
) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The IPv4 addresses an IPv6 address would deliver to, for the forms that embed one."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", (address.ipv4_mapped,)
    if address in _NAT64_WELL_KNOWN:
        return "NAT64", (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return "6to4", (address.sixtofour,)
    if address.teredo is not None:
        return "Teredo", address.teredo
    return None


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why `address` must not be contacted (e.g. "private"), or None when it may be.

    `allow_loopback` (tests and local development only) admits 127.0.0.0/8 and ::1 and nothing
    else; loopback wrapped in an IPv6 form stays refused.
    """
    if isinstance(address, ipaddress.IPv4Address):
        if allow_loopback and address in _LOOPBACK_V4:
            return None
        for network, label in _FORBIDDEN_V4:
            if address in network:
                return label
        return None if address.is_global else "not globally routable"
    if address.scope_id is not None:
        return "scoped (zone identifier)"
    if address == _LOOPBACK_V6:
        return None if allow_loopback else "loopback"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        for v4 in inner:
            refusal = address_refusal(v4)
            if refusal is not None:
                return f"{form} {refusal}"
        return None
    for network6, label in _FORBIDDEN_V6:
        if address in network6:
            return label
    return None if address in _GLOBAL_UNICAST_V6 else "reserved"


_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")


def _numeric_host(host: str) -> bool:
    """True when resolvers would read `host` as an IPv4 address in some form (WHATWG "ends in a
    number"): decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`."""
    labels = host.removesuffix(".").split(".")
    return bool(_NUMERIC_LABEL.fullmatch(labels[-1]))


@dataclass(frozen=True, slots=True)
class _Hop:
    url: httpx.URL
    host: str  # ASCII (IDNA) host as the connection pool sees it; IPv6 without brackets
    port: int
    literal: IPAddress | None


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to addresses that were checked for the host, never resolving it again, and
    clamps every socket operation to the operation's deadline (slow-drip peers included)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.pins: dict[str, tuple[str, ...]] = {}
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pins.get(host)
        if not addresses:
            raise httpcore.ConnectError(f"no checked address for {host}")
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            budget = _clamp(self.deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    address, port, timeout=budget, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        assert failure is not None
        raise failure


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_SLICE):
            budget = _clamp(self._deadline, timeout, httpcore.WriteTimeout)
            self._inner.write(buffer[start : start + _WRITE_SLICE], budget)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _clamp(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, budget), self._deadline
        )

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


def _clamp(deadline: float, timeout: float | None, expired: Callable[[str], Exception]) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the overall deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _media_type(response: httpcore.Response) -> str | None:
    value = _header(response, b"content-type")
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _content_length(response: httpcore.Response) -> int | None:
    value = _header(response, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", re.IGNORECASE)


def _content_range_total(response: httpcore.Response) -> int | None:
    match = _CONTENT_RANGE.fullmatch(_header(response, b"content-range") or "")
    return int(match.group(1)) if match else None


def _resolve(host: str, port: int, deadline: float) -> list[str] | OSError | None:
    """getaddrinfo on a worker thread, so a slow resolver cannot outlast the deadline.
    None means the deadline passed first."""
    outcome: list[list[str] | OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome.append(exc)
            return
        outcome.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))

    worker = threading.Thread(target=lookup, name="outbound-dns", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    return outcome[0] if outcome else None


class _Session:
    """One outbound operation: its deadline, its pinned addresses, its connection pool."""

    def __init__(
        self,
        client: OutboundClient,
        url: str,
        backend: _PinnedBackend,
        pool: httpcore.ConnectionPool,
    ) -> None:
        self.client = client
        self.original = redact_url(url)
        self.current = self.original
        self.backend = backend
        self.pool = pool

    def refuse(self, reason: Reason, why: str, *, upstream_status: int | None = None) -> NoReturn:
        subject = self.original
        if self.current != self.original:
            subject = f"{self.original} (redirected to {self.current})"
        raise OutboundRefused(
            self.original, reason, f"{subject} was refused: {why}", upstream_status=upstream_status
        )

    def admit(self, raw: str) -> _Hop:
        """Check a URL (the first or a redirect target) and pin its host's checked addresses."""
        self.current = redact_url(raw)
        if len(raw) > MAX_URL_LENGTH:
            self.refuse(Reason.URL_TOO_LONG, f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            url = httpx.URL(raw)
        except httpx.InvalidURL:
            # The parser rejects forms like `0177.0.0.1` outright; say why if that is the cause.
            authority = raw.partition("://")[2].split("/", 1)[0].rpartition("@")[2]
            if _numeric_host(authority.rsplit(":", 1)[0]):
                self.refuse(Reason.ADDRESS_FORBIDDEN, "the host is an unusual IP address form")
            self.refuse(Reason.INVALID_URL, "it is not a valid URL")
        hop = self._static_checks(url)
        self._pin(hop)
        return hop

    def _static_checks(self, url: httpx.URL) -> _Hop:
        if not url.scheme:
            self.refuse(Reason.INVALID_URL, "it is not an absolute URL")
        port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
        plain_ok = (url.host, port) in self.client.plain_http_origins or (
            self.client.plain_http_loopback and url.host in _LOOPBACK_NAMES
        )
        if url.scheme != "https" and not (url.scheme == "http" and plain_ok):
            self.refuse(Reason.SCHEME_NOT_ALLOWED, f"the scheme {url.scheme!r} is not allowed")
        if not url.host:
            self.refuse(Reason.INVALID_URL, "it has no host")
        if url.userinfo:
            self.refuse(Reason.CREDENTIALS_IN_URL, "URLs must not carry credentials")
        if not 0 < port < 65536:
            self.refuse(Reason.INVALID_URL, "the port is out of range")
        host = url.raw_host.decode("ascii")
        literal: IPAddress | None = None
        if ":" in host:
            try:
                literal = ipaddress.IPv6Address(host.replace("%25", "%"))
            except ValueError:
                self.refuse(Reason.INVALID_URL, "the IPv6 address is malformed")
        elif _numeric_host(host):
            try:
                literal = ipaddress.IPv4Address(host)
            except ValueError:
                self.refuse(Reason.ADDRESS_FORBIDDEN, "the host is an unusual IP address form")
        elif len(host) > _MAX_HOST_LENGTH or not _HOST_NAME.fullmatch(host):
            self.refuse(Reason.INVALID_URL, "the host name is malformed")
        return _Hop(url=url, host=host, port=port, literal=literal)

    def _pin(self, hop: _Hop) -> None:
        allow_loopback = self.client.allow_loopback
        if hop.literal is not None:
            refusal = address_refusal(hop.literal, allow_loopback=allow_loopback)
            if refusal is not None:
                self.refuse(Reason.ADDRESS_FORBIDDEN, f"the address is {refusal}")
            self.backend.pins[hop.host] = (str(hop.literal),)
            return
        resolved = _resolve(hop.host, hop.port, self.backend.deadline)
        if resolved is None:
            self.refuse(Reason.TIMEOUT, "resolving the host name took too long")
        if isinstance(resolved, OSError) or not resolved:
            self.refuse(Reason.DNS_FAILURE, f"the host name {hop.host} could not be resolved")
        for text in resolved:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                self.refuse(
                    Reason.ADDRESS_FORBIDDEN, f"{hop.host} resolves to an unreadable address"
                )
            refusal = address_refusal(address, allow_loopback=allow_loopback)
            if refusal is not None:
                self.refuse(Reason.ADDRESS_FORBIDDEN, f"{hop.host} resolves to a {refusal} address")
        self.backend.pins[hop.host] = tuple(resolved)

    @contextmanager
    def exchange(
        self,
        method: bytes,
        url: str,
        *,
        follow: bool,
        headers: Iterable[tuple[bytes, bytes]] = (),
        content: bytes | None = None,
    ) -> Iterator[tuple[httpcore.Response, str]]:
        """Send one request, following redirects for GET/HEAD; yields the final response (body
        unread) and the URL that produced it."""
        redirects = 0
        while True:
            hop = self.admit(url)
            request_headers = [
                (b"Host", hop.url.netloc),
                (b"User-Agent", self.client.user_agent.encode("ascii")),
                (b"Accept", b"*/*"),
                # Raw bytes only: decoding on the fly would let a compressed bomb past the cap.
                (b"Accept-Encoding", b"identity"),
                *headers,
            ]
            target = httpcore.URL(
                scheme=hop.url.raw_scheme,
                host=hop.url.raw_host,
                port=hop.port,
                target=hop.url.raw_path,
            )
            with self.pool.stream(
                method,
                target,
                headers=request_headers,
                content=content,
                extensions={"timeout": {"connect": self.client.connect_timeout}},
            ) as response:
                location = _header(response, b"location")
                if response.status not in REDIRECT_STATUSES or location is None:
                    yield response, str(hop.url)
                    return
                if not follow:
                    self.refuse(
                        Reason.REDIRECT_REFUSED,
                        f"the server answered {response.status} with a redirect, which is not"
                        " followed here",
                        upstream_status=response.status,
                    )
            if redirects >= self.client.max_redirects:
                self.refuse(
                    Reason.TOO_MANY_REDIRECTS, f"more than {self.client.max_redirects} redirects"
                )
            redirects += 1
            try:
                url = str(hop.url.join(location))
            except httpx.InvalidURL:
                self.current = redact_url(location)
                self.refuse(Reason.INVALID_URL, "the redirect target is not a valid URL")

    def require_success(self, response: httpcore.Response) -> None:
        if not 200 <= response.status < 300:
            self.refuse(
                Reason.HTTP_STATUS,
                f"the server answered HTTP {response.status}",
                upstream_status=response.status,
            )
        encoding = _header(response, b"content-encoding")
        if encoding is not None and encoding.lower() not in ("", "identity"):
            self.refuse(
                Reason.UNSUPPORTED_ENCODING,
                f"the server sent Content-Encoding {encoding!r} although identity was requested",
            )


class OutboundClient:
    """SSRF-safe HTTP for URLs we do not control. Stateless between calls and thread-safe; each
    call gets its own deadline (`total_timeout`, covering DNS, redirects and body), pinned
    addresses and connections.

    Plain http is refused except for the exact origins in `plain_http_origins` (e.g. the local
    storage emulator, `http://127.0.0.1:10000`); those still pass the address check, so loopback
    ones also need `allow_loopback`, which is for tests and local development only, as is
    `plain_http_loopback` (plain http to any loopback port, for local test peers).
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        plain_http_origins: Iterable[str] = (),
        plain_http_loopback: bool = False,
        connect_timeout: float = 3.0,
        total_timeout: float = 15.0,
        max_redirects: int = 3,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0 or max_redirects < 0:
            raise ValueError("timeouts must be positive and max_redirects not negative")
        self.allow_loopback = allow_loopback
        self.plain_http_origins = frozenset(_http_origin(origin) for origin in plain_http_origins)
        # Tests only (with allow_loopback): local peers speak plain http on any loopback port.
        self.plain_http_loopback = plain_http_loopback and allow_loopback
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.ssl_context = ssl_context

    def probe(self, url: str) -> Probe:
        """Status, media type and size of `url` without downloading its body: HEAD, then a
        one-byte ranged GET when HEAD is refused or gives no size."""
        with self._session(url) as session:
            head: Probe | None = None
            with session.exchange(b"HEAD", url, follow=True) as (response, final_url):
                if response.status not in HEAD_FALLBACK_STATUSES:
                    session.require_success(response)
                    head = Probe(
                        response.status, _media_type(response), _content_length(response), final_url
                    )
                    if head.size is not None:
                        return head
            ranged = [(b"Range", b"bytes=0-0")]
            with session.exchange(b"GET", url, follow=True, headers=ranged) as (
                response,
                final_url,
            ):
                if head is not None and not 200 <= response.status < 300:
                    return head
                session.require_success(response)
                size = (
                    _content_range_total(response)
                    if response.status == 206
                    else _content_length(response)
                )
                # Leaving the block closes the connection with the body unread.
                return Probe(response.status, _media_type(response), size, final_url)

    def fetch(self, url: str, *, max_bytes: int) -> Fetched:
        """Download `url`, refusing (`too_large`) as soon as more than `max_bytes` would arrive."""
        with (
            self._session(url) as session,
            session.exchange(b"GET", url, follow=True) as (response, final_url),
        ):
            session.require_success(response)
            declared = _content_length(response)
            if declared is not None and declared > max_bytes:
                session.refuse(Reason.TOO_LARGE, f"the content is larger than {max_bytes} bytes")
            content = bytearray()
            for chunk in response.iter_stream():
                content += chunk
                if len(content) > max_bytes:
                    session.refuse(
                        Reason.TOO_LARGE, f"the content is larger than {max_bytes} bytes"
                    )
            return Fetched(bytes(content), _media_type(response), final_url)

    def post_json(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        max_response_bytes: int = 16 * 1024,
    ) -> Posted:
        """POST `body` as JSON. Any final status is returned for the caller to judge; a redirect
        is refused (`redirect_refused`) rather than followed. The response body is truncated to
        `max_response_bytes`."""
        extra = [(b"Content-Type", b"application/json")]
        for name, value in (headers or {}).items():
            if name.lower() == "content-type":
                extra = []
            extra.append((name.encode("ascii"), value.encode("latin-1")))
        with (
            self._session(url) as session,
            session.exchange(b"POST", url, follow=False, headers=extra, content=body) as (
                response,
                _,
            ),
        ):
            received = bytearray()
            for chunk in response.iter_stream():
                received += chunk
                if len(received) >= max_response_bytes:
                    break
            return Posted(
                response.status,
                httpx.Headers(response.headers),
                bytes(received[:max_response_bytes]),
            )

    @contextmanager
    def _session(self, url: str) -> Iterator[_Session]:
        backend = _PinnedBackend(time.monotonic() + self.total_timeout)
        pool = httpcore.ConnectionPool(
            ssl_context=self.ssl_context, network_backend=backend, retries=0
        )
        with pool:
            session = _Session(self, url, backend, pool)
            try:
                yield session
            except httpcore.TimeoutException:
                session.refuse(Reason.TIMEOUT, f"no complete answer within {self.total_timeout}s")
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                if time.monotonic() >= backend.deadline:
                    session.refuse(
                        Reason.TIMEOUT, f"no complete answer within {self.total_timeout}s"
                    )
                why = "the connection failed"
                # The pool re-raises `from None`, so the TLS error survives only as context.
                if isinstance(exc.__cause__ or exc.__context__, ssl.SSLError):
                    why = "the TLS handshake or certificate verification failed"
                session.refuse(Reason.CONNECTION_FAILED, why)


def _http_origin(origin: str) -> tuple[str, int]:
    url = httpx.URL(origin)
    if url.scheme != "http" or not url.host or url.userinfo or url.raw_path not in (b"/", b""):
        raise ValueError(f"not a plain http origin: {origin!r}")
    return url.host, 80 if url.port is None else url.port
