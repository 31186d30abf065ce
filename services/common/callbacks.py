"""Callback URLs: where a tenant may have Tapedeck POST its webhooks.

Refused at submission and re-checked at every delivery (DNS can change between them):
any scheme but https (http only when a setting allows it, for local use), credentials in
the URL, and every host that is or resolves to a loopback, private, link-local,
multicast, reserved or cloud-metadata address (SSRF).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from schemas.codes import Code
from services.common.errors import PermanentError

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class CallbackRefused(PermanentError):
    public = True
    code = Code.INVALID_CALLBACK_URL


# NAT64's well-known prefix: the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _bad_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None and _bad_address(embedded) is not None:
            return _bad_address(embedded)
    for flag, word in (
        (ip.is_loopback, "loopback"),
        (ip.is_private, "private"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_unspecified, "unspecified"),
    ):
        if flag:
            return word
    if str(ip) in ("100.100.100.200", "169.254.169.254", "fd00:ec2::254"):
        return "cloud metadata"
    if not ip.is_global:
        # Shared (100.64.0.0/10), benchmarking and other ranges no public host is in.
        return "non-public"
    return None


def check_url_shape(url: str, *, allow_http: bool) -> tuple[str, int]:
    """The URL's host and port if its shape is acceptable; no DNS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("callback_url is not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise CallbackRefused(f"callback_url must use {' or '.join(schemes)}")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise CallbackRefused("callback_url has no host")
    if host in METADATA_HOSTS or host.endswith(".internal"):
        raise CallbackRefused("callback_url may not point at a metadata service")
    return host, port or (443 if parts.scheme == "https" else 80)


async def check_callback_url(
    url: str, *, allow_http: bool = False, allow_private: bool = False
) -> list[str]:
    """Refuse ``url`` unless every address its host resolves to is public; returns them.

    ``allow_private`` is for tests and local use only (a receiver on loopback)."""
    host, port = check_url_shape(url, allow_http=allow_http)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            raise CallbackRefused(f"callback_url host {host[:64]!r} does not resolve") from None
        addresses = sorted({str(info[4][0]) for info in infos})
    if not allow_private:
        for address in addresses:
            reason = _bad_address(ipaddress.ip_address(address.split("%")[0]))
            if reason is not None:
                raise CallbackRefused(f"callback_url resolves to a {reason} address")
    return addresses
