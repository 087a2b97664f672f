"""SSRF matrix and behaviour of apps/lib/http.py (no database)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from datetime import UTC, datetime

import pytest

from apps.lib import http
from tests.alerts.fakes import fake_server

PUBLIC_IP = ipaddress.ip_address("93.184.216.34")

BLOCKED_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/admin",
    "http://10.0.0.1/",
    "http://10.255.255.254/",
    "http://172.16.0.1/",
    "http://172.31.255.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",  # CGNAT
    "http://0.0.0.0/",
    "http://0/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.0.192/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",  # IPv4-mapped, hex
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",  # octal
    "http://017700000001/",
    "http://127.1/",  # short form
    "http://10.1/",
    "http://3232235777/",  # 192.168.1.1
    "http://0xa9fea9fe/",  # 169.254.169.254
    "http://trusted.example@127.0.0.1/",  # userinfo trick
    "http://trusted.example:pw@10.0.0.1/",
    "http://127.0.0.1#@trusted.example/",  # fragment hides the real host
    "http://127.0.0.1:80\\@trusted.example/",  # backslash parser confusion
    "http://trusted.example\\@127.0.0.1/",
    "http://127.0.0.1 /",
    "http://127.0.0.1\r\nX-Injected: 1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/",
    "//127.0.0.1/",
    "http:///path-only",
    "http://256.0.0.1/",  # numeric but invalid: refused, not resolved
]


@pytest.fixture(autouse=True)
def _no_private(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def no_dns(monkeypatch):
    """Any DNS lookup fails the test: IP literals must never be resolved."""

    def refuse(host, port):
        raise AssertionError(f"unexpected DNS lookup of {host}")

    monkeypatch.setattr(http, "resolve_host", refuse)


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_ssrf_matrix_refuses(url, no_dns):
    with pytest.raises(http.UnsafeURLError):
        http.request("POST", url, body=b"{}", timeout=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("example.com", None),
        ("0xcafe.example", None),
    ],
)
def test_ip_spellings_are_read_like_inet_aton(text, expected):
    parsed = http.parse_ip_literal(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"],
)
def test_public_addresses_are_allowed(address):
    assert http.address_block_reason(ipaddress.ip_address(address)) is None


def test_every_resolved_address_is_checked(monkeypatch):
    """A name with one public and one private A record is refused (no "first record wins")."""
    monkeypatch.setattr(
        http, "resolve_host", lambda host, port: [PUBLIC_IP, ipaddress.ip_address("10.0.0.5")]
    )
    with pytest.raises(http.UnsafeURLError, match=r"10\.0\.0\.5"):
        http.request("POST", "https://hooks.example.com/x", body=b"{}")


def test_name_resolving_to_metadata_is_refused(monkeypatch):
    monkeypatch.setattr(
        http, "resolve_host", lambda host, port: [ipaddress.ip_address("169.254.169.254")]
    )
    with pytest.raises(http.UnsafeURLError):
        http.request("GET", "http://metadata.example/")


def test_localhost_name_is_refused():
    with pytest.raises(http.UnsafeURLError):
        http.request("GET", "http://localhost/", timeout=1)


def test_connects_to_the_checked_address_not_a_second_lookup(monkeypatch, settings):
    """DNS rebinding: the host is resolved once and the socket opened on that address, with the
    name kept in the Host header."""
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    lookups = []

    def resolve(host, port):
        lookups.append(host)
        # A rebinding server would answer something else on the second lookup.
        return [ipaddress.ip_address("127.0.0.1")] if len(lookups) == 1 else [PUBLIC_IP]

    monkeypatch.setattr(http, "resolve_host", resolve)
    with fake_server() as server:
        response = http.request("POST", f"http://rebind.example:{server.port}/hook", body=b"x")
    assert response.status == 200
    assert lookups == ["rebind.example"]
    assert server.requests[0].headers["Host"] == f"rebind.example:{server.port}"
    assert server.requests[0].path == "/hook"


def _public_first_hop(monkeypatch, server_port):
    """Make public.example resolve to a public address whose connection lands on our local
    server (patching the resolver and the connect boundary only)."""
    monkeypatch.setattr(http, "resolve_host", lambda host, port: [PUBLIC_IP])
    real_connect = http.connect_socket

    def connect(ip, port, timeout):
        if ip == PUBLIC_IP:
            return real_connect(ipaddress.ip_address("127.0.0.1"), server_port, timeout)
        return real_connect(ip, port, timeout)

    monkeypatch.setattr(http, "connect_socket", connect)


def test_redirect_to_loopback_is_refused_when_following(monkeypatch):
    with fake_server() as server:
        target = f"http://127.0.0.1:{server.port}/internal-secret"
        server.answer((302, "", {"Location": target}))
        _public_first_hop(monkeypatch, server.port)
        with pytest.raises(http.UnsafeURLError, match=r"127\.0\.0\.1"):
            http.request("GET", f"http://public.example:{server.port}/start", follow_redirects=True)
    assert [r.path for r in server.requests] == ["/start"]


def test_redirect_is_not_followed_by_default(monkeypatch):
    with fake_server() as server:
        server.answer((307, "", {"Location": f"http://127.0.0.1:{server.port}/internal"}))
        _public_first_hop(monkeypatch, server.port)
        response = http.post_json(f"http://public.example:{server.port}/hook", b"{}")
    assert response.status == 307
    assert [r.path for r in server.requests] == ["/hook"]


def test_redirect_to_a_name_resolving_privately_is_refused(monkeypatch):
    with fake_server() as server:
        server.answer((301, "", {"Location": "http://internal.example/admin"}))
        _public_first_hop(monkeypatch, server.port)
        monkeypatch.setattr(
            http,
            "resolve_host",
            lambda host, port: (
                [PUBLIC_IP] if host == "public.example" else [ipaddress.ip_address("10.1.2.3")]
            ),
        )
        with pytest.raises(http.UnsafeURLError):
            http.request("GET", f"http://public.example:{server.port}/", follow_redirects=True)


def test_redirects_are_followed_and_rechecked_when_allowed(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    with fake_server() as server:
        server.answer((302, "", {"Location": "/final"}))
        response = http.request("GET", server.url("/start"), follow_redirects=True)
    assert response.status == 200
    assert response.redirects == (server.url("/start"),)
    assert [r.path for r in server.requests] == ["/start", "/final"]


def test_allow_private_reaches_a_local_server(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    with fake_server(default=(200, "ok", {"X-Test": "1"})) as server:
        response = http.post_json(server.url("/hook"), b'{"a": 1}', headers={"X-Sig": "v1=abc"})
    assert (response.status, response.text, response.headers["x-test"]) == (200, "ok", "1")
    recorded = server.requests[0]
    assert recorded.body == b'{"a": 1}'
    assert recorded.headers["Content-Type"] == "application/json"
    assert recorded.headers["X-Sig"] == "v1=abc"


def test_allow_private_still_refuses_bad_schemes_and_userinfo(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    for url in ("file:///etc/passwd", "http://a@127.0.0.1/"):
        with pytest.raises(http.UnsafeURLError):
            http.request("GET", url)


def test_a_silent_server_times_out(settings):
    """The read timeout applies: a server that accepts and never answers does not hang us."""
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        with pytest.raises(http.HttpRequestError) as info:
            http.request("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.3)
        assert info.value.request_sent is True
    finally:
        for conn, _addr in accepted:
            conn.close()
        listener.close()


def test_connection_refused_is_a_transient_error_before_sending(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(http.HttpRequestError) as info:
        http.request("GET", f"http://127.0.0.1:{port}/", timeout=1)
    assert info.value.request_sent is False


def test_response_body_is_capped(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    with fake_server(default=(200, "x" * (http.MAX_RESPONSE_BYTES * 2), {})) as server:
        response = http.request("GET", server.url())
    assert len(response.body) == http.MAX_RESPONSE_BYTES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Sun, 22 Nov 2026 08:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 07:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
    assert http.parse_retry_after(value, now=now) == expected
