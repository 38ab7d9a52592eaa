"""Dropping root after the capture is open: hand the agent's files to the user, then switch to it."""

from __future__ import annotations

import os
import pwd
import stat

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


def _hand_over(path: str, uid: int, gid: int, gids: set[int]) -> None:
    """Make PATH writable for uid: chown a file always, a directory only if uid cannot write it yet.

    Directories the user can already write (a shared sticky /tmp, a group
    directory) are left alone: chowning them would take them from their owner.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) and (_user_can_write(st, uid, gids) or path == "/"):
        return
    os.chown(path, uid, gid)


def drop_privileges(user: str, writable: list[str]) -> None:
    """Switch this process to USER after handing it the existing paths in WRITABLE.

    WRITABLE holds what the agent writes after the switch (stats directory and
    file, pid file); missing paths are skipped.  The process keeps the user's
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
        _hand_over(path, uid, gid, gids)
    # groups first, then gid, then uid: once uid is dropped the others cannot change
    os.setgroups(sorted(gids))
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise OSError(f"could not switch to user '{user}'")
