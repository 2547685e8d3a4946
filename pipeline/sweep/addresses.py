"""Which network addresses the sweep may reach: local-or-public checks on URLs, and an httpx transport that
connects only to globally routable addresses, checked on the very address connected to (DNS rebinding).

Used by ``fetch.py`` (the sweep's HTTP client, whose connections go through ``PublicOnlyTransport`` for URLs a
public page named) and ``sources.py`` (is a page the owner's own?).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any  # httpcore's socket option tuples, passed through untouched
from urllib.parse import urlsplit

import httpcore
import httpx


def is_local_address(url: str, *, resolve: bool) -> bool | None:
    """Is ``url``'s host on the owner's own machine or network (loopback, private, link-local, carrier-grade NAT,
    reserved: anything not globally routable)? True / False, or None when it is a name not looked up
    (``resolve=False``) or that does not resolve. ``resolve=True`` asks the system resolver, the same lookup
    the request itself would make."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    addresses = {_ip(info[4][0]) for info in infos}
    return any(not a.is_global for a in addresses) if addresses else None


def _ip(address: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A socket address's host part as an IP address, without an IPv6 zone ("fe80::1%eth0"); ValueError if none."""
    return ipaddress.ip_address(str(address).split("%", 1)[0])


class LocalAddressError(Exception):
    """Raised by :class:`PublicOnlyBackend` when a host resolves to a local or private address."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}")
        self.host = host
        self.address = address


class PublicOnlyBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to globally routable addresses.

    The host name is looked up here, once, every address it gives is checked, and the socket connects to a checked
    address by number. Written by hand because neither httpx nor httpcore offers an address filter: without it
    the check before a request (``is_local_address``) and the socket's own lookup are two DNS questions, and a
    name that answers a public address to the first and 127.0.0.1 to the second (DNS rebinding) would reach the
    owner's machine. TLS still verifies the certificate against the host name (httpcore takes the server name
    from the request, not from the connected address)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"getaddrinfo: {exc}") from exc
        addresses = list(dict.fromkeys(_ip(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"getaddrinfo: no address for {host}")
        for address in addresses:
            if not address.is_global:
                raise LocalAddressError(host, str(address))
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:  # the next address, as socket.create_connection does
                failure = exc
        assert failure is not None
        raise failure


class PublicOnlyTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`PublicOnlyBackend` (direct connections: with a proxy, the proxy connects)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context)
        # httpx passes no network backend through: the pool it built is replaced by one with httpx's default
        # limits (httpx.DEFAULT_LIMITS), the same TLS context and this backend (tests/test_sweep_fetch.py's
        # rebinding tests fail if a newer httpx stops using ``_pool``).
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, max_connections=100,
                                             max_keepalive_connections=20, keepalive_expiry=5.0,
                                             network_backend=PublicOnlyBackend())


def peer_is_global(resp: httpx.Response) -> bool:
    """Was ``resp`` answered over a connection to a globally routable address (False when unknown)?"""
    stream = resp.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return False
    try:
        return _ip(peer[0]).is_global
    except (ValueError, TypeError, IndexError):
        return False
