"""Which addresses Kate's servers may fetch (server-side request forgery).

Admins type the URLs Kate fetches, and Kate then shows what it read, so a URL is also a way to make Kate's
servers reach a machine the admin cannot: a cloud metadata service handing out credentials
(169.254.169.254), a router's admin page. Kate is an intranet tool, so loopback and private ranges stay
allowed by default (that is where intranets live); what is refused by default is what an intranet page is
never served from: link-local addresses (where every cloud's metadata service sits), the metadata host
names, "this network", multicast and broadcast.

The policy is checked on the addresses the host resolves to (every one of them, IPv4 and IPv6) and again
on every redirect hop, so neither a DNS name pointing at 169.254.169.254 nor a redirect to it gets through.
Settings: `KATE_FETCH_ALLOW` and `KATE_FETCH_DENY`, comma-separated host names ("hr.example.com",
"*.example.com") and networks ("10.0.0.0/8", "192.168.1.7"). An explicit deny beats an explicit allow,
which beats the built-in deny list; once anything is allowed explicitly, only what is allowed is fetched.
What remains (said in docs/deploy.md): a DNS answer that changes between the check and the connection
(rebinding) is not pinned.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BUILTIN_DENY_NETWORKS: tuple[str, ...] = (
    "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata at 169.254.169.254
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "0.0.0.0/8",  # "this network" (0.0.0.0 reaches local services on some systems)
    "::/128",
    "224.0.0.0/4",  # multicast
    "ff00::/8",
    "255.255.255.255/32",
)
BUILTIN_DENY_HOSTS: tuple[str, ...] = ("metadata.google.internal", "metadata", "instance-data")

_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kate-dns")


class PolicyRefused(ValueError):
    """The fetching policy refuses this URL; the message says which rule, in an admin's words."""


def split_hosts_and_networks(spec: str) -> tuple[tuple[str, ...], tuple[IPNetwork, ...]]:
    """A comma-separated list of host names and networks (fetching policy, trusted proxies)."""
    hosts, networks = [], []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.append(item.lower().rstrip("."))
    return tuple(hosts), tuple(networks)


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in patterns)


def address_in(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


@dataclass(frozen=True)
class FetchPolicy:
    allow_hosts: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()
    deny_hosts: tuple[str, ...] = ()
    deny_networks: tuple[IPNetwork, ...] = ()
    builtin_hosts: tuple[str, ...] = BUILTIN_DENY_HOSTS
    builtin_networks: tuple[IPNetwork, ...] = field(
        default_factory=lambda: tuple(ipaddress.ip_network(n) for n in BUILTIN_DENY_NETWORKS)
    )

    @classmethod
    def from_settings(cls, allow: str = "", deny: str = "") -> FetchPolicy:
        """From the comma-separated `KATE_FETCH_ALLOW` / `KATE_FETCH_DENY` values."""
        allow_hosts, allow_networks = split_hosts_and_networks(allow)
        deny_hosts, deny_networks = split_hosts_and_networks(deny)
        return cls(allow_hosts, allow_networks, deny_hosts, deny_networks)

    @property
    def restrictive(self) -> bool:
        """Something is allowed explicitly: then nothing else is."""
        return bool(self.allow_hosts or self.allow_networks)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raise `PolicyRefused` when `host`, resolved to `address`, may not be fetched."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        if _host_matches(host, self.deny_hosts) or address_in(address, self.deny_networks):
            raise PolicyRefused(f"{host} ({address}) is refused by KATE_FETCH_DENY")
        if _host_matches(host, self.allow_hosts) or address_in(address, self.allow_networks):
            return
        if _host_matches(host, self.builtin_hosts) or address_in(address, self.builtin_networks):
            raise PolicyRefused(
                f"{host} ({address}) is a link-local, metadata or broadcast address, which Kate never "
                "fetches unless KATE_FETCH_ALLOW names it"
            )
        if self.restrictive:
            raise PolicyRefused(f"{host} ({address}) is not in KATE_FETCH_ALLOW")

    def check_host(self, host: str) -> None:
        """The rules on the name alone, before any DNS query (a denied name is never even resolved)."""
        if _host_matches(host, self.deny_hosts):
            raise PolicyRefused(f"{host} is refused by KATE_FETCH_DENY")
        if _host_matches(host, self.builtin_hosts) and not _host_matches(host, self.allow_hosts):
            raise PolicyRefused(
                f"{host} is a cloud metadata service, which Kate never fetches unless KATE_FETCH_ALLOW "
                "names it"
            )

    def check(self, host: str, port: int, timeout: float = 3.0) -> None:
        """Check the name, then resolve it (bounded by `timeout`) and check every address it resolves to."""
        host = host.lower().rstrip(".").strip("[]")
        self.check_host(host)
        for address in resolve(host, port, timeout):
            self.check_address(host, address)


def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address `host` resolves to; an IP literal is itself. `PolicyRefused` when it cannot be
    resolved in time (then it cannot be checked, so it is not fetched)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        raise PolicyRefused(f"{host}: no DNS answer within {timeout:g} s") from None
    except OSError as exc:
        raise PolicyRefused(f"{host}: the name does not resolve ({exc.strerror or exc})") from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise PolicyRefused(f"{host}: the name resolves to no IP address")
    return addresses


DEFAULT_POLICY = FetchPolicy()
