"""GrowingColumns: rows appended in batches read back as their concatenation, growing by its factor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.growing import FAST_GROWTH, GrowingColumns


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.integers(0, 300), max_size=12), growth=st.integers(2, 9),
       capacity=st.integers(0, 8), objects_from=st.integers(0, 12))
def test_appended_batches_read_back_as_their_concatenation(batches, growth, capacity, objects_from):
    columns = GrowingColumns({"n": np.int64, "x": np.uint64}, capacity, growth)
    expected_n: list[int] = []
    expected_x: list[object] = []
    for i, size in enumerate(batches):
        n = np.arange(len(expected_n), len(expected_n) + size, dtype=np.int64)
        x = (n * 7).astype(np.uint64)
        if i >= objects_from:  # from this batch on, column x takes Python ints (as a merge past int64 does)
            x = np.array([int(v) + 2**70 for v in x] + [None], dtype=object)[:size]
        start, stop = columns.append({"n": n, "x": x})
        assert (start, stop) == (len(expected_n), len(expected_n) + size)
        expected_n += n.tolist()
        expected_x += x.tolist()
        assert len(columns) == len(expected_n)
    assert columns.view("n").tolist() == expected_n
    assert columns.view("x").tolist() == expected_x


def test_full_columns_grow_by_the_factor():
    for growth in (2, FAST_GROWTH):
        columns = GrowingColumns({"n": np.int64}, 1, growth)
        arrays = set()
        for i in range(1000):
            columns.append({"n": np.array([i])})
            arrays.add(id(columns._arrays["n"]))
            # keep every array alive, so that ids are never reused
            columns.__dict__.setdefault("_kept", []).append(columns._arrays["n"])
        # 1, G, G^2 ... up to 1,000 rows: one array per power of the factor
        assert len(arrays) == int(np.ceil(np.log(1000) / np.log(growth))) + 1
        assert columns.view("n").tolist() == list(range(1000))


def test_growth_below_two_is_refused():
    with pytest.raises(ValueError, match="growth"):
        GrowingColumns({"n": np.int64}, 4, 1)
