"""Ending the processes a fixture started: by their pid, never by name."""

from __future__ import annotations

import subprocess


def reap(proc: subprocess.Popen, grace: float) -> None:
    """Wait up to GRACE seconds for PROC to end (a signal was sent), then KILL it; it is reaped either way."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop(proc: subprocess.Popen, grace: float) -> None:
    """TERM PROC if it still runs, KILL it after GRACE seconds, and reap it."""
    if proc.poll() is None:
        proc.terminate()
    reap(proc, grace)
