"""Dropping root after the capture is open: hand the agent's files to the user, then switch to it."""

from __future__ import annotations

import os
import pwd
import stat
import sys

from ncs.agent.errors import ConfigError


def lookup_user(user: str | int) -> pwd.struct_passwd:
    """Return the passwd entry of USER (a name, or a numeric uid as int or digits).

    Raises ConfigError("config: unknown user 'x'") when there is no such user.
    """
    text = str(user).strip()
    try:
        if text.isdigit():
            return pwd.getpwuid(int(text))
        return pwd.getpwnam(text)
    except (KeyError, OverflowError):
        raise ConfigError(f"config: unknown user '{user}'") from None


def _user_can_write(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    """Return True if the mode bits of ST let uid (with groups gids) write it."""
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def hand_over(path: str, uid: int, gid: int, gids: set[int]) -> str | None:
    """Make PATH writable for uid: chown a file always, a directory only if uid cannot write it yet.

    Returns None when PATH was handed over, is missing or needs nothing;
    otherwise the reason it was left alone.  Directories the user can
    already write (a shared sticky /tmp, a group directory) are left alone:
    chowning them would take them from their owner.

    PATH is opened without following a symlink and the chown goes to what
    was opened, so a link or a hard link the user planted in a directory it
    owns cannot make root give away another file: a symbolic link, a file
    with more than one link and anything but a regular file or a directory
    are left as they are.  (The dumps replace the stats file by renaming,
    which never follows a link.)  Raises OSError when the chown fails.
    """
    try:
        # O_PATH opens nothing for reading: no FIFO blocks, no device acts.
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            return "it is a symbolic link"
        if stat.S_ISDIR(st.st_mode):
            if _user_can_write(st, uid, gids) or path == "/":
                return None
        elif not stat.S_ISREG(st.st_mode):
            return "it is not a regular file"
        elif st.st_nlink != 1:
            return f"it has {st.st_nlink} hard links"
        # fchown() refuses an O_PATH descriptor; its /proc link names exactly the opened inode.
        os.chown(f"/proc/self/fd/{fd}", uid, gid)
        return None
    finally:
        os.close(fd)


def drop_privileges(user: str, writable: list[str]) -> None:
    """Switch this process to USER after handing it the existing paths in WRITABLE.

    WRITABLE holds what the agent writes after the switch (the stats
    directory and file; never the pid file, which stays root's so that the
    user cannot name another process in it); missing paths are skipped, and
    one that `hand_over` leaves alone is named on stderr with the reason.  The process keeps the user's
    supplementary groups and loses all others.  A process that already runs as
    USER does nothing.
    Raises ConfigError for an unknown user, or when a non-root process is asked
    to become another user; OSError when chown or the switch fails.
    """
    entry = lookup_user(user)
    uid, gid = entry.pw_uid, entry.pw_gid
    if os.getuid() == uid and os.geteuid() == uid:
        return
    if os.geteuid() != 0:
        raise ConfigError(f"config: user '{user}': only root can switch to another user")
    gids = set(os.getgrouplist(entry.pw_name, gid))
    for path in writable:
        reason = hand_over(path, uid, gid, gids)
        if reason is not None:
            print(f"ncs-agent: '{path}' not handed over to user '{entry.pw_name}': {reason}",
                  file=sys.stderr, flush=True)
    # groups first, then gid, then uid: once uid is dropped the others cannot change
    os.setgroups(sorted(gids))
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise OSError(f"could not switch to user '{user}'")
