"""Columns that grow by appended rows: one numpy array per column, doubled when full.

A table read piece by piece, or a composite that grows with every host,
keeps its rows here instead of joining parts at the end (which holds the
parts and the whole at once).  Growing by a factor G copies each row
1/(G-1) times on average, and the unused end of an array is never written,
so the kernel gives it no memory until rows arrive (object columns
excepted: numpy fills them with None, 8 bytes a row).  What a growth does
cost is the copy and the fresh pages of the new arrays, which the kernel
zeroes: a composite of millions of rows grows by 4 (`FAST_GROWTH`), a
third of a copy per row instead of one; tables with object columns double.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def object_array(items: Sequence) -> np.ndarray:
    """Return ITEMS as a 1-D object array (lists stay elements, never become a second axis)."""
    return np.fromiter(items, dtype=object, count=len(items))


#: The growth factor for big columns of numbers (see the module's docstring).
#: Measured on the fleet benchmark's merge (3 million distinct addresses, in
#: process): 0.42-0.43 us per record against 0.56 when doubling, most of the
#: difference the kernel's time zeroing fresh pages; 8 saved nothing more.
FAST_GROWTH = 4


class GrowingColumns:
    """Named 1-D columns of one length; `view(name)` is a column's rows, `append` adds rows.

    Full columns grow to GROWTH times their capacity (at least 2).
    """

    def __init__(self, dtypes: Mapping[str, np.dtype | type], capacity: int = 1024,
                 growth: int = 2) -> None:
        if growth < 2:
            raise ValueError("growth must be at least 2")
        self._arrays = {name: np.empty(capacity, dtype) for name, dtype in dtypes.items()}
        self._size = 0
        self._growth = growth

    def __len__(self) -> int:
        return self._size

    def view(self, name: str) -> np.ndarray:
        """Return the rows of column NAME (a view: writes go to the column; invalid after a growth)."""
        return self._arrays[name][:self._size]

    def dtype(self, name: str) -> np.dtype:
        """Return the element type of column NAME."""
        return self._arrays[name].dtype

    def to_object(self, name: str) -> None:
        """Make column NAME an object column (Python values: exact beyond int64, floats)."""
        self._arrays[name] = self._arrays[name].astype(object)

    def append(self, columns: Mapping[str, np.ndarray]) -> tuple[int, int]:
        """Add rows: COLUMNS maps every column's name to its new values (all of one length).

        A column takes objects from then on when its new values are
        objects.  Returns the (start, stop) of the new rows.
        """
        count = len(next(iter(columns.values()))) if columns else 0
        start, stop = self._size, self._size + count
        self._reserve(stop)
        for name, values in columns.items():
            if values.dtype.kind == "O" and self.dtype(name).kind != "O":
                self.to_object(name)
            self._arrays[name][start:stop] = values
        self._size = stop
        return start, stop

    def _reserve(self, rows: int) -> None:
        """Make room for ROWS rows: each column grown by the growth factor at least, one at a time."""
        capacity = len(next(iter(self._arrays.values()))) if self._arrays else 0
        if rows <= capacity:
            return
        capacity = max(rows, self._growth * capacity)
        for name, old in self._arrays.items():
            new = np.empty(capacity, old.dtype)
            new[:self._size] = old[:self._size]
            self._arrays[name] = new
