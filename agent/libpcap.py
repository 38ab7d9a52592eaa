"""libpcap's own capture handles through ctypes: the calls pcapy-ng does not expose in a usable form.

pcapy-ng delivers frames in batches (`next_batch`), but its batch records
hold each frame's captured length only, not the length it had on the wire
(`struct pcap_pkthdr.len`), and `activate()` returns its error status as
a number that is easy to ignore.  The agent needs both: the wire length is
what it counts when an IP header's length field is 0 or longer than the
frame (docs/formats.md), and a capture without the right must say so.

So the agent opens its handles here, on the libpcap that the pcapy-ng wheel
carries (or the system's), and reads them with `pcap_dispatch` handing each
frame to libpcap's own `pcap_dump`: the frames of one call land, with their
complete headers, in an in-memory pcap file (`DumpSpool`), which
agent/capture.py then reads back in one batch.  Nothing here runs Python
per packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import mmap
import os
from dataclasses import dataclass

ERRBUF_SIZE = 256
#: pcap_activate's negative statuses that name a cause (pcap/pcap.h).
PCAP_ERROR = -1
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_PERM_DENIED = -8
PCAP_ERROR_IFACE_NOT_UP = -9
PCAP_ERROR_PROMISC_PERM_DENIED = -11
#: Bytes of a pcap file's header, where pcap_dump_fopen's records start.
FILE_HEADER = 24
_SEEK_SET = 0


class PcapCallError(Exception):
    """A libpcap call failed; `status` is its return value and str() libpcap's reason."""

    def __init__(self, reason: str, status: int = PCAP_ERROR) -> None:
        super().__init__(reason)
        self.status = status


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _PcapStat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


def _library_path() -> str:
    """Return the libpcap to load: the pcapy-ng wheel's copy, else the system's.

    Raises PcapCallError when neither is found.
    """
    import pcapy  # only to find the wheel's directory

    bundled = glob.glob(os.path.join(os.path.dirname(pcapy.__file__), "pcapy_ng.libs", "libpcap*.so*"))
    if bundled:
        return sorted(bundled)[0]
    found = ctypes.util.find_library("pcap")
    if found is None:
        raise PcapCallError("libpcap not found (neither in the pcapy-ng wheel nor on the system)")
    return found


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Give LIB's functions their C signatures; returns LIB."""
    p, i, s, v = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, None
    signatures = {
        "pcap_create": (p, [s, s]),
        "pcap_open_offline": (p, [s, s]),
        "pcap_set_snaplen": (i, [p, i]),
        "pcap_set_promisc": (i, [p, i]),
        "pcap_set_timeout": (i, [p, i]),
        "pcap_set_buffer_size": (i, [p, i]),
        "pcap_activate": (i, [p]),
        "pcap_statustostr": (s, [i]),
        "pcap_geterr": (s, [p]),
        "pcap_setnonblock": (i, [p, i, s]),
        "pcap_get_selectable_fd": (i, [p]),
        "pcap_datalink": (i, [p]),
        "pcap_datalink_val_to_name": (s, [i]),
        "pcap_snapshot": (i, [p]),
        "pcap_compile": (i, [p, ctypes.POINTER(_BpfProgram), s, i, ctypes.c_uint32]),
        "pcap_setfilter": (i, [p, ctypes.POINTER(_BpfProgram)]),
        "pcap_freecode": (v, [ctypes.POINTER(_BpfProgram)]),
        "pcap_stats": (i, [p, ctypes.POINTER(_PcapStat)]),
        "pcap_dump_fopen": (p, [p, p]),
        "pcap_dump_flush": (i, [p]),
        "pcap_dump_ftell": (ctypes.c_long, [p]),
        "pcap_dump_close": (v, [p]),
        "pcap_dispatch": (i, [p, i, p, p]),
        "pcap_close": (v, [p]),
    }
    for name, (restype, argtypes) in signatures.items():
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, argtypes
    return lib


_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fdopen.restype, _libc.fdopen.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p]
_libc.fseek.restype, _libc.fseek.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
_libc.setvbuf.restype = ctypes.c_int
_libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
_IOFBF = 0
#: The spool's stdio buffer: one write to the memory file per this many bytes
#: of frames, instead of one per 4 KiB page.
SPOOL_BUFFER = 1 << 20


def lib() -> ctypes.CDLL:
    """Return libpcap, loaded and declared on first use.  Raises PcapCallError if absent."""
    global _lib
    if _lib is None:
        _lib = _declare(ctypes.CDLL(_library_path()))
    return _lib


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace").strip()


def datalink_name(linktype: int) -> str:
    """Return libpcap's name of LINKTYPE (e.g. 'EN10MB'), or '' when it has none."""
    return _text(lib().pcap_datalink_val_to_name(linktype))


@dataclass
class Handle:
    """One activated (live) or opened (file) pcap_t; `close` releases it."""

    ptr: int

    @classmethod
    def open_offline(cls, path: str) -> Handle:
        """Open a pcap or pcapng file.  Raises PcapCallError with libpcap's reason."""
        err = ctypes.create_string_buffer(ERRBUF_SIZE)
        ptr = lib().pcap_open_offline(os.fsencode(path), err)
        if not ptr:
            raise PcapCallError(_text(err.value))
        return cls(ptr)

    @classmethod
    def open_live(cls, device: str, snaplen: int, promiscuous: bool, timeout_ms: int,
                  buffer_size: int) -> Handle:
        """Create and activate a capture on DEVICE.

        Raises PcapCallError whose `status` is pcap_activate's (for example
        PCAP_ERROR_PERM_DENIED) and whose text is libpcap's reason.
        """
        err = ctypes.create_string_buffer(ERRBUF_SIZE)
        pcap = lib()
        ptr = pcap.pcap_create(device.encode(), err)
        if not ptr:
            raise PcapCallError(_text(err.value))
        handle = cls(ptr)
        pcap.pcap_set_snaplen(ptr, snaplen)
        pcap.pcap_set_promisc(ptr, int(promiscuous))
        pcap.pcap_set_timeout(ptr, timeout_ms)
        pcap.pcap_set_buffer_size(ptr, buffer_size)
        status = pcap.pcap_activate(ptr)
        if status < 0:
            # The generic error carries its detail in geterr; the named ones in statustostr.
            detail = _text(pcap.pcap_geterr(ptr)) or _text(pcap.pcap_statustostr(status))
            handle.close()
            raise PcapCallError(detail, status)
        return handle

    def _error(self) -> str:
        return _text(lib().pcap_geterr(self.ptr))

    def set_nonblocking(self) -> None:
        """Make reads return at once when nothing waits.  Raises PcapCallError."""
        err = ctypes.create_string_buffer(ERRBUF_SIZE)
        if lib().pcap_setnonblock(self.ptr, 1, err) < 0:
            raise PcapCallError(_text(err.value))

    def set_filter(self, expression: str) -> None:
        """Compile EXPRESSION for this handle's link type and install it.  Raises PcapCallError."""
        program = _BpfProgram()
        pcap = lib()
        if pcap.pcap_compile(self.ptr, ctypes.byref(program), expression.encode(), 1, 0) < 0:
            raise PcapCallError(self._error())
        try:
            if pcap.pcap_setfilter(self.ptr, ctypes.byref(program)) < 0:
                raise PcapCallError(self._error())
        finally:
            pcap.pcap_freecode(ctypes.byref(program))

    def fileno(self) -> int:
        """Return the descriptor to select on (-1 for a file)."""
        return lib().pcap_get_selectable_fd(self.ptr)

    def datalink(self) -> int:
        """Return the handle's link type (DLT_* value)."""
        return lib().pcap_datalink(self.ptr)

    def snaplen(self) -> int:
        """Return the handle's snap length (a file's, from its header)."""
        return lib().pcap_snapshot(self.ptr)

    def stats(self) -> tuple[int, int, int]:
        """Return libpcap's (received, dropped, dropped by the interface).  Raises PcapCallError."""
        stat = _PcapStat()
        if lib().pcap_stats(self.ptr, ctypes.byref(stat)) < 0:
            raise PcapCallError(self._error())
        return stat.ps_recv, stat.ps_drop, stat.ps_ifdrop

    def close(self) -> None:
        """Release the handle (idempotent)."""
        if self.ptr:
            lib().pcap_close(self.ptr)
            self.ptr = 0


class DumpSpool:
    """An in-memory pcap file that `dispatch` fills with the frames of one read, headers complete.

    After each `dispatch` the file starts with the 24-byte pcap header and
    the frames of that call; `path` opens it for reading (libpcap's file
    reader turns it into a batch) and `read` returns those bytes.  The file
    is not shortened after a read that went well (its pages stay, rather
    than being freed and faulted in again by the next read): a reader takes
    as many frames as `dispatch` counted.
    """

    def __init__(self, handle: Handle) -> None:
        """Open the spool for HANDLE's link type and snap length.  Raises PcapCallError or OSError."""
        self.handle = handle
        self.fd = os.memfd_create("ncs-frames", os.MFD_CLOEXEC)
        self._file = _libc.fdopen(os.dup(self.fd), b"w+b")
        if not self._file:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), "fdopen of the frame spool failed")
        _libc.setvbuf(self._file, None, _IOFBF, SPOOL_BUFFER)
        self._map: mmap.mmap | None = None  # the file mapped for `read`, remapped when it grew
        self._dumper = lib().pcap_dump_fopen(handle.ptr, self._file)
        if not self._dumper:
            os.close(self.fd)
            raise PcapCallError(handle._error())
        self._dump = ctypes.cast(lib().pcap_dump, ctypes.c_void_p).value
        self.size = FILE_HEADER

    @property
    def path(self) -> str:
        """Return a path that opens the spool (for libpcap's file reader)."""
        return f"/proc/self/fd/{self.fd}"

    def dispatch(self, max_frames: int) -> tuple[int | None, str | None]:
        """Read up to MAX_FRAMES frames into the spool, replacing the last read's.

        Returns (frames, error): FRAMES is how many frames the spool holds,
        0 when none, or None when only the spool's end says it (then the
        file ends after the last frame); ERROR is libpcap's reason when the
        read failed (a damaged file, an interface gone), else None.  The
        frames read before a failure are in the spool.
        """
        pcap = lib()
        _libc.fseek(self._file, FILE_HEADER, _SEEK_SET)
        status = pcap.pcap_dispatch(self.handle.ptr, max_frames, self._dump, self._dumper)
        pcap.pcap_dump_flush(self._dumper)
        self.size = pcap.pcap_dump_ftell(self._dumper)
        error = (self.handle._error() or "read error") if status == PCAP_ERROR else None
        if status > 0:
            return status, None
        if self.size == FILE_HEADER:
            return 0, error
        # A file's last read returns 0 (end of file) or an error after the frames it
        # delivered, without their number: the reader then reads the spool to its end.
        os.ftruncate(self.fd, self.size)
        return None, error

    def read(self) -> memoryview:
        """Return the spool's bytes (header and frames) of the last read, valid until the next.

        The bytes are the file's own pages, mapped: nothing is copied.
        """
        if self._map is None or len(self._map) < self.size:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self.fd, self.size, prot=mmap.PROT_READ)
        return memoryview(self._map)[:self.size]

    def close(self) -> None:
        """Close the spool (idempotent)."""
        if self._dumper:
            lib().pcap_dump_close(self._dumper)  # closes the FILE and its descriptor
            self._dumper = None
            if self._map is not None:
                self._map.close()
            os.close(self.fd)
