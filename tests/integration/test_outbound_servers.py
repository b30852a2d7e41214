"""`shared.outbound` over real TLS: the connection is pinned to the checked address while SNI and
certificate verification still use the URL's host name."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.outbound import AddressPolicy, OutboundClient, OutboundRefused, Reason


@dataclass
class TlsServer:
    port: int
    cert_pem: bytes
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def _certificate(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_server(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[TlsServer]:
    cert_pem, key_pem = _certificate(getattr(request, "param", "media.test"))
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hosts.append(self.headers["Host"])
            body = b"secure png"
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = TlsServer(port=int(httpd.server_address[1]), cert_pem=cert_pem)

    def remember_sni(sock: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        state.server_names.append(server_name)

    context.sni_callback = remember_sni
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def media_test_resolves_to_loopback(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "media.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def _client(server: TlsServer) -> OutboundClient:
    trust = ssl.create_default_context(cadata=server.cert_pem.decode("ascii"))
    return OutboundClient(AddressPolicy(loopback=True), ssl_context=trust, total_timeout=3.0)


def test_https_to_pinned_address_uses_host_name_for_sni_and_certificate(
    tls_server: TlsServer, media_test_resolves_to_loopback: list[str]
) -> None:
    url = f"https://media.test:{tls_server.port}/cat.png"
    fetched = _client(tls_server).fetch(url, max_bytes=100)
    assert (fetched.content, fetched.content_type) == (b"secure png", "image/png")
    assert tls_server.server_names == ["media.test"]
    assert tls_server.hosts == [f"media.test:{tls_server.port}"]
    assert media_test_resolves_to_loopback == ["media.test"]


@pytest.mark.parametrize("tls_server", ["other.test"], indirect=True)
def test_certificate_for_another_name_is_connection_failed(
    tls_server: TlsServer, media_test_resolves_to_loopback: list[str]
) -> None:
    with pytest.raises(OutboundRefused) as caught:
        _client(tls_server).fetch(f"https://media.test:{tls_server.port}/", max_bytes=100)
    assert caught.value.reason is Reason.CONNECTION_FAILED
    assert "certificate" in caught.value.message
    assert tls_server.hosts == []


def test_pinned_ip_is_not_accepted_in_place_of_the_certificate_name(
    tls_server: TlsServer,
) -> None:
    with pytest.raises(OutboundRefused) as caught:
        _client(tls_server).fetch(f"https://127.0.0.1:{tls_server.port}/", max_bytes=100)
    assert caught.value.reason is Reason.CONNECTION_FAILED
    assert tls_server.hosts == []
