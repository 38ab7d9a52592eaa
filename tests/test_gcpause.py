"""The paused collector: tidy collects what was made since the last tidy, a full tidy what survived one."""

from __future__ import annotations

import gc
import weakref

from ncs import gcpause


class _Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> tuple[_Node, weakref.ref]:
    """Return (one node of a new two-node cycle, a weak reference that dies with the cycle)."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


def test_tidies_collect_young_cycles_and_a_full_one_those_that_survived_a_tidy():
    was_enabled = gc.isenabled()
    before = _Node()  # exists before the block: frozen inside it
    with gcpause.paused(freeze=True):
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert not any(o is before for g in range(3) for o in gc.get_objects(generation=g))
        young, young_ref = _cycle()
        del young
        assert young_ref() is not None  # nothing collects by itself
        gcpause.tidy()
        assert young_ref() is None
        # a cycle still in use at a tidy (another host's connection) survives it...
        old, old_ref = _cycle()
        gcpause.tidy()
        del old
        gcpause.tidy()
        assert old_ref() is not None  # ...and a later plain tidy does not look at it again
        gcpause.tidy(full=True)
        assert old_ref() is None
    assert gc.get_freeze_count() == 0
    assert gc.isenabled() == was_enabled


def test_without_freeze_nothing_is_frozen():
    with gcpause.paused():
        assert gc.get_freeze_count() == 0
        cycle, ref = _cycle()
        del cycle
        gcpause.tidy()
        assert ref() is None
