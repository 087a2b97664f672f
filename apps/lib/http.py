"""Outbound HTTP to user-supplied URLs (alert webhooks), safe against SSRF, always with timeouts.

Webhook SSRF has been bypassed in mature products through DNS rebinding, redirects, IPv6-mapped
and decimal/hex IP spellings and userinfo tricks. The defences here, in order:

1. Only ``http``/``https``; no userinfo (``http://good@127.0.0.1/``), no backslashes, spaces or
   control characters, so no two URL parsers can disagree about the host.
2. The host is resolved once (:func:`resolve_host`); IP literals in any spelling that
   ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) are parsed as
   such. EVERY resolved address is checked; one forbidden address refuses the whole request.
3. The connection goes to the checked address itself (the socket is opened on the IP; the Host
   header and TLS SNI/certificate check keep the name), so a second DNS answer cannot rebind it.
4. Redirects are not followed unless asked; when they are, every hop goes through 1-3 again.
5. Connect and read timeouts on every socket operation, plus a total deadline for the body.

Forbidden: private, loopback, link-local, multicast, reserved, unspecified, CGNAT (100.64/10),
benchmarking, documentation and cloud metadata addresses, and IPv6 forms that embed a forbidden
IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4, Teredo,
NAT64). ``settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE`` lifts the address check (not the URL
checks) for self-hosted setups that post to an internal service, and for tests.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_RESPONSE_BYTES = 64 * 1024
MAX_REDIRECTS = 3
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Driftline-Webhook/1.0 (+https://github.com/driftline)"

# Networks refused beyond what ``ipaddress`` flags as non-global (listed so the intent is
# explicit and does not hang on the Python version's idea of "global").
_BLOCKED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (incl. 192.0.0.192 Oracle metadata)
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "fc00::/7",  # unique local, incl. AWS metadata fd00:ec2::254
        "fe80::/10",
        "fec0::/10",  # deprecated site-local
        "ff00::/8",
        "100::/64",  # discard-only
        "2001:db8::/32",
    )
)
_NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Characters that make URL parsers disagree or smuggle a second request.
_BAD_URL_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")
# A host made only of digits, dots and hex prefixes is an IP literal in some spelling.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


class HttpError(Exception):
    """Base of the errors raised here."""


class UnsafeURLError(HttpError):
    """The URL is refused before anything is sent (bad scheme, forbidden address...).

    Permanent: retrying cannot help.
    """


class HttpRequestError(HttpError):
    """A network failure: DNS, connect, TLS, timeout or a broken response.

    ``request_sent`` tells whether the request may have reached the server (the failure came
    after the request was written), which matters to at-most-once senders.
    """

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    url: str
    redirects: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Target:
    """A validated URL with the addresses it may be connected to."""

    scheme: str
    host: str  # as it goes in the Host header / SNI (IDNA-encoded, no brackets)
    port: int
    path: str  # path + query, never empty
    addresses: tuple[IPAddress, ...]


# --- address policy ------------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms that route to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = ip.packed
    if packed[:12] == bytes(12) and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(packed[12:])
    if any(ip in net for net in _NAT64_NETWORKS):
        return ipaddress.IPv4Address(packed[12:])
    return None


def address_block_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached from the server, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = address_block_reason(inner)
            if reason is not None:
                return f"IPv6 form of a {reason} address"
    for net in _BLOCKED_NETWORKS:
        if ip.version == net.version and ip in net:
            return f"non-public ({net})"
    checks = (
        ("private", ip.is_private),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    )
    for name, flagged in checks:
        if flagged:
            return name
    if not ip.is_global:
        return "non-global"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one in any spelling, else None (a name).

    ``inet_aton`` is what the C library (and so most HTTP clients) uses, so decimal
    (``2130706433``), hex (``0x7f000001``), octal (``0177.0.0.1``) and short (``127.1``)
    spellings are read the way a connect would read them.

    Raises :class:`UnsafeURLError` for a numeric host that is not a valid address.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare.rstrip(".")))
        except OSError as exc:
            raise UnsafeURLError(f"invalid numeric host {host!r}") from exc
    return None


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the one DNS lookup of a request).

    Tests replace this function to make a name resolve to a chosen address.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HttpRequestError(f"cannot resolve {host!r}: {exc}", request_sent=False) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _allow_private(allow_private: bool | None) -> bool:
    if allow_private is not None:
        return allow_private
    return bool(getattr(settings, "DRIFTLINE_WEBHOOK_ALLOW_PRIVATE", False))


def check_url(url: str) -> tuple[str, str, int, str]:
    """Syntax checks only (no DNS): ``(scheme, host, port, path)`` or :class:`UnsafeURLError`.

    Used on input (channel creation) to refuse bad URLs early, and on every request.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise UnsafeURLError("URL must be a non-empty string of at most 2048 characters")
    if _BAD_URL_CHARS.search(url):
        raise UnsafeURLError("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError("only http and https URLs are allowed")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        # Userinfo is where "http://trusted.example@127.0.0.1/" hides the real host.
        raise UnsafeURLError("URLs with credentials (user@host) are not allowed")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURLError("URL has no host")
    if parse_ip_literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UnsafeURLError(f"invalid host name {host!r}") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or DEFAULT_PORTS[scheme], path


def resolve_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Validate ``url``, resolve its host once and check every address.

    Raises :class:`UnsafeURLError` (permanent) or :class:`HttpRequestError` (DNS failure).
    """
    scheme, host, port, path = check_url(url)
    literal = parse_ip_literal(host)
    addresses = [literal] if literal is not None else resolve_host(host, port)
    if not addresses:
        raise HttpRequestError(f"{host!r} resolves to no address", request_sent=False)
    if not _allow_private(allow_private):
        for ip in addresses:
            reason = address_block_reason(ip)
            if reason is not None:
                raise UnsafeURLError(f"{host} resolves to {ip}, a {reason} address")
    header_host = str(literal) if literal is not None else host
    return Target(scheme, header_host, port, path, tuple(addresses))


# --- connections pinned to a checked address ----------------------------------------------------


def connect_socket(ip: IPAddress, port: int, timeout: float) -> socket.socket:
    """Open a TCP connection to an already-checked address (never to a name)."""
    sock = socket.create_connection((str(ip), port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``ip`` while sending ``host`` in the Host header."""

    def __init__(self, host: str, port: int, *, ip: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned_ip = ip

    def connect(self) -> None:
        self.sock = connect_socket(self._pinned_ip, self.port, float(self.timeout or 10.0))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to ``ip``; TLS still uses ``host`` for SNI and certificate verification."""

    def __init__(self, host: str, port: int, *, ip: IPAddress, timeout: float) -> None:
        self._ssl_context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._ssl_context)
        self._pinned_ip = ip

    def connect(self) -> None:
        sock = connect_socket(self._pinned_ip, self.port, float(self.timeout or 10.0))
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != DEFAULT_PORTS[target.scheme]:
        host = f"{host}:{target.port}"
    return host


def _send_once(
    target: Target,
    method: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    deadline: float,
) -> tuple[int, dict[str, str], bytes]:
    conn_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    last_error: OSError | None = None
    for ip in target.addresses:
        conn = conn_class(target.host, target.port, ip=ip, timeout=timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:  # try the next checked address
                last_error = exc
                continue
            request_sent = False
            try:
                all_headers = {"Host": _host_header(target), "User-Agent": USER_AGENT}
                all_headers.update(headers)
                if body is not None or method in ("POST", "PUT", "PATCH"):
                    all_headers["Content-Length"] = str(len(body or b""))
                conn.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
                for name, value in all_headers.items():
                    conn.putheader(name, value)
                conn.endheaders(body)
                request_sent = True
                response = conn.getresponse()
                chunks: list[bytes] = []
                size = 0
                while size < MAX_RESPONSE_BYTES:
                    if time.monotonic() > deadline:
                        raise TimeoutError("response body exceeded the total deadline")
                    chunk = response.read(min(8192, MAX_RESPONSE_BYTES - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                response_headers = {k.lower(): v for k, v in response.getheaders()}
                return response.status, response_headers, b"".join(chunks)
            except (OSError, http.client.HTTPException) as exc:
                kind = "timed out" if isinstance(exc, TimeoutError) else "failed"
                raise HttpRequestError(
                    f"request to {target.host} {kind}: {exc}", request_sent=request_sent
                ) from exc
        finally:
            conn.close()
    raise HttpRequestError(
        f"cannot connect to {target.host}:{target.port}: {last_error}", request_sent=False
    )


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    allow_private: bool | None = None,
    follow_redirects: bool = False,
    max_redirects: int = MAX_REDIRECTS,
) -> HttpResponse:
    """Send one HTTP request to a user-supplied URL, SSRF-checked, with timeouts.

    ``timeout`` (default ``settings.DRIFTLINE_HTTP_TIMEOUT_S``) bounds each socket operation;
    reading the response is also bounded by twice that in total. The response body is cut at
    64 KiB. Redirects are returned as responses unless ``follow_redirects`` is set, in which
    case each hop is validated and resolved again (a public host may redirect to 127.0.0.1).

    Raises :class:`UnsafeURLError` or :class:`HttpRequestError`; HTTP error statuses are
    returned, not raised.
    """
    if timeout is None:
        timeout = float(getattr(settings, "DRIFTLINE_HTTP_TIMEOUT_S", 10.0))
    request_headers = dict(headers or {})
    hops: list[str] = []
    current_url, current_method, current_body = url, method.upper(), body
    while True:
        target = resolve_target(current_url, allow_private=allow_private)
        deadline = time.monotonic() + 2 * timeout
        status, response_headers, data = _send_once(
            target, current_method, current_body, request_headers, timeout, deadline
        )
        location = response_headers.get("location")
        if not (follow_redirects and status in REDIRECT_CODES and location):
            return HttpResponse(status, response_headers, data, current_url, tuple(hops))
        if len(hops) >= max_redirects:
            raise UnsafeURLError(f"more than {max_redirects} redirects")
        hops.append(current_url)
        current_url = urljoin(current_url, location)
        if status == 303 or (status in (301, 302) and current_method == "POST"):
            current_method, current_body = "GET", None
            request_headers.pop("Content-Type", None)


def post_json(
    url: str,
    payload: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    allow_private: bool | None = None,
) -> HttpResponse:
    """POST a JSON body (already serialized) without following redirects."""
    all_headers: dict[str, Any] = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return request(
        "POST", url, body=payload, headers=all_headers, timeout=timeout, allow_private=allow_private
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN guard
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    if now is None:
        now = datetime.now(tz=when.tzinfo)
    return max((when - now).total_seconds(), 0.0)
