"""The streaming merge equals merge_tables of the same tables in their order, whatever order they arrive in."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.addresses import AddressKeys
from ncs.stats.addressindex import AddressIndex
from ncs.stats.columns import StatsColumns
from ncs.stats.merge import merge_tables
from ncs.stats.namearena import NameBytes, PackedNames
from ncs.stats.nameunion import MAX_NAMES, unite
from ncs.stats.record import NUMBER_KEYS, Record
from ncs.stats.streammerge import StreamingMerge
from ncs.stats.writer import chunk_blocks, column_blocks

# A small pool, so that tables share addresses; the last two are one IPv6
# address spelled twice (a table may hold both: they are one record).
POOL = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "10.0.0.1", "0.0.0.0", "255.255.255.255",
        "2001:db8::1", "::1", "2001:db8::ff", "2001:db8:0:0::ff"]
NAMES = st.lists(st.sampled_from(["a.example", "b.example", "c.example", "d.example", "e"]),
                 max_size=4)
INTS = st.integers(0, 2**40) | st.integers(2**62, 2**63 - 1) | st.integers(2**63, 2**66)
RECORDS = st.builds(Record, B=INTS, C=INTS, E=INTS, S=INTS, R=INTS, W=INTS, T=INTS, L=INTS, N=NAMES)


@st.composite
def tables(draw, values=RECORDS, pool=POOL) -> list[StatsColumns]:
    """Tables of records on POOL addresses, each address at most once per spelling."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        addresses = draw(st.lists(st.sampled_from(pool), unique=True, max_size=len(pool)))
        records = [(a, draw(values)) for a in addresses]
        out.append(StatsColumns.from_records([], records))
    return out


def as_rows(table: StatsColumns) -> list[tuple]:
    """Return a table's rows as (address key, numbers..., names) with plain Python values."""
    keys = table.keys.int_keys()
    return [(keys[i], *(table.value(k, i) for k in NUMBER_KEYS), list(table.names[i]))
            for i in range(len(table))]


def streamed(parts: list[StatsColumns], order: list[int], cap: int) -> StatsColumns:
    merge = StreamingMerge(max_names=cap, capacity=2)  # tiny: every table makes it grow
    for rank in order:
        merge.add(parts[rank], rank)
    return merge.table()


def packed(table: StatsColumns) -> StatsColumns:
    """Return TABLE with its names as the stream reader packs them: one name a row in bytes."""
    single = [i for i, names in enumerate(table.names) if len(names) == 1 and names[0]]
    rest = [() if i in single else names for i, names in enumerate(table.names)]
    as_bytes = NameBytes.of_texts(single, [table.names[i][0] for i in single])
    return StatsColumns(table.header, table.keys, table.numbers, PackedNames(rest, as_bytes), table.source)


@settings(max_examples=300, deadline=None)
@given(parts=tables(), data=st.data(), cap=st.sampled_from([1, 2, 3, MAX_NAMES]))
def test_any_arrival_order_gives_merge_tables(parts, data, cap) -> None:
    """In any order, and with names as lists or packed in bytes (as the reader hands them on)."""
    order = data.draw(st.permutations(range(len(parts))))
    packing = data.draw(st.lists(st.booleans(), min_size=len(parts), max_size=len(parts)))
    given_parts = [packed(t) if p else t for t, p in zip(parts, packing, strict=True)]
    assert as_rows(streamed(given_parts, order, cap)) == as_rows(merge_tables(parts, max_names=cap))


FLOATS = st.builds(Record, B=INTS, C=INTS, E=INTS, S=INTS, T=INTS, L=INTS, N=NAMES,
                   R=st.floats(0, 1e6, allow_nan=False) | INTS, W=st.floats(0, 1e12, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(parts=tables(FLOATS, POOL[:-1]))
def test_values_that_are_not_integers_merge_as_merge_tables_in_table_order(parts) -> None:
    # Floats (Data::Dumper files) are added in arrival order: in table order
    # the sums are merge_tables' to the last bit.  (A table that spells one
    # address twice adds its own two values first: not the same float sum.)
    assert as_rows(streamed(parts, list(range(len(parts))), MAX_NAMES)) == as_rows(merge_tables(parts))


HOSTILE_NAMES = st.lists(st.sampled_from(["a.example", "b.example", "it's", "\x1b[2J", "m\u00fcnchen.example",
                                          "", "x" * 70, "nul\0", "back\\slash"]), max_size=3)


@settings(max_examples=150, deadline=None)
@given(parts=tables(st.builds(Record, B=INTS, C=INTS, E=INTS, S=INTS, R=INTS, W=INTS, T=INTS, L=INTS,
                              N=HOSTILE_NAMES)), cap=st.sampled_from([1, 2, MAX_NAMES]))
def test_the_text_written_from_the_merge_is_merge_tables_text(parts, cap) -> None:
    """What the composite writer writes (`chunk`: single names as bytes from the
    arena) is what the writer makes of merge_tables' table, byte for byte."""
    merge = StreamingMerge(max_names=cap, capacity=2)
    for rank, part in enumerate(parts):
        merge.add(part, rank)
    text = bytes(chunk_blocks(*merge.chunk(merge.order())))
    assert text == b"".join(column_blocks(merge_tables(parts, max_names=cap)))


def test_a_rank_is_merged_once() -> None:
    merge = StreamingMerge()
    merge.add(StatsColumns.empty(), 3)
    with pytest.raises(ValueError, match="rank 3"):
        merge.add(StatsColumns.empty(), 3)


def test_the_cap_keeps_the_first_names_and_counts_the_address() -> None:
    many = [f"n{i}.example" for i in range(100)]
    table = StatsColumns.from_records([], [("192.0.2.1", Record(B=1, N=many)),
                                           ("192.0.2.2", Record(B=1, N=["x"]))])
    merge = StreamingMerge(max_names=10)
    merge.add(table, 0)
    assert list(merge.table().names[0]) == many[:10]
    assert merge.capped == 1
    assert unite([many[:3], many[50:], many], cap=5) == many[:3] + many[50:52]


def test_one_address_with_80k_names_merges_fast() -> None:
    # A host sending one address with 80,000 names (2.2 MB) held the merge
    # of an earlier version for 37.8 s.
    names = [f"name{i:05d}.host.example" for i in range(80_000)]
    other = list(reversed(names))
    tables = [StatsColumns.from_records([], [("192.0.2.1", Record(B=i, N=ns))])
              for i, ns in enumerate((names, other, names[:10]))]
    started = time.process_time()
    merge = StreamingMerge()
    for rank in (2, 0, 1):
        merge.add(tables[rank], rank)
    reference = merge_tables(tables)
    elapsed = time.process_time() - started
    assert list(merge.table().names[0]) == list(reference.names[0]) == names[:MAX_NAMES]
    assert elapsed < 0.2, elapsed


def test_the_index_finds_every_address_it_was_given_and_no_other() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    stored = AddressKeys(rng.random(n) < 0.3, rng.integers(0, 3, n, dtype=np.uint64),
                         rng.integers(0, 2**40, n, dtype=np.uint64))
    stored = stored.take(np.flatnonzero(stored.take(stored.order()).run_starts()))  # distinct
    index = AddressIndex(capacity=16)
    half = len(stored) // 2
    for lo, hi in ((0, 100), (100, half), (half, len(stored))):
        part = stored.take(slice(lo, hi))
        rows, ends = index.lookup(part, stored)
        assert (rows == -1).all()
        index.insert(part, np.arange(lo, hi), ends, stored)
    rows, _ = index.lookup(stored, stored)
    assert (rows == np.arange(len(stored))).all()
    absent = AddressKeys(stored.is6, stored.hi + np.uint64(7), stored.lo)
    assert (index.lookup(absent, stored)[0] == -1).all()  # hi is 0-2 in STORED
