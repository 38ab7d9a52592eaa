"""Work in a forked child: values and exceptions come back, order is kept, a dead child is an error."""

from __future__ import annotations

import os
import threading

import pytest

from ncs.agent.statsparse import StatsFormatError
from ncs.agent.twocore import ForkedCall, can_fork, map_in_halves


def test_the_childs_value_comes_back_from_another_process() -> None:
    parent = os.getpid()
    call = ForkedCall(lambda: (os.getpid(), [b"x" * 10, {"a": 1}]))
    pid, value = call.result()
    assert pid != parent
    assert value == [b"x" * 10, {"a": 1}]


def test_the_childs_exception_is_raised_in_the_parent() -> None:
    def fail() -> None:
        raise StatsFormatError("f", 7, "bad thing")

    with pytest.raises(StatsFormatError, match=r"^f:7: bad thing$"):
        ForkedCall(fail).result()


def test_a_child_that_dies_is_an_error() -> None:
    with pytest.raises(ChildProcessError):
        ForkedCall(lambda: os._exit(3)).result()


def test_map_in_halves_keeps_order_and_uses_a_child() -> None:
    items = list(range(11))
    got = list(map_in_halves(lambda i: (i * i, os.getpid()), items))
    assert [v for v, _ in got] == [i * i for i in items]
    pids = {pid for _, pid in got}
    assert os.getpid() in pids and len(pids) == 2


def test_map_in_halves_stays_in_process_when_told_or_with_threads() -> None:
    assert {pid for pid in map_in_halves(lambda _: os.getpid(), [1, 2, 3], fork=False)} == {os.getpid()}
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert not can_fork()
        assert {pid for pid in map_in_halves(lambda _: os.getpid(), [1, 2, 3])} == {os.getpid()}
    finally:
        stop.set()
        helper.join()


def test_map_in_halves_passes_on_the_first_halfs_error() -> None:
    def work(i: int) -> int:
        if i == 0:
            raise ValueError("first half")
        return i

    with pytest.raises(ValueError, match="first half"):
        list(map_in_halves(work, [0, 1, 2, 3]))


def test_map_in_halves_does_a_dead_childs_half_itself() -> None:
    parent = os.getpid()

    def work(i: int) -> int:
        if os.getpid() != parent:
            os._exit(9)  # the child dies as if killed
        return i * 10

    assert list(map_in_halves(work, [1, 2, 3, 4])) == [10, 20, 30, 40]
