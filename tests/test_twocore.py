"""Work in a forked child: values, bytes and exceptions come back, order is kept, a dead child costs time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ncs import twocore
from ncs.stats.errors import StatsFormatError
from ncs.twocore import MIN_RECORDS, ForkedCall, can_fork, map_in_halves, stream_in_halves

BIG = MIN_RECORDS  # a job this big is split


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
    got = list(map_in_halves(lambda i: (i * i, os.getpid()), items, BIG))
    assert [v for v, _ in got] == [i * i for i in items]
    pids = {pid for _, pid in got}
    assert os.getpid() in pids and len(pids) == 2


def test_small_jobs_and_threaded_processes_stay_in_process() -> None:
    assert {pid for pid in map_in_halves(lambda _: os.getpid(), [1, 2, 3], BIG - 1)} == {os.getpid()}
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert not can_fork()
        assert not twocore.worth_splitting(10 * BIG)
        assert {pid for pid in map_in_halves(lambda _: os.getpid(), [1, 2, 3], BIG)} == {os.getpid()}
    finally:
        stop.set()
        helper.join()


def test_map_in_halves_passes_on_the_first_halfs_error() -> None:
    def work(i: int) -> int:
        if i == 0:
            raise ValueError("first half")
        return i

    with pytest.raises(ValueError, match="first half"):
        list(map_in_halves(work, [0, 1, 2, 3], BIG))


def test_map_in_halves_does_a_dead_childs_half_itself() -> None:
    parent = os.getpid()

    def work(i: int) -> int:
        if os.getpid() != parent:
            os._exit(9)  # the child dies as if killed
        return i * 10

    assert list(map_in_halves(work, [1, 2, 3, 4], BIG)) == [10, 20, 30, 40]


def test_stream_in_halves_spools_the_second_half_to_an_unlinked_file(tmp_path: Path) -> None:
    parent = os.getpid()
    seen: list[int] = []

    def work(i: int) -> bytes:
        seen.append(os.getpid())
        return f"{i}:{'x' * 5000}\n".encode()

    items = list(range(40))
    got = b"".join(stream_in_halves(work, items, BIG, spool_dir=str(tmp_path), split_at=30))
    assert got == b"".join(f"{i}:{'x' * 5000}\n".encode() for i in items)
    assert seen == [parent] * 30  # the child did the last ten; this process only its own
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_stream_in_halves_redoes_a_dead_childs_half(tmp_path: Path) -> None:
    parent = os.getpid()

    def work(i: int) -> bytes:
        if os.getpid() != parent:
            os._exit(9)
        return bytes([65 + i])

    assert b"".join(stream_in_halves(work, list(range(6)), BIG, spool_dir=str(tmp_path))) == b"ABCDEF"
    assert list(tmp_path.iterdir()) == []
