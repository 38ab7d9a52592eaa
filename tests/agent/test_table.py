"""The stats table's arithmetic on hand-computed cases, and batch == per-packet."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.agent.keys import RemoteKeys
from ncs.agent.table import StatsTable
from tests.agent.reference import ReferenceTable
from tests.support.stats import as_file

START = 1000
X, Y = 0x0A000001, 0x0A000002  # 10.0.0.1, 10.0.0.2


def table(max_hosts: int = 1000) -> StatsTable:
    return StatsTable(START, RemoteKeys(), max_hosts=max_hosts, want_names=True)


def feed(t: StatsTable, now: int, key: int, lengths: list[int]) -> None:
    t.update_second(now, np.full(len(lengths), key, np.uint64), np.array(lengths, np.int64))


def records(t: StatsTable) -> dict:
    """Return {address: Record} of every record of T, in file order."""
    return as_file(t.columns(t.ordered_rows())).records


def rec(t: StatsTable, address: str):
    return records(t)[address]


def test_first_fold_when_born_at_start():
    t = table()
    feed(t, 1000, X, [100] * 5)  # B=500 C=5 E=S=1000
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E, r.S, r.R, r.W) == (500, 5, 1000, 1000, 0.0, 0.0)
    feed(t, 1400, X, [200])  # 1400 >= E+300, C == 5: fold with m = 3600/(1400-1000) = 9
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E, r.R, r.W) == (200, 1, 1400, 45.0, 4500.0)


def test_fold_after_first_fold():
    t = table()
    feed(t, 1000, X, [100] * 5)
    feed(t, 1400, X, [200])
    feed(t, 1800, X, [50])  # E != S: m = 3600/(3600+1800-1400) = 0.9
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E) == (50, 1, 1800)
    assert r.R == (45 + 1) * 0.9
    assert r.W == (4500 + 200) * 0.9


def test_record_born_later_folds_at_300s():
    t = table()
    feed(t, 1010, X, [10, 10])
    feed(t, 1309, X, [10])  # still inside 300 s: accumulate
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E, r.L) == (30, 3, 1010, 1309)
    feed(t, 1310, X, [7])  # E != S, fold: m = 3600/(3600+1310-1010)
    r = rec(t, "10.0.0.1")
    m = 3600 / 3900
    assert (r.B, r.C, r.E, r.R, r.W) == (7, 1, 1310, 3 * m, 30 * m)


def test_record_under_five_hits_keeps_accumulating():
    t = table()
    feed(t, 1000, X, [10, 10])
    feed(t, 2000, X, [10])  # E == S and C < 5: no fold however late
    feed(t, 5000, X, [10])
    feed(t, 6000, X, [10])
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E, r.R, r.W) == (50, 5, 1000, 0.0, 0.0)
    assert r.L == 6000  # E still says the first second; L the last packet's
    feed(t, 7000, X, [1])  # C reached 5: fold with m = 3600/(7000-1000) = 0.6
    r = rec(t, "10.0.0.1")
    assert (r.B, r.C, r.E, r.R, r.W) == (1, 1, 7000, 5 * 0.6, 50 * 0.6)


def test_fold_in_the_middle_of_one_second():
    # 3 hits at start, then 4 packets in one late second: two accumulate (C -> 5),
    # the third folds, the fourth accumulates after the fold.
    t = table()
    feed(t, 1000, X, [10, 10, 10])
    feed(t, 1600, X, [1, 2, 3, 4])
    r = rec(t, "10.0.0.1")
    m = 3600 / 600
    assert (r.B, r.C, r.E, r.R, r.W) == (3 + 4, 2, 1600, 5 * m, 33 * m)


def test_global_rates_before_and_after_first_fold():
    t = table()
    feed(t, 1000, X, [100] * 10)
    feed(t, 1299, Y, [100])
    assert t.rate.rate == 0 and t.rate.ra == 11 and t.rate.ba == 1100
    assert t.rate.hits_per_minute == 0
    feed(t, 1300, Y, [60])  # first fold: d = 1300 - 1000 = 300, m = 12
    assert t.rate.rate == 11 * 12 and t.rate.bw == 1100 * 12
    assert (t.rate.ra, t.rate.ba, t.rate.next) == (1, 60, 1360)
    assert t.rate.hits_per_minute == 132 / 60
    assert t.rate.bytes_per_second == 13200 / 3600
    feed(t, 1359, Y, [5])  # before next: accumulate
    assert (t.rate.ra, t.rate.ba) == (2, 65)
    feed(t, 1360, Y, [40])  # rate >= 1: d = 3600 + 1360 - 1300
    m = 3600 / 3660
    assert t.rate.rate == (132 + 2) * m and t.rate.bw == (13200 + 65) * m


def test_global_rate_waits_for_five_hits():
    t = table()
    feed(t, 1000, X, [10, 10])
    feed(t, 1400, X, [10, 10, 10, 7])  # ra 2 -> 5 by accumulation, the 4th packet folds
    m = 3600 / 400
    assert t.rate.rate == 5 * m and t.rate.bw == 50 * m
    assert (t.rate.ra, t.rate.ba) == (1, 7)


def test_purge_after_a_day_idle():
    t = table()
    feed(t, 1000, X, [10])
    feed(t, 1000 + 86400, Y, [10])  # X idle exactly a day: kept
    assert "10.0.0.1" in records(t)
    feed(t, 1000 + 86400 + 61, Y, [10])  # next purge scan, X idle more than a day
    assert "10.0.0.1" not in records(t)
    assert t.purged == 1 and len(t) == 1


def test_eviction_keeps_the_useful_records():
    t = table(max_hosts=10)  # low-water mark 9
    keys = [0x0A000100 + i for i in range(10)]
    for k in keys:
        feed(t, 1000, k, [10] * 5)
    for k in keys[5:]:
        feed(t, 1400, k, [10])  # these five fold: W > 0
    new = 0x0A0001FF
    feed(t, 1400, new, [10])  # 11 > 10: evict 2 down to 9
    got = records(t)
    assert t.evicted == 2 and len(got) == 9
    # the two lowest W = 0 records with the oldest E (ties: lowest address) went
    assert "10.0.1.0" not in got and "10.0.1.1" not in got
    assert all(f"10.0.1.{i}" in got for i in range(2, 10)) and "10.0.1.255" in got


def test_flood_never_grows_past_max_hosts():
    t = table(max_hosts=1000)
    rng = np.random.default_rng(7)
    for second in range(1000, 1050):
        keys = rng.integers(0, 2**32, 5000, dtype=np.uint64)
        t.update_second(second, keys, np.full(5000, 60, np.int64))
        assert len(t) <= 1000
    assert t.evicted >= 50 * 5000 - 1000
    assert t._top <= 1000  # rows are reused, storage does not grow


def test_due_for_lookup_until_sent():
    t = table()
    due = t.update_second(1000, np.array([X], np.uint64), np.array([10], np.int64))
    assert due.tolist() == [X]
    t.lookup_sent("10.0.0.1", 1000)
    due = t.update_second(1001, np.array([X], np.uint64), np.array([10], np.int64))
    assert due.tolist() == []
    assert rec(t, "10.0.0.1").T == 1000 + 86400
    t.set_names("10.0.0.1", ["a.example"], 5000)
    r = rec(t, "10.0.0.1")
    assert (r.N, r.T) == (["a.example"], 5000)


packets = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(40, 1500)),
    min_size=1, max_size=300)
gaps = st.sampled_from([0, 1, 60, 299, 300, 301, 1000, 1400])  # < a day in all: no purge


@settings(max_examples=150, deadline=None)
@given(packets, st.lists(gaps, min_size=1, max_size=60))
def test_batch_equals_per_packet_reference(pkts, steps):
    """Random streams: the table's batch path equals the literal per-packet rules."""
    times = np.cumsum([START] + steps)
    ref = ReferenceTable(START)
    t = StatsTable(START, RemoteKeys(), max_hosts=10**6)
    stream = [(int(times[i % len(times)] if i < len(times) else times[-1]), k, ln)
              for i, (_, k, ln) in enumerate(pkts)]
    stream.sort(key=lambda p: p[0])
    for now, k, ln in stream:
        ref.packet(now, 0x0A000000 + k, ln)
    # feed the table one second at a time, as the agent does
    secs = np.array([p[0] for p in stream])
    keys = np.array([0x0A000000 + p[1] for p in stream], np.uint64)
    lens = np.array([p[2] for p in stream], np.int64)
    cuts = [0, *(np.flatnonzero(np.diff(secs)) + 1).tolist(), len(stream)]
    for a, b in zip(cuts, cuts[1:]):
        t.update_second(int(secs[a]), keys[a:b], lens[a:b])
    got = {int.from_bytes(bytes(int(x) for x in a.split(".")), "big"): r for a, r in records(t).items()}
    assert set(got) == set(ref.rec)
    for k, x in ref.rec.items():
        r = got[k]
        assert (r.B, r.C, r.E, r.L, r.S, r.R, r.W) == \
            (x["B"], x["C"], x["E"], x["L"], x["S"], x["R"], x["W"])
    assert (t.rate.rate, t.rate.bw, t.rate.ra, t.rate.ba) == (ref.rate, ref.bw, ref.ra, ref.ba)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1) | st.integers(2**32, 2**32 + 50),
                          st.integers(0, 10**12), st.floats(0, 1e13, allow_nan=False),
                          st.lists(st.text(min_size=1, max_size=12), max_size=3)),
                min_size=0, max_size=60, unique_by=lambda x: x[0]))
def test_vectorised_dump_equals_per_record_format(rows):
    """The numpy dump writes exactly what the record-by-record writer writes, names included."""
    from ncs.stats.writer import format_record

    keys = RemoteKeys()
    t = StatsTable(START, keys, max_hosts=10**6)
    for k, b, w, names in rows:
        key = k if k < 2**32 else keys.key_of_packed((0x20010DB8 << 96 | k).to_bytes(16, "big"))
        t.update_second(START, np.array([key], np.uint64), np.array([b], np.int64))
        row = int(t.index.lookup(np.array([key], np.uint64))[0])
        t.W[row] = w
        t.R[row] = w / 7
        if names:
            t.names[row] = names
    want = "".join(format_record(a, r) for a, r in records(t).items()).encode()
    assert b"".join(t.record_blocks()) == want


def test_ipv6_keys_survive_digest_collisions_and_release():
    """Two addresses whose digests collide keep their own keys; released keys are reused."""
    import ncs.agent.keys as K

    keys = RemoteKeys()
    real = K._digest
    try:
        K._digest = lambda hi, lo: (hi ^ lo) & np.uint64(7)  # force collisions
        hi = np.array([1, 2, 3, 1, 9], np.uint64)
        lo = np.array([6, 5, 4, 6, 14], np.uint64)  # (1,6) twice; all share digest 7
        got = keys.v6_keys(hi, lo)
        assert got[0] == got[3] and len(set(got.tolist())) == 4
        again = keys.v6_keys(hi[::-1].copy(), lo[::-1].copy())
        assert again.tolist() == got[::-1].tolist()
        texts = [keys.address(int(k)) for k in got]
        assert [keys.key_of_text(t) for t in texts] == got.tolist()
        keys.release(got[:2])
        assert len(keys) == 2
        assert keys.key_of_text(texts[0]) is None and keys.key_of_text(texts[2]) == got[2]
        fresh = keys.v6_keys(np.array([77], np.uint64), np.array([78], np.uint64))
        assert int(fresh[0]) in got[:2].tolist()  # a released key is handed out again
    finally:
        K._digest = real
