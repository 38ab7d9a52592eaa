"""Keeping Python's cyclic garbage collector out of bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(freeze: bool = False) -> Iterator[None]:
    """Keep the cyclic collector off inside the block (as it was before, after it).

    Building millions of small strings, lists and records triggers the
    collector over and over; each pass walks every one of them and frees
    nothing, because they form no cycles.  Reading or merging a million
    records takes about half the time with it paused.  FREEZE also moves
    every object that exists now (the program's modules, its settings) out
    of the collector's sight for the block, so that no `tidy` walks them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def tidy(full: bool = False) -> None:
    """Collect the cyclic garbage made since the last tidy; FULL: all of it since the block began.

    For long runs with the collector paused (`paused`) that keep making
    garbage in cycles (ncs-coalesce: an SSH connection per host).  A tidy
    walks only the objects made since the last one (the young generations);
    what survives goes to the oldest generation, which only a FULL tidy
    walks: that finds the cycles that were still in use at an earlier tidy
    (another host's connection, mid-transfer).  Objects frozen by `paused`
    are walked by neither.
    """
    gc.collect(2 if full else 1)
