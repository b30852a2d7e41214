"""Real HTTP through the local host."""

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from tests.conftest import TenantAccount


def test_health_over_http(base_url: str) -> None:
    response = requests.get(f"{base_url}/api/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_route_is_404(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/nope", timeout=10).status_code == 404


def test_wrong_credentials_get_401_with_challenge(base_url: str, account: TenantAccount) -> None:
    response = requests.post(
        f"{base_url}/api/v1/messages", auth=(account.email, "wrong"), json={}, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_body_over_azures_100_mb_limit_is_413_before_it_is_read(base_url: str) -> None:
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/media HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857601\r\n\r\n"
        )
        reply = conn.recv(1024)
    assert reply.startswith(b"HTTP/1.1 413")


def test_concurrent_requests_are_served(base_url: str) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(
            pool.map(
                lambda _: requests.get(f"{base_url}/api/health", timeout=20).status_code, range(32)
            )
        )
    assert codes == [200] * 32
