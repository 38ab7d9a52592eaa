"""Packets in: a libpcap handle, live or on a file, delivering batches of frames with their wire lengths.

Each read hands libpcap's frames, complete with their pcap headers, to an
in-memory pcap file (agent.libpcap.DumpSpool), which pcapy-ng's
`next_batch` reads back as one batch (packed frames plus sec, usec,
offset, captured length); the wire lengths come from the same file's
record headers, found by a running sum of the captured lengths.  So no
Python runs per packet, and a read that fails (a damaged file, an
interface gone) still delivers every complete frame read before the
failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pcapy

from ncs.agent.decode import is_supported
from ncs.agent.errors import ConfigError
from ncs.agent.libpcap import (
    FILE_HEADER,
    PCAP_ERROR_IFACE_NOT_UP,
    PCAP_ERROR_NO_SUCH_DEVICE,
    PCAP_ERROR_PERM_DENIED,
    PCAP_ERROR_PROMISC_PERM_DENIED,
    DumpSpool,
    Handle,
    PcapCallError,
    datalink_name,
)

BATCH = 8192  # frames per read
WRAP = 1 << 32  # libpcap's statistics are 32-bit counters that wrap
TIMEOUT_MS = 100  # the live read timeout, which is also when the kernel hands over a part-filled block
RECORD_HEADER = 16  # bytes before each frame in a pcap file: sec, usec, caplen, len
# What pcap_activate's statuses mean for the person starting the agent.
_ACTIVATE_REASONS = {
    PCAP_ERROR_PERM_DENIED: "permission denied (capturing needs root or the CAP_NET_RAW capability)",
    PCAP_ERROR_PROMISC_PERM_DENIED: "permission denied for promiscuous mode "
                                    "(capturing needs root or the CAP_NET_RAW capability)",
    PCAP_ERROR_NO_SUCH_DEVICE: "no such device",
    PCAP_ERROR_IFACE_NOT_UP: "the interface is down",
}


class CaptureError(Exception):
    """The capture could not be opened or read; str() is a one-line message."""


class CaptureDamaged(CaptureError):
    """A capture file's damage: the frames before it were delivered; str() is a one-line message."""


@dataclass
class DropCounter:
    """libpcap's received/dropped counters made monotonic across 32-bit wraps."""

    received: int = 0
    dropped: int = 0
    ifdropped: int = 0
    _last: tuple[int, int, int] = (0, 0, 0)

    def update(self, sample: tuple[int, int, int]) -> None:
        """Fold in a new (recv, drop, ifdrop) sample from pcap stats()."""
        deltas = [(new - old) % WRAP for new, old in zip(sample, self._last, strict=True)]
        self.received += deltas[0]
        self.dropped += deltas[1]
        self.ifdropped += deltas[2]
        self._last = tuple(sample)

    def restart(self) -> None:
        """Start counting from a new handle's zero (after the capture was reopened)."""
        self._last = (0, 0, 0)


@dataclass(frozen=True)
class Frames:
    """One batch: packed frame bytes, pcapy-ng's meta records (sec, usec, offset, caplen) and wire lengths."""

    pkts: bytes
    meta: bytes
    wire: np.ndarray  # int64 length of each frame on the wire (pcap's `len`)

    def __len__(self) -> int:
        return len(self.meta) // 16


NO_FRAMES = Frames(b"", b"", np.empty(0, np.int64))


class Capture:
    """One open capture; `read_batch` returns Frames, empty when nothing waits or the file ended."""

    def __init__(self, handle: Handle, source: str, live: bool, promiscuous: bool) -> None:
        self.handle = handle
        self.source = source
        self.live = live
        self.promiscuous = promiscuous
        self.linktype = handle.datalink()
        self.drops = DropCounter()
        self.spool = DumpSpool(handle)
        self._failure: CaptureError | None = None

    @classmethod
    def open_file(cls, path: str, bpf: str) -> Capture:
        """Open a pcap/pcapng file with BPF applied.

        Raises CaptureError for an unreadable file or a link type the agent
        does not decode, ConfigError for a BPF expression libpcap rejects.
        """
        try:
            handle = Handle.open_offline(path)
        except PcapCallError as err:
            raise CaptureError(f"{path}: cannot read capture: {err}") from None
        return cls._ready(handle, path, bpf, live=False, promiscuous=False)

    @classmethod
    def open_live(cls, device: str, bpf: str, snaplen: int, promiscuous: bool,
                  buffer_size: int) -> Capture:
        """Open DEVICE non-blocking with a kernel buffer of BUFFER_SIZE bytes.

        Raises CaptureError naming what is missing (root or CAP_NET_RAW, the
        device, the interface being up), ConfigError for a rejected BPF.
        """
        try:
            handle = Handle.open_live(device, snaplen, promiscuous, TIMEOUT_MS, buffer_size)
            # A blocking read never returns on an idle link: poll the descriptor instead.
            handle.set_nonblocking()
        except PcapCallError as err:
            reason = _ACTIVATE_REASONS.get(err.status, str(err))
            raise CaptureError(f"device '{device}': cannot capture: {reason}") from None
        return cls._ready(handle, device, bpf, live=True, promiscuous=promiscuous)

    @classmethod
    def _ready(cls, handle: Handle, source: str, bpf: str, live: bool, promiscuous: bool) -> Capture:
        """Check HANDLE's link type, set the filter and return the Capture (closing HANDLE on error)."""
        try:
            linktype = handle.datalink()
            if not is_supported(linktype):
                name = datalink_name(linktype)
                raise CaptureError(f"{source}: link type {linktype}{f' ({name})' if name else ''}"
                                   " is not one the agent decodes")
            try:
                handle.set_filter(bpf)
            except PcapCallError as err:
                raise ConfigError(f"config: bad bpf expression '{bpf}': {err}") from None
            return cls(handle, source, live, promiscuous)
        except BaseException:
            handle.close()
            raise

    def fileno(self) -> int:
        """Return the descriptor to select on."""
        return self.handle.fileno()

    def read_batch(self, max_frames: int = BATCH) -> Frames:
        """Return up to MAX_FRAMES frames; empty when nothing waits or the file has ended.

        When a read fails, the frames read before the failure are returned
        first and the next call raises: CaptureDamaged for a file, CaptureError
        for a live capture.
        """
        if self._failure is not None:
            raise self._failure
        count, error = self.spool.dispatch(max_frames)
        frames = self._spooled(count or max_frames) if count != 0 else NO_FRAMES
        if error is not None:
            kind = CaptureError if self.live else CaptureDamaged
            what = "capture failed" if self.live else "damaged capture file"
            self._failure = kind(f"{self.source}: {what}: {error}")
            if not len(frames):
                raise self._failure
        return frames

    def _spooled(self, count: int) -> Frames:
        """Return the spool's first COUNT frames (or fewer: all there are), batched by pcapy-ng,
        wire lengths from their record headers."""
        try:
            reader = pcapy.open_offline(self.spool.path)
            try:
                pkts, meta = reader.next_batch(count)
            finally:
                reader.close()
        except pcapy.PcapError as err:  # what libpcap wrote, it reads back: this would be a bug of ours
            raise CaptureError(f"{self.source}: cannot read back the frames read: {err}") from None
        caplen = np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4)[:, 3].astype(np.int64)
        starts = FILE_HEADER + np.concatenate(([0], np.cumsum(caplen + RECORD_HEADER)[:-1]))
        spool = self.spool.read()
        # every 4 bytes of the spool as a native uint32, at any byte offset: one gather
        words = np.ndarray(shape=(len(spool) - 3,), dtype="=u4", buffer=spool, strides=(1,))
        return Frames(pkts, meta, words[starts + 12].astype(np.int64))

    def sample_drops(self) -> DropCounter:
        """Refresh and return the drop counters (live captures only)."""
        if self.live and self.handle.ptr:  # a closed handle (interface gone) has nothing new
            try:
                self.drops.update(self.handle.stats())
            except PcapCallError:
                pass
        return self.drops

    def close(self) -> None:
        """Release the spool and the handle (idempotent)."""
        self.spool.close()
        self.handle.close()
