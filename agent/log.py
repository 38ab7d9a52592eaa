"""The agent's log: the standard logging module on stderr, formatted for where stderr goes.

Three destinations, one logger (`ncs.agent`):

- a terminal or a pipe (`ncs-agent run` by hand, the tests): the bare
  message, the one line a person or a script reads;
- the systemd journal (stderr is the stream named by $JOURNAL_STREAM): the
  message behind a `<N>` syslog priority prefix, which journald turns into
  the entry's level;
- a daemon's log file (`start`): a timestamp, the pid and the level before
  the message; the file is appended to, so the reason of a previous crash
  stays.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

LOGGER = "ncs.agent"
#: syslog priorities of the logging levels (journald reads them from a `<N>` prefix)
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}
_FILE_FORMAT = "%(asctime)s ncs-agent[%(process)d] %(levelname)s: %(message)s"
#: What _FILE_FORMAT puts before the message, for reading a log back (`message_of`).
_FILE_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ncs-agent\[\d+\] [A-Z]+: ")

log = logging.getLogger(LOGGER)


class _JournalFormatter(logging.Formatter):
    """`<priority>message`, one entry per line (a multi-line message gets its prefix on every line)."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stderr_is_journal() -> bool:
    """Return whether stderr is the journal stream systemd gave this process."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def configure(to_file: bool = False) -> None:
    """Send the agent's log to stderr, formatted for the journal, a log file (TO_FILE) or a person."""
    handler = logging.StreamHandler(sys.stderr)
    if to_file:
        formatter = logging.Formatter(_FILE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    elif stderr_is_journal():
        formatter = _JournalFormatter("%(message)s")
    else:
        formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def message_of(line: str) -> str:
    """Return the message of a log-file LINE (the line itself when it has no prefix)."""
    return _FILE_PREFIX.sub("", line, count=1)


class Throttle:
    """Log a recurring problem at most once per INTERVAL seconds per key, with how often it recurred."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._missed: dict[str, int] = {}

    def warning(self, key: str, message: str) -> None:
        """Log MESSAGE as a warning unless KEY was logged less than the interval ago (then count it)."""
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            self._missed[key] = self._missed.get(key, 0) + 1
            return
        missed = self._missed.pop(key, 0)
        self._last[key] = now
        log.warning("%s%s", message, f" ({missed} more since the last report)" if missed else "")
