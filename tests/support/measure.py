"""Running a program to completion and measuring it: wall time, CPU time and peak RSS.

Linux keeps a process's peak RSS across fork and exec: a child started by a
big process (pytest after a few tests, a benchmark holding data) reports
at least its parent's peak.  So the program is started by a small launcher
process (a fresh Python that forks, execs the program and waits for it
with wait4), whose own peak is the floor instead: about 10 MiB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

# argv[1] is the fd to report on; the program's argv follows.
_LAUNCHER = """
import os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{status} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}".encode())
"""


@dataclass(frozen=True)
class Measured:
    """A finished process: its exit status, output and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: user + system CPU seconds of the process (and of children it waited for)
    cpu: float
    #: peak resident set size in MiB
    peak_rss_mib: float


def run_measured(argv: list[str], timeout: float, **popen) -> Measured:
    """Run ARGV (text output captured) and return what it printed and cost.

    POPEN goes to subprocess.Popen (cwd, env).  Raises
    subprocess.TimeoutExpired after TIMEOUT seconds (the program is killed).
    """
    read_end, write_end = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(write_end), *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, pass_fds=(write_end,),
                                start_new_session=True, **popen)
    finally:
        os.close(write_end)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the program: a session of their own
        proc.communicate()
        os.close(read_end)
        raise
    seconds = time.monotonic() - started
    with os.fdopen(read_end, "rb") as report:
        status, cpu, maxrss = report.read().decode().split()
    return Measured(os.waitstatus_to_exitcode(int(status)), stdout, stderr, seconds, float(cpu),
                    int(maxrss) / 1024)

