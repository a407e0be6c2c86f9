"""The client's address behind reverse proxies (KEFU_TRUSTED_PROXIES).

`X-Forwarded-For` is a list each proxy appends the address it saw to. Only proxies the
desk trusts may vouch for it: read from the right, every trusted address is skipped and
the first one that is not trusted is the client. A request that does not come from a
trusted proxy is its own client, whatever its headers say.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Tuple, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(items: Iterable[str]) -> Tuple[Network, ...]:
    """Addresses or CIDRs ("127.0.0.1", "10.0.0.0/8", "::1"); ValueError names a bad one."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or a CIDR") from None
    return tuple(networks)


def _address(raw: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    raw = raw.strip().strip('"')
    if raw.startswith("[") and "]" in raw:  # [v6]:port
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:  # v4:port
        raw = raw.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = parse_networks(trusted)

    def is_trusted(self, raw: Optional[str]) -> bool:
        address = _address(raw or "")
        return address is not None and any(address in net for net in self.trusted)

    def of(self, remote: Optional[str], forwarded_for: Optional[str]) -> str:
        """The client's address: `remote` unless that is a trusted proxy with a
        `forwarded_for` header (then its rightmost untrusted entry)."""
        remote = remote or "unknown"
        if not self.trusted or not forwarded_for or not self.is_trusted(remote):
            return remote
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return remote  # a garbled header: trust nothing in it
            if not any(address in net for net in self.trusted):
                return str(address)
        # Every hop is a trusted proxy: the first one is as close to the client as it gets.
        first = _address(hops[0]) if hops else None
        return str(first) if first is not None else remote
