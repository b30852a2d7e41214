"""Server-side-request-forgery-safe outbound HTTP: the one way this service calls a URL that a
customer or the carrier gave it (media URL checks, inbound MMS downloads, customer webhooks).

Built on `httpx.Client`. A request hook admits every hop, redirects included: the URL's shape is
checked, its host resolved once and every resolved address checked against the address tables
and the injected `AddressPolicy`. The transport then connects only to those checked addresses
while the host name stays in `Host`, TLS SNI and certificate verification, so a DNS answer that
changes between check and connect (rebinding) cannot move us. One deadline bounds each call:
DNS, connects, redirects and bodies. Ports are not restricted: the address, not the port, decides
what is reachable, and customers legitimately serve media on ports such as 8443.
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


_LOOPBACK = (_net4("127.0.0.0/8"), _net6("::1/128"))
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})

# Explicit tables: `ipaddress.is_global` differs between Python releases and, on 3.11, calls
# multicast and 6to4-wrapped private addresses global. Order matters where ranges nest.
_FORBIDDEN_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_net4("0.0.0.0/8"), "unspecified ('this network')"),
    (_net4("10.0.0.0/8"), "private"),
    (_net4("100.64.0.0/10"), "carrier-grade NAT (shared address space)"),
    (_LOOPBACK[0], "loopback"),
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
    (_LOOPBACK[1], "loopback"),
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


def address_refusal(address: IPAddress) -> str | None:
    """Why `address` must not be contacted from production (e.g. "private"), or None when it
    may be: only public addresses pass."""
    if isinstance(address, ipaddress.IPv4Address):
        for network, label in _FORBIDDEN_V4:
            if address in network:
                return label
        return None if address.is_global else "not globally routable"
    if address.scope_id is not None:
        return "scoped (zone identifier)"
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


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What the guard may reach besides public addresses over https, chosen at the composition
    root and injected. The default is production's; `local_development()` is what
    OUTBOUND_ALLOW_LOOPBACK=true selects, so webhooks and media can point at local servers."""

    # Exact origins spoken to over plain http (e.g. the storage emulator's blob origin); their
    # addresses are still checked.
    plain_http_origins: tuple[str, ...] = ()
    # 127.0.0.0/8 and ::1 themselves; loopback wrapped in an IPv6 form stays refused.
    loopback: bool = False
    plain_http_to_loopback: bool = False

    def __post_init__(self) -> None:
        for origin in self.plain_http_origins:
            _http_origin(origin)  # a bad origin fails where the policy is made, not at first use

    @classmethod
    def local_development(cls, *plain_http_origins: str) -> AddressPolicy:
        """Loopback addresses as well, spoken to over plain http on any port."""
        return cls(plain_http_origins, loopback=True, plain_http_to_loopback=True)

    def refusal(self, address: IPAddress) -> str | None:
        if self.loopback and any(address in network for network in _LOOPBACK):
            return None
        return address_refusal(address)

    def admits_plain_http(self, host: str, port: int) -> bool:
        if self.plain_http_to_loopback and host in _LOOPBACK_NAMES:
            return True
        return any(_http_origin(origin) == (host, port) for origin in self.plain_http_origins)


def _http_origin(origin: str) -> tuple[str, int]:
    url = httpx.URL(origin)
    if url.scheme != "http" or not url.host or url.userinfo or url.raw_path not in (b"/", b""):
        raise ValueError(f"not a plain http origin: {origin!r}")
    return url.host, 80 if url.port is None else url.port


_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")


def _numeric_host(host: str) -> bool:
    """True when resolvers would read `host` as an IPv4 address in some form (WHATWG "ends in a
    number"): decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`."""
    labels = host.removesuffix(".").split(".")
    return bool(_NUMERIC_LABEL.fullmatch(labels[-1]))


class PinnedTransport(httpx.BaseTransport):
    """Connects a request only to the addresses pinned for its host, never resolving the host
    again; the URL keeps the host name, so `Host`, SNI and certificate checks use it. Every
    socket operation is clamped to one deadline, so a peer dripping bytes cannot outlast it."""

    def __init__(self, deadline: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self.deadline = deadline
        self.pins: dict[str, tuple[str, ...]] = {}
        backend = _PinnedBackend(self.pins, deadline)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=backend, retries=0
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        target = httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(
                httpcore.Request(
                    request.method,
                    target,
                    headers=request.headers.raw,
                    content=request.stream,
                    extensions=request.extensions,
                )
            )
        return httpx.Response(response.status, headers=response.headers, stream=_Body(response))

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise httpx.TransportError(str(exc)) from exc


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, pins: Mapping[str, tuple[str, ...]], deadline: float) -> None:
        self.pins = pins
        self.deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError(f"no checked address for {host}")
        for address in self.pins.get(host, ()):
            budget = _clamp(self.deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, budget, None, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self.deadline)
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


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port if url.port is not None else {"https": 443, "http": 80}.get(url.scheme)
    return url.scheme, url.host.lower(), port


def _media_type(headers: httpx.Headers) -> str | None:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower() or None


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", re.IGNORECASE)


def _probe(response: httpx.Response) -> Probe:
    headers = response.headers
    size = _content_length(headers)
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(headers.get("content-range", ""))
        size = int(match.group(1)) if match else None
    return Probe(response.status_code, _media_type(headers), size, str(response.url))


def _leading_bytes(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` leading bytes of the body; the rest is never read."""
    received = bytearray()
    for chunk in response.iter_raw():
        received += chunk
        if len(received) >= limit:
            break
    return bytes(received[:limit])


class _Call:
    """One outbound operation: its deadline, its client and pinned transport, the hop it is on."""

    def __init__(self, guard: OutboundClient, url: str) -> None:
        self.guard = guard
        self.original = self.current = redact_url(url)
        self.transport = PinnedTransport(time.monotonic() + guard.total_timeout, guard.ssl_context)
        self.client = httpx.Client(
            transport=self.transport, event_hooks={"request": [self.admit]}, trust_env=False
        )

    def refuse(self, reason: Reason, why: str, *, upstream_status: int | None = None) -> NoReturn:
        subject = self.original
        if self.current != self.original:
            subject = f"{self.original} (redirected to {self.current})"
        raise OutboundRefused(
            self.original, reason, f"{subject} was refused: {why}", upstream_status=upstream_status
        )

    def parse(self, raw: str) -> httpx.URL:
        """A URL (the first or a redirect target) as text, before it becomes a request."""
        self.current = redact_url(raw)
        if len(raw) > MAX_URL_LENGTH:
            self.refuse(Reason.URL_TOO_LONG, f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            return httpx.URL(raw)
        except httpx.InvalidURL:
            # The parser rejects forms like `0177.0.0.1` outright; say why if that is the cause.
            authority = raw.partition("://")[2].split("/", 1)[0].rpartition("@")[2]
            if _numeric_host(authority.rsplit(":", 1)[0]):
                self.refuse(Reason.ADDRESS_FORBIDDEN, "the host is an unusual IP address form")
            self.refuse(Reason.INVALID_URL, "it is not a valid URL")

    def admit(self, request: httpx.Request) -> None:
        """The request hook, so every hop passes it: check the URL, resolve its host once, check
        every address against the policy and pin the transport to them."""
        url, policy = request.url, self.guard.policy
        if not url.scheme:
            self.refuse(Reason.INVALID_URL, "it is not an absolute URL")
        port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
        plain_ok = url.scheme == "http" and policy.admits_plain_http(url.host, port)
        if url.scheme != "https" and not plain_ok:
            self.refuse(Reason.SCHEME_NOT_ALLOWED, f"the scheme {url.scheme!r} is not allowed")
        if not url.host:
            self.refuse(Reason.INVALID_URL, "it has no host")
        if url.userinfo:
            self.refuse(Reason.CREDENTIALS_IN_URL, "URLs must not carry credentials")
        if not 0 < port < 65536:
            self.refuse(Reason.INVALID_URL, "the port is out of range")
        host = url.raw_host.decode("ascii")
        if ":" in host:
            try:
                literal: IPAddress = ipaddress.IPv6Address(host.replace("%25", "%"))
            except ValueError:
                self.refuse(Reason.INVALID_URL, "the IPv6 address is malformed")
        elif _numeric_host(host):
            try:
                literal = ipaddress.IPv4Address(host)
            except ValueError:
                self.refuse(Reason.ADDRESS_FORBIDDEN, "the host is an unusual IP address form")
        elif len(host) > _MAX_HOST_LENGTH or not _HOST_NAME.fullmatch(host):
            self.refuse(Reason.INVALID_URL, "the host name is malformed")
        else:
            self.transport.pins[host] = self._resolve_and_check(host, port)
            return
        refusal = policy.refusal(literal)
        if refusal is not None:
            self.refuse(Reason.ADDRESS_FORBIDDEN, f"the address is {refusal}")
        self.transport.pins[host] = (str(literal),)

    def _resolve_and_check(self, host: str, port: int) -> tuple[str, ...]:
        resolved = _resolve(host, port, self.transport.deadline)
        if resolved is None:
            self.refuse(Reason.TIMEOUT, "resolving the host name took too long")
        if isinstance(resolved, OSError) or not resolved:
            self.refuse(Reason.DNS_FAILURE, f"the host name {host} could not be resolved")
        for text in resolved:
            try:
                refusal = self.guard.policy.refusal(ipaddress.ip_address(text))
            except ValueError:
                refusal = "malformed"
            if refusal is not None:
                self.refuse(Reason.ADDRESS_FORBIDDEN, f"{host} resolves to a {refusal} address")
        return tuple(resolved)

    @contextmanager
    def exchange(
        self,
        method: str,
        url: str,
        *,
        follow: bool,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """Send one request, following redirects for GET/HEAD (a redirect's body is never read);
        yields the final response with its body unread. `credentials` (headers) go only to hops
        on the first URL's origin: a redirect to another host never carries them."""
        sent = httpx.Headers(
            {"User-Agent": self.guard.user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        )
        # Raw bytes only (above): decoding on the fly would let a compressed bomb past the cap.
        sent.update(headers or {})
        timeout = {"timeout": {"connect": self.guard.connect_timeout}}
        redirects = 0
        first = _origin(self.parse(url))
        while True:
            target = self.parse(url)
            hop = sent
            if credentials and _origin(target) == first:
                hop = httpx.Headers(sent)
                hop.update(credentials)
            request = httpx.Request(
                method, target, headers=hop, content=content, extensions=timeout
            )
            response = self.client.send(request, stream=True)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or location is None:
                break
            response.close()
            if not follow:
                self.refuse(
                    Reason.REDIRECT_REFUSED,
                    f"the server answered {response.status_code} with a redirect, which is not"
                    " followed here",
                    upstream_status=response.status_code,
                )
            if redirects >= self.guard.max_redirects:
                self.refuse(
                    Reason.TOO_MANY_REDIRECTS, f"more than {self.guard.max_redirects} redirects"
                )
            redirects += 1
            try:
                url = str(request.url.join(location))
            except httpx.InvalidURL:
                self.current = redact_url(location)
                self.refuse(Reason.INVALID_URL, "the redirect target is not a valid URL")
        try:
            yield response
        finally:
            response.close()

    def require_success(self, response: httpx.Response) -> None:
        if not response.is_success:
            self.refuse(
                Reason.HTTP_STATUS,
                f"the server answered HTTP {response.status_code}",
                upstream_status=response.status_code,
            )
        encoding = response.headers.get("content-encoding", "").strip()
        if encoding.lower() not in ("", "identity"):
            self.refuse(
                Reason.UNSUPPORTED_ENCODING,
                f"the server sent Content-Encoding {encoding!r} although identity was requested",
            )


class OutboundClient:
    """SSRF-safe HTTP for URLs we do not control. Stateless between calls and thread-safe; each
    call gets its own deadline (`total_timeout`, covering DNS, redirects and body), pinned
    addresses and connections. What may be reached is the injected `policy` (default: public
    addresses over https only)."""

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        *,
        connect_timeout: float = 3.0,
        total_timeout: float = 15.0,
        max_redirects: int = 3,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0 or max_redirects < 0:
            raise ValueError("timeouts must be positive and max_redirects not negative")
        self.policy = policy or AddressPolicy()
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.ssl_context = ssl_context

    def probe(self, url: str) -> Probe:
        """Status, media type and size of `url` without downloading its body: HEAD, then a
        one-byte ranged GET when HEAD is refused or gives no size."""
        with self._call(url) as call:
            head: Probe | None = None
            with call.exchange("HEAD", url, follow=True) as response:
                if response.status_code not in HEAD_FALLBACK_STATUSES:
                    call.require_success(response)
                    head = _probe(response)
                    if head.size is not None:
                        return head
            ranged = {"Range": "bytes=0-0"}
            with call.exchange("GET", url, follow=True, headers=ranged) as response:
                if head is not None and not response.is_success:
                    return head
                call.require_success(response)
                # Leaving the block closes the connection with the body unread.
                return _probe(response)

    def fetch(
        self, url: str, *, max_bytes: int, credentials: Mapping[str, str] | None = None
    ) -> Fetched:
        """Download `url`, refusing (`too_large`) as soon as more than `max_bytes` would arrive.
        `credentials` are headers for `url`'s own origin only (see `exchange`)."""
        with (
            self._call(url) as call,
            call.exchange("GET", url, follow=True, credentials=credentials) as response,
        ):
            call.require_success(response)
            declared = _content_length(response.headers)
            if declared is not None and declared > max_bytes:
                call.refuse(Reason.TOO_LARGE, f"the content is larger than {max_bytes} bytes")
            content = _leading_bytes(response, max_bytes + 1)
            if len(content) > max_bytes:
                call.refuse(Reason.TOO_LARGE, f"the content is larger than {max_bytes} bytes")
            return Fetched(content, _media_type(response.headers), str(response.url))

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
        sent = httpx.Headers({"Content-Type": "application/json"})
        sent.update(headers or {})
        with (
            self._call(url) as call,
            call.exchange("POST", url, follow=False, headers=sent, content=body) as response,
        ):
            received = _leading_bytes(response, max_response_bytes)
            return Posted(response.status_code, response.headers, received)

    @contextmanager
    def _call(self, url: str) -> Iterator[_Call]:
        call = _Call(self, url)
        try:
            with call.client:
                yield call
        except httpx.TimeoutException:
            call.refuse(Reason.TIMEOUT, f"no complete answer within {self.total_timeout}s")
        except httpx.TransportError as exc:
            if time.monotonic() >= call.transport.deadline:
                call.refuse(Reason.TIMEOUT, f"no complete answer within {self.total_timeout}s")
            why = "the connection failed"
            if any(isinstance(cause, ssl.SSLError) for cause in _causes(exc)):
                why = "the TLS handshake or certificate verification failed"
            call.refuse(Reason.CONNECTION_FAILED, why)


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and what it came from; httpcore re-raises `from None`, so a TLS error
    survives only as context."""
    for _ in range(8):  # a bound, in case a chain loops
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__
