"""The store's numpy fast paths pinned to plain Python: finding addresses by their number."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ncs.history.query import rows_of


@given(addr=st.lists(st.integers(1, 5000), unique=True, max_size=60),
       found=st.lists(st.integers(1, 5000), max_size=60))
def test_rows_of_is_a_dictionary_lookup(addr, found):
    position = {a: i for i, a in enumerate(addr)}
    got = rows_of(np.array(addr, dtype=np.int64), np.array(found, dtype=np.int64))
    assert got.tolist() == [position.get(f, -1) for f in found]
