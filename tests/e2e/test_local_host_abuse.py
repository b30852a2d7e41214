"""The local host under abuse, over raw sockets: malformed framing is answered 400/413/501 as a
front end would, stalls are answered 408, and a crowd of slow clients holds no more threads than
the concurrency cap while a well-behaved request still gets its answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from shared.app import App
from tools.localhost import LocalHost, ServerLimits, make_server

HEALTH = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"


def address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def exchange(target: tuple[str, int], data: bytes, *, half_close: bool = False) -> bytes:
    """Send `data`, optionally end the sending side, and read the reply until the server closes."""
    with socket.create_connection(target, timeout=15) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply


def status(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), f"no answer: {reply[:80]!r}"
    return int(reply.split(b" ", 2)[1])


def assert_still_serving(target: tuple[str, int]) -> None:
    assert status(exchange(target, HEALTH)) == 200


def post(headers: str, body: bytes = b"") -> bytes:
    return f"POST /api/v1/media HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body


@pytest.fixture
def strict_host(app: App, local_host: LocalHost) -> Iterator[tuple[str, int]]:
    """A host of its own with a small cap, short timeouts and a 1 KB body limit."""
    limits = ServerLimits(
        max_concurrent_requests=50, idle_seconds=0.5, read_seconds=2.0, max_body_bytes=1024
    )
    server = make_server(local_host, 0, limits=limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Content-Length: abc\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: +5\r\n", 400),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        ("Content-Length: 5, 6\r\n", 400),
        ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
        ("Transfer-Encoding: gzip\r\n", 400),
        ("Transfer-Encoding: gzip, chunked\r\n", 501),
        ("Content-Length: 104857601\r\n", 413),
    ],
)
def test_malformed_framing_headers_are_answered_and_the_host_keeps_serving(
    base_url: str, headers: str, expected: int
) -> None:
    target = address(base_url)
    assert status(exchange(target, post(headers, b"hello"), half_close=True)) == expected
    assert_still_serving(target)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # not hex
        b"-1\r\nhello\r\n0\r\n\r\n",  # negative
        b"5\r\nhelloXX0\r\n\r\n",  # chunk longer than its size
        b"5\r\nhel",  # cut short
    ],
)
def test_bad_chunked_body_is_400_and_the_host_keeps_serving(base_url: str, body: bytes) -> None:
    target = address(base_url)
    reply = exchange(target, post("Transfer-Encoding: chunked\r\n", body), half_close=True)
    assert status(reply) == 400
    assert_still_serving(target)


def test_body_shorter_than_its_content_length_is_400(base_url: str) -> None:
    target = address(base_url)
    reply = exchange(target, post("Content-Length: 10\r\n", b"abc"), half_close=True)
    assert status(reply) == 400
    assert_still_serving(target)


def test_well_formed_chunked_body_reaches_the_function(base_url: str) -> None:
    body = b"2\r\n{}\r\n0\r\n\r\n"
    reply = exchange(address(base_url), post("Transfer-Encoding: chunked\r\n", body))
    assert status(reply) == 401  # the upload function ran: it wants credentials


def test_chunked_body_over_the_limit_is_413(strict_host: tuple[str, int]) -> None:
    body = b"400\r\n" + b"a" * 1024 + b"\r\n1\r\nb\r\n0\r\n\r\n"
    reply = exchange(strict_host, post("Transfer-Encoding: chunked\r\n", body))
    assert status(reply) == 413
    assert_still_serving(strict_host)


def test_content_length_over_the_limit_is_413_before_the_body_is_read(
    strict_host: tuple[str, int],
) -> None:
    assert status(exchange(strict_host, post("Content-Length: 1025\r\n"))) == 413


def test_headers_that_stall_are_408(strict_host: tuple[str, int]) -> None:
    started = time.monotonic()
    reply = exchange(strict_host, b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    assert status(reply) == 408
    assert time.monotonic() - started < 5
    assert_still_serving(strict_host)


def test_body_that_stalls_is_408(strict_host: tuple[str, int]) -> None:
    reply = exchange(strict_host, post("Content-Length: 10\r\n", b"abc"))
    assert status(reply) == 408
    assert_still_serving(strict_host)


def test_body_dribbled_slower_than_the_read_deadline_is_408(strict_host: tuple[str, int]) -> None:
    started = time.monotonic()
    with socket.create_connection(strict_host, timeout=15) as conn:
        conn.sendall(post("Content-Length: 100\r\n"))
        reply = b""
        for _ in range(100):  # a byte every 0.2 s: never idle for 0.5 s, done only after 20 s
            try:
                conn.sendall(b"a")
            except OSError:
                break
            time.sleep(0.2)
            conn.setblocking(False)
            try:
                reply += conn.recv(65536)
            except BlockingIOError:
                pass
            finally:
                conn.setblocking(True)
            if reply:
                break
    assert status(reply) == 408
    assert time.monotonic() - started < 5


def test_five_hundred_slow_clients_hold_at_most_the_cap_in_threads(
    strict_host: tuple[str, int],
) -> None:
    baseline = threading.active_count()
    slow = []
    for _ in range(500):
        conn = socket.create_connection(strict_host, timeout=30)
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        slow.append(conn)
    try:
        peak = baseline
        for _ in range(10):
            peak = max(peak, threading.active_count())
            time.sleep(0.1)
        answered = requests.get(f"http://127.0.0.1:{strict_host[1]}/api/health", timeout=60)
        assert answered.status_code == 200
        assert peak - baseline <= 50
        assert status(slow[0].recv(65536)) == 408
        assert status(slow[-1].recv(65536)) == 408
    finally:
        for conn in slow:
            conn.close()
