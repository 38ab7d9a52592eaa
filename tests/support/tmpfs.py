"""Small tmpfs mounts of a test's own, so that writes fail with ENOSPC for real: the `tmpfs` fixture."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Yield mount(SIZE, MODE="0755") -> Path: a fresh tmpfs of SIZE ("64k", "256k") under tmp_path.

    Every file system mounted is unmounted after the test.  Skips when the
    test is not root or the kernel refuses the mount.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(size: str, mode: str = "0755") -> Path:
        point = tmp_path / f"tmpfs-{len(mounted)}"
        point.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode}", "ncs-test-tmpfs",
                              str(point)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in reversed(mounted):
            # lazy: a process the test started may still hold a file open there
            subprocess.run(["umount", "-l", str(point)], check=False)
