"""Where sources may reach: public addresses, and the hosts an admin lists in
POSTRAG_SOURCE_HOSTS; never, otherwise, loopback, private, link-local or other non-global
addresses (a source's URL is the user's to choose: it must not read a cloud's metadata service,
the database or an internal admin page into a collection). Atlassian tokens go only to
Atlassian's cloud hosts and the listed ones.

MCP servers registered for chats are held to the same rules with a list of their own,
POSTRAG_MCP_HOSTS (app/services/mcp_servers.py): allowing an internal MCP server does not let
every user's web source read it.

A URL's host is resolved and every address checked before the request, and the address the
connection reached is checked again before the answer is read, so a name that resolves
differently the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ATLASSIAN_HOSTS = ("api.atlassian.com", "mcp.atlassian.com")  # the API gateway, the MCP server
ATLASSIAN_DOMAIN = ".atlassian.net"


class _Answer(Protocol):
    """An HTTP answer of httpx or httpx2 (the MCP SDK's), whose extensions name its stream."""

    @property
    def extensions(self) -> Mapping[str, Any]: ...


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Reach:
    names: frozenset[str] = frozenset()  # host names allowed whatever they resolve to
    networks: tuple[IPNetwork, ...] = ()  # addresses allowed although not global
    setting: str = "POSTRAG_SOURCE_HOSTS"  # where an admin lists them (named in refusals)

    @classmethod
    def of(cls, entries: Iterable[str], setting: str = "POSTRAG_SOURCE_HOSTS") -> Reach:
        """From the entries of `setting`: host names, addresses or networks (CIDR)."""
        names, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks), setting)

    @property
    def _hint(self) -> str:
        return f"an admin may allow it in {self.setting}"

    def address_allowed(self, text: str) -> bool:
        address = _address(text)
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast

    def literal_refusal(self, url: str) -> str | None:
        """What can be told without resolving: a non-public address written in the URL, or a
        name of this machine (localhost)."""
        host = httpx.URL(url).host.lower().rstrip(".")
        if host in self.names:
            return None
        if host == "localhost" or host.endswith(".localhost"):
            return f"{host} is this machine; {self._hint}"
        try:
            allowed = self.address_allowed(host)
        except ValueError:
            return None  # a name: checked when the source is read
        return None if allowed else f"{host} is a non-public address; {self._hint}"

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be reached (its host resolves to an address that is not public
        and not listed), or None."""
        parsed = httpx.URL(url)
        host = parsed.host.lower().rstrip(".")
        if host in self.names:
            return None
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return f"{host} is not a host name that resolves"
        for *_, where in found:
            if not self.address_allowed(str(where[0])):
                return f"{host} is a non-public address ({where[0]}); {self._hint}"
        return None

    def reached_refusal(self, url: str, response: _Answer) -> str | None:
        """Why the address the connection reached for `url` is refused, or None."""
        if httpx.URL(url).host.lower().rstrip(".") in self.names:
            return None
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if peer is None or self.address_allowed(str(peer[0])):
            return None
        return f"{httpx.URL(url).host} answered from a non-public address ({peer[0]}); {self._hint}"

    def token_refusal(self, url: str) -> str | None:
        """Why an Atlassian token may not go to `url`: only Atlassian's cloud (the API
        gateway, its MCP server, a site under .atlassian.net) and the listed hosts receive one."""
        host = httpx.URL(url).host.lower().rstrip(".")
        if host in ATLASSIAN_HOSTS or host.endswith(ATLASSIAN_DOMAIN) or host in self.names:
            return None
        try:
            if any(_address(host) in network for network in self.networks):
                return None
        except ValueError:
            pass
        return (
            f"{host} is not Atlassian's cloud (api.atlassian.com, <site>.atlassian.net):"
            f" the Atlassian token is not sent there; {self._hint} (Data Center, a proxy)"
        )
