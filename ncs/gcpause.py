"""Keeping Python's cyclic garbage collector out of bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Keep the cyclic collector off inside the block (as it was before, after it).

    Building millions of small strings, lists and records triggers the
    collector over and over; each pass walks every one of them and frees
    nothing, because they form no cycles.  Reading or merging a million
    records takes about half the time with it paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
