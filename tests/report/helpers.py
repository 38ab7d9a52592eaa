"""Helpers for the report tests: write stats files and run the installed ncs-report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ncs.stats.record import Record
from tests.support.stats import write_atomic

VENV_BIN = Path(sys.executable).parent
NCS_REPORT = str(VENV_BIN / "ncs-report")

#: 2006-04-25 00:02:14 UTC, the "current" time of the fixtures.
NOW = 1145923334


def write_stats(path: Path, header: list[str], records: dict[str, Record]) -> Path:
    """Write RECORDS under HEADER to PATH in address order (the agent's writer); return PATH."""
    from tests.support.stats import sorted_records

    write_atomic(str(path), header, sorted_records(records))
    return path


def run_report(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ncs-report with ARGS in TZ=UTC (unless ENV says another); return the completed process."""
    full_env = {**os.environ, "TZ": "UTC", **(env or {})}
    return subprocess.run(
        [NCS_REPORT, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
        input=stdin,
    )
