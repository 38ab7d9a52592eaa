"""Telling glibc's allocator to keep few arenas: for long multi-threaded runs of bulk work.

ncs-coalesce reads a host's table in one thread while others wait on the
network, and drops each table once merged.  glibc gives every thread that
allocates its own arena (up to eight per core), and memory freed in one
arena serves only that arena: the tables read by eight threads leave eight
heaps' worth of free memory behind.  With two arenas, the fleet benchmark
(300 hosts x 10,000 records) peaked at 537 MB instead of 622, and the merge
of 100 x 50,000 records at 718-723 MiB instead of 773-782, for the same CPU
time.  (A fixed 128 KiB mmap threshold, which hands every big array back at
once, saved 10 MB more but doubled the CPU time: every such array was then
mapped and faulted in afresh.)
"""

from __future__ import annotations

import ctypes

#: mallopt's parameter for the number of arenas (malloc.h)
_M_ARENA_MAX = -8
ARENAS = 2


def few_arenas() -> bool:
    """Limit glibc to ARENAS malloc arenas; call before threads start.

    Returns whether the C library took it (False where it is not glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_ARENA_MAX, ARENAS))
