"""Generated fleet sources: the stats file of host H of a fleet, fast, from a few base files.

Writing 1,000 files of 50,000 records with the writer would take minutes
and gigabytes, so a fleet is made of BASES base tables (written once into
bench/data/, reused by later runs) and variants of them: host H is base
H % BASES with the first octet of its IPv4 addresses and the second group
of its IPv6 addresses changed to variant H // BASES (`host_bytes`), a byte
substitution that keeps the file in the layout and order ncs writes.

- distinct: base k holds addresses k*R .. k*R + R - 1, so every host's
  addresses are its own (the composite holds every source record).
- pool: every base draws its R addresses from the same POOL // VARIANTS
  addresses, so hosts of one variant share most of theirs (each address is
  seen by about BASES * R / (POOL // VARIANTS) hosts) and the composite
  holds about POOL addresses.

Every 10th address is IPv6 (2001:db8:X:Y::1, each in its own /64); 60 % of
the addresses have one PTR name of 20-30 characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.writer import write_stats

START = 1_700_000_000
#: variants of one base: the first octet 10..99 (two digits keep the text's length)
MAX_VARIANTS = 90


@dataclass(frozen=True)
class Fleet:
    """HOSTS hosts of RECORDS records each: distinct addresses, or drawn from a pool of POOL."""

    hosts: int
    records: int
    pool: int | None = None  # None: every address distinct
    bases: int = 20

    @property
    def variants(self) -> int:
        """Return how many variants of each base the fleet uses."""
        return -(-self.hosts // self.bases)

    def check(self) -> None:
        """Raise ValueError for a fleet the generator cannot make."""
        if self.variants > MAX_VARIANTS:
            raise ValueError(f"{self.hosts} hosts need more than {MAX_VARIANTS} variants of "
                             f"{self.bases} bases: raise --bases")
        span = self.bases * self.records if self.pool is None else self.pool // self.variants
        if span >= 1 << 24 or (self.pool is not None and span < self.records):
            raise ValueError(f"a variant's {span} addresses do not fit {self.records} records "
                             "per host in 10.0.0.0/8")

    def directory(self, data: Path) -> Path:
        """Return where the base files live."""
        kind = "distinct" if self.pool is None else f"pool{self.pool}v{self.variants}"
        return data / f"fleet-bases-{self.bases}x{self.records}-{kind}"

    def base_paths(self, data: Path) -> list[Path]:
        """Return the base files, written first if missing."""
        self.check()
        directory = self.directory(data)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"base{k:03d}.stats" for k in range(self.bases)]
        for k, path in enumerate(paths):
            if not path.exists():
                write_stats(str(path), self.base_table(k))
        return paths

    def base_table(self, k: int) -> StatsColumns:
        """Return base table K."""
        rng = np.random.default_rng(k)
        if self.pool is None:
            index = np.arange(k * self.records, (k + 1) * self.records, dtype=np.uint64)
        else:
            span = self.pool // self.variants
            index = np.sort(rng.choice(span, self.records, replace=False)).astype(np.uint64)
        is6 = index % np.uint64(10) == np.uint64(9)
        hi = np.where(is6, (np.uint64(0x20010DB8) << np.uint64(32)) | ((index >> np.uint64(16))
                                                                        << np.uint64(16))
                      | (index & np.uint64(0xFFFF)), np.uint64(0))
        lo = np.where(is6, np.uint64(1), np.uint64(10 << 24) + index)
        keys = AddressKeys(is6, hi.astype(np.uint64), lo.astype(np.uint64))
        order = keys.order()
        keys, index = keys.take(order), index[order]
        n = self.records
        e = START + rng.integers(0, 80_000, n)
        numbers = {"B": rng.integers(40, 10**7, n), "C": rng.integers(1, 10**4, n), "E": e,
                   "L": e + rng.integers(0, 300, n),
                   "R": rng.integers(0, 10**5, n), "S": START - rng.integers(0, 900, n),
                   "T": e + 86_400, "W": rng.integers(0, 10**8, n)}
        names = [[f"host-{i}.example{i % 97}.net"] if i % 5 < 3 else NO_NAMES
                 for i in index.tolist()]
        header = ["ncs version 1.0.0", f"start:\t{START},\tx", f"current:\t{START + 86_400},\tx",
                  "hits:\t\t100 per minute", "bytes:\t1000 per second", f"users:\t{n}",
                  "device:\teth0\tnon-promiscuous", f"bpf:\t\thost base{k}"]
        return StatsColumns(header, keys, numbers, names)


def host_bytes(base: bytes, variant: int) -> bytes:
    """Return host text from a BASE file's bytes: variant VARIANT of its addresses (0: as it is)."""
    if variant == 0:
        return base
    return (base.replace(b"\t'10.", b"\t'%d." % (10 + variant))
            .replace(b"\t'2001:db8:", b"\t'2001:d%02x:" % variant))


class BasesOnDisk(Sequence[bytes]):
    """The base files' bytes, read from disk each time one is asked for.

    A benchmark of the coalescer's memory must not count the generator's:
    holding 20 bases of 50,000 records would add 190 MiB to the peak of
    the process that merges them.
    """

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, k):  # type: ignore[override]
        return self._paths[k].read_bytes()


def fleet_bytes(fleet: Fleet, bases: Sequence[bytes], host: int) -> bytes:
    """Return the stats file of HOST of FLEET, given the bytes of its base files."""
    return host_bytes(bases[host % fleet.bases], host // fleet.bases)
