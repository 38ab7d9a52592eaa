"""Asynchronous reverse-DNS (PTR) lookups over one non-blocking UDP socket for the agent's loop."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from ncs.agent.log import Throttle
from ncs.hostport import format_hostport

# Bounds on how long a lookup result is kept. The floor stops a TTL of 0 (or a
# hostile server) from turning every packet of a busy remote into a new query;
# the ceiling keeps names from a huge TTL from outliving a week of renumbering.
MIN_TTL = 60
MAX_TTL = 7 * 86400

# Read at most this many datagrams per receive() call so that a flood aimed at
# the resolver's port cannot keep the capture loop from running; what is left
# stays readable and is picked up on the next call.
MAX_DATAGRAMS_PER_RECEIVE = 512

# Queries offer EDNS answers up to this size (the DNS flag day's choice): a PTR set
# of more than 512 bytes then arrives whole instead of truncated and empty.
EDNS_PAYLOAD = 1232

# A CNAME chain (RFC 2317 classless delegation) is followed at most this far.
MAX_CNAME_CHAIN = 8

_ARPA_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))

# Errors from sendto() that mean "try again later" rather than "this query failed".
_TRANSIENT_SEND_ERRORS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR}

# Errors recvfrom() may report for an earlier datagram's ICMP reply; reading goes on.
_ICMP_ERRORS = {
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EMSGSIZE
}


@dataclass
class Answer:
    """The outcome of one accepted lookup.

    `names` holds the PTR targets without their trailing dot, or
    `[":" + SOA MNAME]` when the name does not exist; `expires` is the Unix
    second at which the result should be looked up again.
    """

    address: str
    names: list[str]
    expires: int


@dataclass
class ResolverCounters:
    """What happened to the resolver's queries and to the datagrams it read."""

    sent: int = 0
    answered: int = 0
    nxdomain: int = 0
    failed: int = 0
    forged: int = 0
    expired: int = 0
    queue_full: int = 0


@dataclass
class _Query:
    """One query on the wire, waiting for its answer."""

    address: str
    qname: dns.name.Name
    sent_at: int


class ReverseResolver:
    """PTR lookups for the capture loop: queue, send, receive and expire, never blocking.

    The caller selects on fileno() and calls receive() when it is readable,
    calls send_pending() after request() and after answers free slots, and
    calls expire() from time to time. Times are the caller's Unix seconds.
    """

    def __init__(
        self,
        server: tuple[str, int],
        *,
        max_in_flight: int = 100,
        max_queue: int = 10000,
        timeout: int = 300,
    ) -> None:
        """Open a non-blocking UDP socket of the server's family on an ephemeral port.

        The socket is deliberately not connected: every datagram's source is
        checked against `server` in receive(). Raises ValueError for a server
        that is not an IP address or for bounds out of range, OSError if the
        socket cannot be opened.
        """
        host, port = server
        try:
            self._server_ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"bad nameserver {host!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"bad nameserver port {port!r}")
        if not 1 <= max_in_flight <= 65535:
            raise ValueError(f"max_in_flight must be 1..65535, not {max_in_flight}")
        if max_queue < 0 or timeout < 1:
            raise ValueError("max_queue must be >= 0 and timeout >= 1")
        self.server = (host, port)
        self.counters = ResolverCounters()
        self._max_in_flight = max_in_flight
        self._max_queue = max_queue
        self._timeout = timeout
        self._queued: dict[str, None] = {}  # insertion-ordered set of addresses
        self._in_flight: dict[int, _Query] = {}  # query id -> query
        self._in_flight_addresses: set[str] = set()
        self._random = random.SystemRandom()
        self._log = Throttle()  # failures are logged where they happen, at most once a minute each
        family = socket.AF_INET6 if self._server_ip.version == 6 else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._socket.setblocking(False)
            self._socket.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        except OSError:
            self._socket.close()
            raise
        self.local_port: int = self._socket.getsockname()[1]

    def fileno(self) -> int:
        """Return the socket's file descriptor (for select/poll)."""
        return self._socket.fileno()

    def request(self, address: str) -> bool:
        """Queue a PTR lookup for `address` (IPv4 or IPv6 text).

        Returns True if queued; False, with nothing queued, if the address is
        already queued or in flight, or if the queue is full (counted in
        `queue_full`). Raises ValueError if `address` is not an IP address.
        """
        if address in self._queued or address in self._in_flight_addresses:
            return False
        ipaddress.ip_address(address)
        if len(self._queued) >= self._max_queue:
            self.counters.queue_full += 1
            return False
        self._queued[address] = None
        return True

    def send_pending(self, now: int) -> list[str]:
        """Send queued queries while fewer than max_in_flight are outstanding.

        Returns the addresses taken off the queue: sent ones, and ones whose
        send failed hard (counted in `failed`), so that the caller's
        retry-in-a-day rule applies to both. A full socket buffer stops the
        round and leaves the rest queued.
        """
        taken: list[str] = []
        while self._queued and len(self._in_flight) < self._max_in_flight:
            address = next(iter(self._queued))
            qname = dns.reversename.from_address(address)
            query_id = self._free_id()
            wire = dns.message.make_query(qname, dns.rdatatype.PTR, id=query_id, use_edns=0,
                                          payload=EDNS_PAYLOAD).to_wire()
            try:
                self._socket.sendto(wire, self.server)
            except OSError as exc:
                if exc.errno in _TRANSIENT_SEND_ERRORS:
                    break
                del self._queued[address]
                self.counters.failed += 1
                self._log.warning("send", f"DNS: cannot send to {self._where()}: "
                                          f"{exc.strerror or exc}")
                taken.append(address)
                continue
            del self._queued[address]
            self._in_flight[query_id] = _Query(address, qname, now)
            self._in_flight_addresses.add(address)
            self.counters.sent += 1
            taken.append(address)
        return taken

    def _free_id(self) -> int:
        """Return a random 16-bit query id not used by an outstanding query."""
        while True:
            query_id = self._random.randrange(65536)
            if query_id not in self._in_flight:
                return query_id

    def receive(self, now: int) -> list[Answer]:
        """Read the datagrams waiting on the socket and return the accepted answers.

        Never blocks and never raises on what arrives: datagrams from the wrong
        source, with an unknown id, a different question, or that do not parse
        are dropped and counted in `forged`; accepted answers that carry no
        usable result are counted in `failed`.
        """
        answers: list[Answer] = []
        for wire, source in self._datagrams():
            query = self._match(wire, source)
            if query is None:
                continue
            message, query_id = query
            pending = self._in_flight.pop(query_id)
            self._in_flight_addresses.discard(pending.address)
            answer = self._interpret(message, pending, now)
            if answer is not None:
                answers.append(answer)
        return answers

    def _datagrams(self) -> Iterator[tuple[bytes, tuple]]:
        """Yield (payload, source address) for each waiting datagram, up to the per-call cap."""
        for _ in range(MAX_DATAGRAMS_PER_RECEIVE):
            try:
                yield self._socket.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # An ICMP error queued on the socket (e.g. port unreachable)
                # is reported once; the query it belongs to simply expires.
                if exc.errno in _ICMP_ERRORS:
                    self._log.warning(f"icmp{exc.errno}", f"DNS: {self._where()}: "
                                                          f"{exc.strerror or exc}")
                    continue
                return

    def _match(self, wire: bytes, source: tuple) -> tuple[dns.message.Message, int] | None:
        """Return (message, query id) if the datagram answers an outstanding query.

        Returns None, counting it in `forged`, for anything else.
        """
        # Cheap checks on the raw header first, so that a flood of forgeries
        # costs almost nothing: dnspython's full parse is about a millisecond.
        if (
            not self._from_server(source)
            or len(wire) < 12
            or int.from_bytes(wire[:2], "big") not in self._in_flight
            or not wire[2] & 0x80  # QR: a response
        ):
            self.counters.forged += 1
            return None
        try:
            message = dns.message.from_wire(wire)
        # dnspython raises a variety of exception types on malformed wire
        # data (DNSException subclasses, but also ValueError/IndexError in
        # corner cases); none of them may reach the capture loop.
        except Exception:
            self.counters.forged += 1
            return None
        pending = self._in_flight.get(message.id)
        if (
            pending is None
            or not message.flags & dns.flags.QR
            or message.opcode() != dns.opcode.QUERY
            or not self._same_question(message, pending.qname)
        ):
            self.counters.forged += 1
            return None
        return message, message.id

    def _from_server(self, source: tuple) -> bool:
        """Return True if a datagram's source is the configured server's address and port."""
        try:
            return ipaddress.ip_address(source[0]) == self._server_ip and (
                source[1] == self.server[1]
            )
        except (ValueError, IndexError, TypeError):
            return False

    @staticmethod
    def _same_question(message: dns.message.Message, qname: dns.name.Name) -> bool:
        """Return True if the question section is exactly (qname, PTR, IN)."""
        if len(message.question) != 1:
            return False
        question = message.question[0]
        return (
            question.name == qname
            and question.rdtype == dns.rdatatype.PTR
            and question.rdclass == dns.rdataclass.IN
        )

    def _interpret(self, message: dns.message.Message, query: _Query, now: int) -> Answer | None:
        """Turn an accepted response into an Answer, or None (counted in `failed`)."""
        rcode = message.rcode()
        if rcode == dns.rcode.NOERROR:
            found = _ptr_names(message, query.qname)
            if found is not None:
                names, ttl = found
                self.counters.answered += 1
                return Answer(query.address, names, now + _clamp_ttl(ttl))
        if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            negative = _negative_answer(message)
            if negative is not None:
                mname, ttl = negative
                self.counters.nxdomain += 1
                return Answer(query.address, [":" + mname], now + _clamp_ttl(ttl))
        self.counters.failed += 1
        self._log.warning(f"rcode{rcode}", f"DNS: {self._where()} answered "
                                           f"{dns.rcode.to_text(rcode)} (no usable PTR answer)")
        return None

    def _where(self) -> str:
        """Return the server as HOST:PORT text, for messages."""
        return format_hostport(*self.server)

    def expire(self, now: int) -> list[str]:
        """Forget queries outstanding for more than `timeout` seconds.

        Returns their addresses (counted in `expired`). A late answer to a
        forgotten query is counted in `forged`.
        """
        stale = [qid for qid, q in self._in_flight.items() if now - q.sent_at > self._timeout]
        addresses = []
        for query_id in stale:
            query = self._in_flight.pop(query_id)
            self._in_flight_addresses.discard(query.address)
            addresses.append(query.address)
        self.counters.expired += len(addresses)
        if addresses:
            self._log.warning("expired", f"DNS: {self._where()}: {len(addresses)} queries unanswered "
                                         f"after {self._timeout} s")
        return addresses

    def pending(self) -> int:
        """Return the number of lookups queued plus those in flight."""
        return len(self._queued) + len(self._in_flight)

    def outstanding(self) -> dict[int, str]:
        """Return a copy of {query id: address} for the queries in flight (for diagnostics)."""
        return {query_id: query.address for query_id, query in self._in_flight.items()}

    def close(self) -> None:
        """Close the socket and forget every query; safe to call twice."""
        self._socket.close()
        self._queued.clear()
        self._in_flight.clear()
        self._in_flight_addresses.clear()


def _clamp_ttl(ttl: int) -> int:
    """Return `ttl` limited to MIN_TTL..MAX_TTL seconds."""
    return max(MIN_TTL, min(MAX_TTL, ttl))


def _ptr_names(message: dns.message.Message, qname: dns.name.Name) -> tuple[list[str], int] | None:
    """Return (names, TTL) from the PTR records answering `qname`, or None if there are none.

    Follows a CNAME chain from `qname` (classless reverse delegation). Names
    are in answer order, without duplicates, and in-addr.arpa/ip6.arpa names
    only when nothing else was returned. The TTL is the smallest of the PTR
    and CNAME records used.
    """
    owner = qname
    ttls: list[int] = []
    for _ in range(MAX_CNAME_CHAIN + 1):
        ptr = _find(message.answer, owner, dns.rdatatype.PTR)
        if ptr is not None:
            break
        cname = _find(message.answer, owner, dns.rdatatype.CNAME)
        if cname is None or len(cname) == 0:
            return None
        ttls.append(cname.ttl)
        owner = cname[0].target
    else:
        return None
    ordinary: list[str] = []
    arpa: list[str] = []
    seen: set[str] = set()
    for rdata in ptr:
        target = rdata.target
        text = target.to_text(omit_final_dot=True)
        if text in (".", "@") or text.lower() in seen:
            continue
        seen.add(text.lower())
        is_arpa = any(target.is_subdomain(zone) for zone in _ARPA_ZONES)
        (arpa if is_arpa else ordinary).append(text)
    names = ordinary or arpa
    if not names:
        return None
    return names, min([ptr.ttl, *ttls])


def _negative_answer(message: dns.message.Message) -> tuple[str, int] | None:
    """Return (SOA MNAME text, negative TTL) from the authority section, or None without an SOA.

    The negative TTL is the smaller of the SOA record's TTL and its MINIMUM
    field (RFC 2308).
    """
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.rdclass == dns.rdataclass.IN and len(rrset):
            soa = rrset[0]
            mname = soa.mname.to_text(omit_final_dot=True)
            return mname, min(rrset.ttl, soa.minimum)
    return None


def _find(section: list[dns.rrset.RRset], owner: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    """Return the IN rrset of `rdtype` owned by `owner` in `section`, or None."""
    for rrset in section:
        if rrset.name == owner and rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            return rrset
    return None


__all__ = [
    "Answer",
    "ResolverCounters",
    "ReverseResolver",
]
