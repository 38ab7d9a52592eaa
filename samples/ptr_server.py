"""A tiny name server for the demo: answers the sample capture's reverse lookups on a loopback port.

The peers of samples/sample.pcap live in documentation ranges, which no
real name server knows; this one gives them the shapes of names a real
host's peers have (a cloud provider's, a CDN's, ISPs' dynamic ranges, one
NXDOMAIN with its SOA), so the demo shows names and the domain report.
Run: python3 samples/ptr_server.py [PORT]   (0, the default: a free port;
the port is printed on the first line, then it serves until killed).
"""

from __future__ import annotations

import ipaddress
import socket
import sys

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

#: address -> PTR names (all in reserved example domains).
NAMES: dict[str, list[str]] = {
    **{f"192.0.2.{i}": [f"ec2-192-0-2-{i}.compute-1.cloud.example.com"] for i in range(1, 6)},
    **{f"192.0.2.{i}": [f"server-192-0-2-{i}.fra50.r.cdn.example.net"] for i in range(6, 11)},
    **{f"203.0.113.{10 * i}": [f"cpe-203-0-113-{10 * i}.dyn.isp.example.org"] for i in range(1, 9)},
    "198.51.100.2": ["mail.example.co.uk"],
    "198.51.100.3": ["www.example.co.uk", "shop.example.co.uk"],
    "198.51.100.77": ["backup.example.co.uk"],
    "198.51.100.200": ["monitor.example.co.uk"],
    "198.51.100.254": ["gw.example.co.uk"],
    **{f"2001:db8:5::{i:x}": [f"host{i}.v6.example.net"] for i in range(1, 5)},
    "2001:db8:6::1": ["xn--mnchen-3ya.example.de"],
}
#: The SOA host an NXDOMAIN answer names (the agent keeps it as ":ns1.example.org").
SOA = "ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 3600"
TTL = 3600


def answer(query: dns.message.Message) -> dns.message.Message:
    """Return the response to one query: the PTR names of a known address, else NXDOMAIN with a SOA."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    address = dns.reversename.to_address(question.name) if question.rdtype == dns.rdatatype.PTR else None
    names = NAMES.get(str(ipaddress.ip_address(address))) if address else None
    if names:
        response.answer.append(dns.rrset.from_text_list(question.name, TTL, "IN", "PTR",
                                                        [n + "." for n in names]))
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
        zone = dns.name.from_text("arpa.")
        response.authority.append(dns.rrset.from_text(zone, TTL, "IN", "SOA", SOA))
    return response


def serve(port: int) -> None:
    """Answer queries on 127.0.0.1:PORT forever; print the port first."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        print(sock.getsockname()[1], flush=True)
        while True:
            data, peer = sock.recvfrom(4096)
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:  # not a DNS message: ignore it
                continue
            sock.sendto(answer(query).to_wire(), peer)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
