"""No server-side request forgery: webhook URLs must reach the public internet.

A URL is checked twice: when an admin registers it (``check_url``: scheme, host, and every
address its name resolves to), and at each delivery, where the connection goes to the very
address that was checked (``resolve``, then ``transport.post`` connects to that IP), so a
name that resolves to a public address at check time and to 127.0.0.1 a moment later (DNS
rebinding) reaches nothing inside. Loopback, private, link-local, multicast, reserved and
unspecified addresses are refused, except within the networks of
``PORTAL_WEBHOOK_ALLOWED_NETWORKS`` (tests and a local demo receiver).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

URL_MAX = 2000

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """Why a URL may not be called: ``reason`` is one of the class constants."""

    SCHEME = "scheme"  # not http(s), or http outside the allowed networks
    FORM = "form"  # no host, credentials in it, too long
    UNRESOLVED = "unresolved"
    INTERNAL = "internal"  # resolves to an address inside

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, for the Host header and TLS
    port: int
    path: str  # path and query
    address: str  # the checked IP to connect to


@cache
def _networks(
    allowed: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allowed)


def is_internal(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _allowed(address: Address, allowed: Sequence[str]) -> bool:
    return any(address in network for network in _networks(tuple(allowed)))


def split(url: str, allowed: Sequence[str] = ()) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a well-formed http(s) URL, else ``UnsafeUrl``."""
    if len(url) > URL_MAX or any(c.isspace() for c in url):
        raise UnsafeUrl(UnsafeUrl.FORM)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl(UnsafeUrl.FORM) from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl(UnsafeUrl.SCHEME)
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise UnsafeUrl(UnsafeUrl.FORM)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str, allowed: Sequence[str] = ()) -> Target:
    """The URL's parts and the one address to connect to; ``UnsafeUrl`` if any address the
    name resolves to is internal and outside ``allowed`` networks. Plain http is accepted
    only towards an allowed network (a local test receiver)."""
    scheme, host, port, path = split(url, allowed)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(UnsafeUrl.UNRESOLVED) from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(UnsafeUrl.UNRESOLVED)
    for address in addresses:
        if is_internal(address) and not _allowed(address, allowed):
            raise UnsafeUrl(UnsafeUrl.INTERNAL)
    if scheme == "http" and not all(_allowed(a, allowed) for a in addresses):
        raise UnsafeUrl(UnsafeUrl.SCHEME)
    return Target(scheme, host, port, path, str(addresses[0]))


def check_url(url: str, allowed: Sequence[str] = ()) -> str:
    """The URL, stripped, if it may be registered; raises ``UnsafeUrl``."""
    url = url.strip()
    resolve(url, allowed)
    return url
