"""A coalescer tree of three levels (sites, regions, top) gives the flat merge of all its leaves.

Every coalescer is a real ncs-coalesce run that fetches its sources over
real sshd; a level's sources are the composites of the level below, printed
by `cat` as docs/coalesce.md lays a tree out.  The leaves share addresses
and disagree on names, so sums, extremes and first-seen name order must all
compose for the top to equal the flat merge.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from tests.coalesce import fleet as lab
from tests.support.sshd import Sshd
from tests.support.stats import read_stats

START = 1_700_000_000
NAMES = ["a.example", "b.example", "c.example", "d.example", ":ns.example"]
# top -> regions -> sites -> leaves (depth first, this is also the flat inventory's order)
TREE = {"region-a": {"site-1": 3, "site-2": 3}, "region-b": {"site-3": 3, "site-4": 3}}


def _coalesce(fleet: lab.Fleet, server: Sshd, path: Path, sources: dict[str, Path], out: Path) -> None:
    """Run one coalescer whose hosts print SOURCES (name -> file) through SERVER; its composite is OUT."""
    path.write_text(yaml.safe_dump({
        "defaults": {"user": "root", "identity": fleet.key.path, "known_hosts": str(fleet.known_hosts),
                     "ssh_agent": False, "ssh_config": False, "connect_timeout": 5, "timeout": 30},
        "hosts": {name: {"address": server.address, "port": server.port, "command": f"cat {file}"}
                  for name, file in sources.items()},
        "cache": str(out)}, sort_keys=False))
    run = lab.run_coalesce("-i", str(path))
    assert run.returncode == 0, run.stderr


def test_three_levels_give_the_flat_merge_of_the_leaves(fleet: lab.Fleet, tmp_path: Path):
    rng = random.Random(21)
    server = fleet.server()
    leaves: dict[str, Path] = {}
    tables = []
    regions: dict[str, Path] = {}
    for region, sites in TREE.items():
        site_files: dict[str, Path] = {}
        for site, count in sites.items():
            site_leaves = {}
            for _ in range(count):
                name = f"leaf-{len(leaves) + 1:02d}"
                # 150 of a pool of 254 addresses: leaves overlap within and across sites
                table = lab.make_records(rng, 150, START + 7 * len(leaves), NAMES)
                tables.append(table)
                leaves[name] = site_leaves[name] = lab.write_stats(
                    tmp_path / f"{name}.stats", table, START + 7 * len(leaves), hits=len(leaves),
                    rate=10 * len(leaves), label=name)
            site_files[site] = tmp_path / f"{site}.stats"
            _coalesce(fleet, server, tmp_path / f"{site}.yaml", site_leaves, site_files[site])
        regions[region] = tmp_path / f"{region}.stats"
        _coalesce(fleet, server, tmp_path / f"{region}.yaml", site_files, regions[region])
    top, flat = tmp_path / "top.stats", tmp_path / "flat.stats"
    _coalesce(fleet, server, tmp_path / "top.yaml", regions, top)
    _coalesce(fleet, server, tmp_path / "flat.yaml", leaves, flat)

    stacked, direct = read_stats(str(top)), read_stats(str(flat))
    want = lab.expected_merge(tables)
    assert lab.as_tuples(direct.records) == want
    assert lab.as_tuples(stacked.records) == want
    assert list(stacked.records) == list(direct.records)
    # the order of the leaves matters for the names: the test would see a wrong order
    assert want != lab.expected_merge(tables[::-1])
    for key in ("hits", "bytes", "users", "start"):
        assert stacked.header_number(key) == direct.header_number(key), key
    assert stacked.header_number("hits") == sum(range(len(leaves)))  # leaf i reports i hits
    assert "[region-b] [site-4] [leaf-12] bpf:\t\thost leaf-12" in stacked.header
    assert stacked.header_value("composite") == "2 sources ok, 0 failed"
