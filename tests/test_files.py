"""Shared file helpers on real files: freshness and waiting for a file to be rewritten."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ncs.files import file_id, is_fresh, mtime_ns, replace_file, wait_rewritten


def rewrite_later(path: Path, data: bytes, delay: float) -> threading.Thread:
    """Replace PATH with DATA (atomically, as the agent does) after DELAY seconds, in a thread."""
    thread = threading.Thread(target=lambda: (time.sleep(delay), replace_file(str(path), [data])))
    thread.start()
    return thread


def test_freshness(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert not is_fresh(str(path), 60) and mtime_ns(str(path)) == 0
    path.write_text("x")
    assert is_fresh(str(path), 60)
    assert not is_fresh(str(path), 0)  # 0: never fresh
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not is_fresh(str(path), 60)
    assert is_fresh(str(path), 60, now=old + 30)


def test_wait_sees_the_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_bytes(b"before")
    before = file_id(str(path))
    writer = rewrite_later(path, b"after", 0.2)
    started = time.monotonic()
    assert wait_rewritten(str(path), before, 5.0)
    assert time.monotonic() - started < 4.0
    writer.join()
    assert path.read_bytes() == b"after"


def test_wait_sees_a_new_file_with_the_old_time_and_size(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_bytes(b"same")
    before = file_id(str(path))
    assert before is not None
    replace_file(str(path), [b"same"])
    os.utime(path, ns=(before.mtime_ns, before.mtime_ns))
    assert wait_rewritten(str(path), before, 0.0)  # the rename gave it a new inode


def test_wait_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "new"
    assert file_id(str(path)) is None
    writer = rewrite_later(path, b"first", 0.1)
    assert wait_rewritten(str(path), None, 5.0)
    writer.join()


def test_wait_times_out_on_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_bytes(b"x")
    started = time.monotonic()
    assert not wait_rewritten(str(path), file_id(str(path)), 0.3)
    assert 0.3 <= time.monotonic() - started < 2.0


def test_wait_gives_up_when_told(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_bytes(b"x")
    looks: list[int] = []

    def writer_died() -> bool:
        looks.append(1)
        return len(looks) >= 3

    started = time.monotonic()
    assert not wait_rewritten(str(path), file_id(str(path)), 30.0, give_up=writer_died)
    assert time.monotonic() - started < 2.0 and len(looks) == 3
