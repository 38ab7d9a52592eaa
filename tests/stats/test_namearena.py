"""The name arena gives back every name it was given (as strings or bytes), and compares names as Python compares them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.namearena import NameArena, NameBytes, PackedNames, pack_names

TEXTS = st.text(min_size=1, max_size=12) | st.sampled_from(["a.example", "b.example", "\u00e9t\u00e9"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(TEXTS, max_size=20), max_size=5), st.data())
def test_names_come_back_and_compare_as_strings(batches, data) -> None:
    arena = NameArena(capacity=4)  # tiny: every batch makes it grow
    stored: list[tuple[int, int, str]] = []
    for batch in batches:
        starts, lengths = arena.put(batch)
        stored += zip(starts.tolist(), lengths.tolist(), batch, strict=True)
    starts = np.array([s for s, _, _ in stored], np.int64)
    lengths = np.array([n for _, n, _ in stored], np.int64)
    assert arena.get(starts, lengths) == [t for _, _, t in stored]
    rows = np.arange(len(stored)) * 3
    as_bytes = arena.name_bytes(rows, starts, lengths)
    assert as_bytes.texts() == [t for _, _, t in stored]
    keep = np.arange(len(stored)) % 3 == 1
    kept = as_bytes.take(keep)
    assert kept.rows.tolist() == rows[keep].tolist()
    assert kept.texts() == [t for (_, _, t), k in zip(stored, keep, strict=True) if k]
    assert NameBytes.of_texts(kept.rows, kept.texts()).data.tobytes() == kept.data.tobytes()
    others = data.draw(st.lists(TEXTS, min_size=len(stored), max_size=len(stored)))
    mixed = [t if i % 2 else o for i, ((_, _, t), o) in enumerate(zip(stored, others, strict=True))]
    assert arena.equal(starts, lengths, mixed).tolist() == [
        t == m for (_, _, t), m in zip(stored, mixed, strict=True)]
    given_bytes = NameBytes.of_texts(np.arange(len(mixed)), mixed)
    assert arena.equal_bytes(starts, lengths, given_bytes).tolist() == arena.equal(starts, lengths, mixed).tolist()
    again, again_lengths = arena.put_bytes(given_bytes)
    assert arena.get(again, again_lengths) == mixed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.just("") | TEXTS | st.lists(TEXTS, min_size=2, max_size=3), max_size=30))
def test_packed_names_read_as_the_tuples_they_stand_for(rows) -> None:
    """Rows of one name (None: no names; a list: several) packed as bytes read back as the reader's tuples."""
    want = [() if r is None else (r,) if isinstance(r, str) else tuple(r) for r in rows]
    single = [i for i, r in enumerate(rows) if isinstance(r, str)]
    as_bytes = NameBytes.of_texts(single, [rows[i] for i in single])
    packed = pack_names(len(rows), as_bytes.rows, as_bytes.data, as_bytes.lengths)
    for i, r in enumerate(rows):
        if isinstance(r, list):
            packed.rest[i] = tuple(r)
    # an empty name stays a tuple: the arena cannot hold it
    assert packed.single.rows.tolist() == [i for i in single if rows[i]]
    assert all(packed.rest[i] == () for i in packed.single.rows.tolist())
    assert len(packed) == len(want) and list(packed) == want and packed == want
    assert packed[1:3] == want[1:3] and packed + [("x",)] == [*want, ("x",)]
    assert packed == PackedNames(list(packed.rest), packed.single)
