"""What `ncs-agent status` says beyond "running": a one-line note the running agent keeps beside its stats file.

The agent writes the note while something keeps it from capturing (its
interface is down) and removes it when that is over; `status` prints it.
The note lives beside the stats file, the one place the agent may still
write after dropping its privileges.
"""

from __future__ import annotations

import contextlib
import os

from ncs.agent.config import AgentConfig
from ncs.files import replace_file

#: Longest note `read_note` returns: a note is one line; more is not the agent's.
MAX_NOTE = 512


def note_path(cfg: AgentConfig) -> str | None:
    """Return the note's path, `<stats file>.status`, or None when dumps go to stdout."""
    return None if cfg.stats == "-" else cfg.stats_path + ".status"


def write_note(path: str | None, text: str) -> None:
    """Replace the note at PATH with TEXT (one line); a failure to write it is ignored (it is a courtesy)."""
    if path is not None:
        with contextlib.suppress(OSError):
            replace_file(path, [text.replace("\n", " ").encode() + b"\n"])


def clear_note(path: str | None) -> None:
    """Remove the note at PATH, if any."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def read_note(path: str | None) -> str | None:
    """Return the note's line without control characters, or None when there is none."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_NOTE)
    except OSError:
        return None
    text = raw.decode("utf-8", "replace").splitlines()[0] if raw.strip() else ""
    return "".join(c for c in text if c.isprintable()) or None
