"""Packets in: a pcapy-ng reader, live or from a file, delivering batches of frames."""

from __future__ import annotations

from dataclasses import dataclass

import pcapy

from ncs.agent.errors import ConfigError

BATCH = 8192  # frames per next_batch call
WRAP = 1 << 32  # libpcap's statistics are 32-bit counters that wrap


class CaptureError(Exception):
    """The capture could not be opened or read; str() is a one-line message."""


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


class Capture:
    """One open pcap handle; `read_batch` returns pcapy-ng's (packet bytes, packed meta)."""

    def __init__(self, reader, source: str, live: bool, promiscuous: bool) -> None:
        self.reader = reader
        self.source = source
        self.live = live
        self.promiscuous = promiscuous
        self.linktype = reader.datalink()
        self.drops = DropCounter()

    @classmethod
    def open_file(cls, path: str, bpf: str) -> Capture:
        """Open a pcap/pcapng file with BPF applied.  Raises CaptureError."""
        try:
            reader = pcapy.open_offline(path)
        except pcapy.PcapError as err:
            raise CaptureError(f"{path}: cannot read capture: {err}") from None
        _set_filter(reader, bpf)
        return cls(reader, path, live=False, promiscuous=False)

    @classmethod
    def open_live(cls, device: str, bpf: str, snaplen: int, promiscuous: bool,
                  buffer_size: int) -> Capture:
        """Open DEVICE non-blocking with a kernel buffer of BUFFER_SIZE bytes.  Raises CaptureError."""
        try:
            reader = pcapy.create(device)
            reader.set_snaplen(snaplen)
            reader.set_promisc(promiscuous)
            reader.set_timeout(100)
            reader.set_buffer_size(buffer_size)
            reader.activate()
            # A blocking read never returns on an idle link with the bundled
            # libpcap: poll the descriptor instead.
            reader.setnonblock(True)
        except pcapy.PcapError as err:
            raise CaptureError(f"device '{device}': cannot capture: {err}") from None
        _set_filter(reader, bpf)
        return cls(reader, device, live=True, promiscuous=promiscuous)

    def fileno(self) -> int:
        return self.reader.getfd()

    def read_batch(self, max_frames: int = BATCH) -> tuple[bytes, bytes]:
        """Return up to MAX_FRAMES frames; empty meta means end of file or nothing waiting."""
        try:
            return self.reader.next_batch(max_frames)
        except pcapy.PcapError as err:
            if self.live:
                raise CaptureError(f"{self.source}: capture failed: {err}") from None
            raise CaptureError(f"{self.source}: damaged capture file: {err}") from None

    def sample_drops(self) -> DropCounter:
        """Refresh and return the drop counters (live captures only)."""
        if self.live:
            try:
                self.drops.update(self.reader.stats())
            except pcapy.PcapError:
                pass
        return self.drops

    def close(self) -> None:
        try:
            self.reader.close()
        except (AttributeError, pcapy.PcapError):
            pass


def _set_filter(reader, bpf: str) -> None:
    try:
        reader.setfilter(bpf)
    except (pcapy.PcapError, pcapy.BPFError) as err:
        raise ConfigError(f"config: bad bpf expression '{bpf}': {err}") from None
