"""The name arena gives back every name it was given (as strings or bytes), and compares names as Python compares them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.namearena import NameArena, NameBytes

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
