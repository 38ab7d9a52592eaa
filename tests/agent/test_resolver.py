"""Tests of agent.resolver against a real nsd serving reverse zones on a loopback port."""

from __future__ import annotations

import random
import select
import socket
import time

import dns.message
import dns.name
import dns.reversename
import pytest

from ncs.agent.resolver import (
    MIN_TTL,
    Answer,
    ReverseResolver,
)
from tests.support.nsd import SOA_MNAME, reverse_owner, reverse_zones

NX = ":" + SOA_MNAME


def _free_udp_port(host: str = "127.0.0.1") -> int:
    """Return a UDP port on `host` where nothing listens (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_readable(resolver: ReverseResolver, seconds: float) -> bool:
    """Return True if the resolver's socket becomes readable within `seconds`."""
    readable, _, _ = select.select([resolver.fileno()], [], [], seconds)
    return bool(readable)


def _lookup_all(
    resolver: ReverseResolver, addresses: list[str], now: int, deadline: float = 10.0
) -> tuple[dict[str, Answer], int]:
    """Request every address and pump send/receive until each is answered or failed.

    Returns ({address: answer}, the largest number of queries seen outstanding).
    """
    for address in addresses:
        assert resolver.request(address)
    answers: dict[str, Answer] = {}
    most_outstanding = 0
    stop_at = time.monotonic() + deadline
    while resolver.pending() and time.monotonic() < stop_at:
        resolver.send_pending(now)
        most_outstanding = max(most_outstanding, len(resolver.outstanding()))
        if _wait_readable(resolver, 0.2):
            for answer in resolver.receive(now):
                answers[answer.address] = answer
    assert resolver.pending() == 0, "lookups still pending after the deadline"
    return answers, most_outstanding


@pytest.fixture
def make_resolver():
    """Build ReverseResolvers and close them after the test."""
    made: list[ReverseResolver] = []

    def build(server: tuple[str, int], **options) -> ReverseResolver:
        resolver = ReverseResolver(server, **options)
        made.append(resolver)
        return resolver

    yield build
    for resolver in made:
        resolver.close()


def test_one_ptr_gives_name_and_ttl_expiry(nsd_server, make_resolver):
    server = nsd_server.start_reverse([("198.51.100.7", ["host7.example.org"], 300)])
    resolver = make_resolver(server)
    now = int(time.time())

    assert resolver.request("198.51.100.7")
    assert resolver.send_pending(now) == ["198.51.100.7"]
    assert resolver.pending() == 1
    answers, _ = _lookup_all(resolver, [], now)

    assert answers == {"198.51.100.7": Answer("198.51.100.7", ["host7.example.org"], now + 300)}
    counters = resolver.counters
    assert (counters.sent, counters.answered, counters.nxdomain) == (1, 1, 0)
    assert (counters.failed, counters.forged, counters.expired) == (0, 0, 0)


def test_two_ptrs_for_one_address(nsd_server, make_resolver):
    names = ["alpha.example.org", "beta.example.net"]
    server = nsd_server.start_reverse([("198.51.100.8", names, 600)])
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["198.51.100.8"], now)

    answer = answers["198.51.100.8"]
    assert sorted(answer.names) == names
    assert answer.expires == now + 600


def test_ptr_ttl_below_floor_is_raised_to_the_floor(nsd_server, make_resolver):
    server = nsd_server.start_reverse([("198.51.100.9", ["short.example.org"], 5)])
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["198.51.100.9"], now)

    assert answers["198.51.100.9"].expires == now + 60 == now + MIN_TTL


@pytest.mark.parametrize(
    ("soa_ttl", "negative_ttl", "expected_ttl"),
    [(3600, 900, 900), (120, 900, 120), (3600, 10, 60)],
    ids=["minimum-field", "soa-ttl", "floor"],
)
def test_nxdomain_gives_soa_mname_and_negative_ttl(
    nsd_server, make_resolver, soa_ttl, negative_ttl, expected_ttl
):
    server = nsd_server.start_reverse(
        [("198.51.100.7", ["host7.example.org"], 300)], soa_ttl=soa_ttl, negative_ttl=negative_ttl
    )
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["198.51.100.99"], now)

    assert answers == {"198.51.100.99": Answer("198.51.100.99", [NX], now + expected_ttl)}
    assert (resolver.counters.nxdomain, resolver.counters.answered) == (1, 0)


@pytest.mark.parametrize("server_host", ["127.0.0.1", "::1"])
def test_ipv6_address_and_either_server_family(nsd_server, make_resolver, server_host):
    server = nsd_server.start_reverse(
        [("2001:db8:100::7", ["six.example.org"], 700), ("198.51.100.7", ["four.example.org"], 800)],
        host=server_host,
    )
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["2001:db8:100::7", "2001:db8:100::8", "198.51.100.7"], now)

    assert answers == {
        "2001:db8:100::7": Answer("2001:db8:100::7", ["six.example.org"], now + 700),
        "2001:db8:100::8": Answer("2001:db8:100::8", [NX], now + 900),
        "198.51.100.7": Answer("198.51.100.7", ["four.example.org"], now + 800),
    }


def test_cname_chain_nodata_and_arpa_targets(nsd_server, make_resolver):
    zones = reverse_zones(
        [
            ("198.51.100.11", ["11.100.51.198.in-addr.arpa", "real.example.org"], 400),
            ("198.51.100.12", ["12.100.51.198.in-addr.arpa"], 400),
        ]
    )
    # RFC 2317 style classless delegation, and a name that exists without a PTR.
    zones["100.51.198.in-addr.arpa"] += (
        "13 500 IN CNAME 13.0-25\n13.0-25 200 IN PTR classless.example.org.\n14 IN TXT \"no ptr\"\n"
    )
    resolver = make_resolver(nsd_server.start(zones))
    now = int(time.time())

    answers, _ = _lookup_all(
        resolver, ["198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14"], now
    )

    assert answers["198.51.100.11"].names == ["real.example.org"]
    assert answers["198.51.100.12"].names == ["12.100.51.198.in-addr.arpa"]
    assert answers["198.51.100.13"] == Answer("198.51.100.13", ["classless.example.org"], now + 200)
    assert answers["198.51.100.14"] == Answer("198.51.100.14", [NX], now + 900)
    assert (resolver.counters.answered, resolver.counters.nxdomain) == (3, 1)


def test_refused_answer_counts_as_failed(nsd_server, make_resolver):
    # nsd refuses questions for zones it does not serve (192.0.2.0/24 here).
    server = nsd_server.start_reverse([])
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["192.0.2.1"], now)

    assert answers == {}
    assert (resolver.counters.sent, resolver.counters.failed, resolver.counters.forged) == (1, 1, 0)


def test_hostile_ptr_names_come_back_as_escaped_text(nsd_server, make_resolver):
    hostile = [
        'we\\"ird\\092<script>x.\\007\\255.example',
        "it's\\(a\\)\\;\\$\\@test.example",  # zone-file escapes for ( ) ; $ @
    ]
    server = nsd_server.start_reverse([("198.51.100.66", hostile, 300)])
    resolver = make_resolver(server)
    now = int(time.time())

    answers, _ = _lookup_all(resolver, ["198.51.100.66"], now)

    # dnspython's text form: '"', '\\', '(', ')', ';', '$' and '@' get a
    # backslash, unprintable bytes become \DDD.
    expected = {'we\\"ird\\\\<script>x.\\007\\255.example', "it's\\(a\\)\\;\\$\\@test.example"}
    assert set(answers["198.51.100.66"].names) == expected
    assert len(answers["198.51.100.66"].names) == 2


def test_server_down_expires_after_timeout(make_resolver):
    resolver = make_resolver(("127.0.0.1", _free_udp_port()), timeout=300)
    now = int(time.time())

    assert resolver.request("198.51.100.7")
    assert resolver.send_pending(now) == ["198.51.100.7"]
    _wait_readable(resolver, 0.3)
    assert resolver.receive(now) == []
    assert resolver.expire(now + 300) == []
    assert resolver.pending() == 1

    assert resolver.expire(now + 301) == ["198.51.100.7"]
    assert resolver.pending() == 0
    assert resolver.outstanding() == {}
    counters = resolver.counters
    assert (counters.sent, counters.answered, counters.expired, counters.failed) == (1, 0, 1, 0)
    # Forgotten, so it can be asked again.
    assert resolver.request("198.51.100.7")


def test_in_flight_bound_and_everything_answered(nsd_server, make_resolver):
    addresses = [f"198.51.100.{n}" for n in range(1, 51)]
    named = {a: [f"host{a.rsplit('.', 1)[1]}.example.org"] for a in addresses[::2]}
    server = nsd_server.start_reverse([(a, names, 1000) for a, names in named.items()])
    resolver = make_resolver(server, max_in_flight=5)
    now = int(time.time())

    answers, most_outstanding = _lookup_all(resolver, addresses, now)

    assert most_outstanding == 5
    assert {a: answers[a].names for a in addresses} == {a: named.get(a, [NX]) for a in addresses}
    counters = resolver.counters
    assert (counters.sent, counters.answered, counters.nxdomain) == (50, 25, 25)


def test_send_pending_never_exceeds_in_flight_bound(make_resolver):
    resolver = make_resolver(("127.0.0.1", _free_udp_port()), max_in_flight=5)
    now = int(time.time())
    for n in range(1, 21):
        assert resolver.request(f"198.51.100.{n}")

    assert resolver.send_pending(now) == [f"198.51.100.{n}" for n in range(1, 6)]
    assert resolver.send_pending(now) == []
    assert len(resolver.outstanding()) == 5
    assert len(set(resolver.outstanding())) == 5  # distinct ids
    assert resolver.pending() == 20


def test_queue_bound_refuses_and_counts(make_resolver):
    resolver = make_resolver(("127.0.0.1", _free_udp_port()), max_queue=10, max_in_flight=3)
    now = int(time.time())
    for n in range(1, 11):
        assert resolver.request(f"198.51.100.{n}")

    assert not resolver.request("198.51.100.11")
    assert resolver.counters.queue_full == 1
    assert not resolver.request("198.51.100.1")  # already queued: refused, not counted
    assert resolver.counters.queue_full == 1
    assert resolver.pending() == 10

    assert resolver.send_pending(now) == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert not resolver.request("198.51.100.2")  # in flight
    assert resolver.request("198.51.100.11")  # room in the queue again
    assert resolver.counters.queue_full == 1
    assert resolver.pending() == 11


def _exchange(nsd: tuple[str, int], wire: bytes) -> bytes:
    """Send `wire` to nsd from a fresh socket and return nsd's reply datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(3)
        client.sendto(wire, nsd)
        return client.recv(65535)


def test_forged_answers_are_dropped_and_the_real_one_accepted(nsd_server, make_resolver):
    nsd = nsd_server.start_reverse([("198.51.100.7", ["host7.example.org"], 300)])
    # The test's relay socket is the resolver's "server": it captures the
    # query, injects forgeries, then passes nsd's genuine answer on.
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(3)
    relay_port = relay.getsockname()[1]
    resolver = make_resolver(("127.0.0.1", relay_port))
    target = ("127.0.0.1", resolver.local_port)
    now = int(time.time())

    resolver.request("198.51.100.7")
    resolver.send_pending(now)
    query_wire, source = relay.recvfrom(65535)
    assert source[1] == resolver.local_port
    query = dns.message.from_wire(query_wire)
    assert resolver.outstanding() == {query.id: "198.51.100.7"}
    assert query.question[0].name == dns.name.from_text(reverse_owner("198.51.100.7"))

    genuine = _exchange(nsd, query_wire)
    wrong_id = ((query.id + 1) % 65536).to_bytes(2, "big") + genuine[2:]
    other_name = _exchange(
        nsd,
        dns.message.make_query(
            dns.reversename.from_address("198.51.100.8"), "PTR", id=query.id
        ).to_wire(),
    )
    other_type = _exchange(
        nsd,
        dns.message.make_query(
            dns.reversename.from_address("198.51.100.7"), "TXT", id=query.id
        ).to_wire(),
    )
    not_a_response = genuine[:2] + bytes([genuine[2] & 0x7F]) + genuine[3:]
    from_relay = [wrong_id, other_name, other_type, not_a_response, b"\x00", b"garbage!" * 5,
                  genuine[:12], genuine[:-3]]

    elsewhere_address = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere_address.bind(("127.0.0.2", relay_port))
    elsewhere_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere_port.bind(("127.0.0.1", 0))
    try:
        for forged in from_relay:
            relay.sendto(forged, target)
        elsewhere_address.sendto(genuine, target)
        elsewhere_port.sendto(genuine, target)
        expected_forged = len(from_relay) + 2

        stop_at = time.monotonic() + 5
        while resolver.counters.forged < expected_forged and time.monotonic() < stop_at:
            _wait_readable(resolver, 0.2)
            assert resolver.receive(now) == []
        assert resolver.counters.forged == expected_forged
        assert resolver.outstanding() == {query.id: "198.51.100.7"}

        relay.sendto(genuine, target)
        assert _wait_readable(resolver, 3)
        answers = resolver.receive(now)
    finally:
        for sock in (relay, elsewhere_address, elsewhere_port):
            sock.close()

    assert answers == [Answer("198.51.100.7", ["host7.example.org"], now + 300)]
    counters = resolver.counters
    assert (counters.answered, counters.forged, counters.failed) == (1, expected_forged, 0)
    assert resolver.pending() == 0


def test_late_answer_after_expiry_is_dropped(nsd_server, make_resolver):
    nsd = nsd_server.start_reverse([("198.51.100.7", ["host7.example.org"], 300)])
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(3)
    resolver = make_resolver(relay.getsockname(), timeout=10)
    now = int(time.time())
    try:
        resolver.request("198.51.100.7")
        resolver.send_pending(now)
        query_wire, _ = relay.recvfrom(65535)
        assert resolver.expire(now + 11) == ["198.51.100.7"]
        relay.sendto(_exchange(nsd, query_wire), ("127.0.0.1", resolver.local_port))
        assert _wait_readable(resolver, 3)
        assert resolver.receive(now + 11) == []
    finally:
        relay.close()
    assert (resolver.counters.expired, resolver.counters.forged) == (1, 1)


def test_hard_send_error_counts_as_failed_and_is_taken_off_the_queue(make_resolver):
    # Broadcast without SO_BROADCAST: the kernel refuses the send (EACCES)
    # locally, so nothing leaves the machine.
    resolver = make_resolver(("255.255.255.255", 53))
    now = int(time.time())
    assert resolver.request("198.51.100.7")

    assert resolver.send_pending(now) == ["198.51.100.7"]
    assert (resolver.counters.sent, resolver.counters.failed) == (0, 1)
    assert resolver.pending() == 0
    assert resolver.outstanding() == {}


def test_receive_after_close_returns_nothing(make_resolver):
    resolver = make_resolver(("127.0.0.1", _free_udp_port()))
    resolver.close()
    assert resolver.receive(int(time.time())) == []
    resolver.close()


def test_mangled_answers_never_raise(nsd_server, make_resolver):
    """Byte-flipped copies of real nsd answers, carrying the right id, are each counted once."""
    hostile = ['we\\"ird\\092<script>x.\\007\\255.example', "host7.example.org"]
    nsd = nsd_server.start_reverse([("198.51.100.7", hostile, 300)])
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(3)
    resolver = make_resolver(relay.getsockname())
    target = ("127.0.0.1", resolver.local_port)
    rng = random.Random(20240607)
    templates = {}
    now = int(time.time())
    try:
        for round_number in range(300):
            address = "198.51.100.7" if round_number % 2 else "198.51.100.99"
            resolver.request(address)
            resolver.send_pending(now)
            query_wire, _ = relay.recvfrom(65535)
            if address not in templates:
                templates[address] = _exchange(nsd, query_wire)
            mangled = bytearray(query_wire[:2] + templates[address][2:])
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(3, len(mangled))  # keep the id and the QR bit
                mangled[position] = rng.randrange(256)
            if rng.random() < 0.2:
                mangled = mangled[: rng.randrange(12, len(mangled))]

            before = _outcomes(resolver)
            relay.sendto(bytes(mangled), target)
            assert _wait_readable(resolver, 3)
            answers = resolver.receive(now)
            assert _outcomes(resolver) == before + 1
            for answer in answers:
                assert answer.address == address
                assert answer.names and all(isinstance(n, str) and n for n in answer.names)
                assert answer.expires >= now + MIN_TTL
            resolver.expire(now + 10_000)  # forget a query whose answer was dropped
    finally:
        relay.close()
    assert resolver.counters.forged < 300  # some mangled answers were still usable


def _outcomes(resolver: ReverseResolver) -> int:
    """Return how many datagrams the resolver has classified so far."""
    c = resolver.counters
    return c.answered + c.nxdomain + c.failed + c.forged
