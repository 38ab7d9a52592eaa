"""Run a Python entry point as another user holding only chosen capabilities, as a systemd unit's
User= with AmbientCapabilities= and CapabilityBoundingSet= starts a service.

    python -m tests.support.caps USER CAP[,CAP...] MODULE:FUNCTION [--preload MODULE]... -- [ARG...]

Run it as root.  MODULE and every --preload module (a package with all its
modules) are imported first, as root: the interpreter may live where the user may not read (a pyenv under
/root, a checkout under a private home), which `setpriv --reuid` or `capsh
--user` could not exec.  Then the process drops every capability but CAPS
from its bounding set, switches to USER's uid and gid (real, effective and
saved; no supplementary groups) keeping CAPS as its permitted, effective,
inheritable and ambient sets, sets no_new_privs, and calls FUNCTION with
sys.argv = [MODULE, ARG...].  Its return value is the exit status.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pkgutil
import pwd
import sys

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: The capabilities this helper is asked for by name (linux/capability.h).
CAPS = {"net_raw": 13, "net_bind_service": 10, "net_admin": 12}

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    """Raise OSError naming WHAT when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), 0, 0), f"prctl({option})")


def _set_caps(keep: list[int]) -> None:
    """Make KEEP this thread's permitted, effective and inheritable capabilities (capset)."""
    data = (_CapData * 2)()
    for cap in keep:
        word, bit = divmod(cap, 32)
        data[word].effective |= 1 << bit
        data[word].permitted |= 1 << bit
        data[word].inheritable |= 1 << bit
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def become(user: str, keep: list[int]) -> None:
    """Switch this (root) process to USER holding only the capabilities KEEP; raises OSError."""
    entry = pwd.getpwnam(user)
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        if cap not in keep:
            _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_SET_KEEPCAPS, 1)  # the permitted set survives the switch from uid 0
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    _set_caps(keep)
    for cap in keep:
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _import_all(name: str) -> None:
    """Import module NAME and, if it is a package, every module under it."""
    module = importlib.import_module(name)
    for found in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=name + "."):
        importlib.import_module(found.name)


def main(argv: list[str]) -> int:
    """Run the command line described in the module docstring; returns the exit status."""
    user, caps, target, *rest = argv
    preload = []
    while rest and rest[0] == "--preload":
        preload.append(rest[1])
        rest = rest[2:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    module_name, function_name = target.split(":")
    module = importlib.import_module(module_name)
    for name in preload:
        _import_all(name)
    become(user, [CAPS[name] for name in caps.split(",")])
    sys.argv = [module_name, *rest]
    return getattr(module, function_name)()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
