"""The README's first command, `bash tools/demo`, run as written in a copy of the tree."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.stats import read_stats

REPO = Path(__file__).resolve().parent.parent


def _registrable(name: str) -> str:
    """Return the registrable domain of one of the demo's names (all under example.*, one .co.uk)."""
    return ".".join(name.split(".")[-3 if name.endswith(".co.uk") else -2:])


def test_the_demo_replays_the_sample_with_names_and_reports_by_domain(tmp_path: Path) -> None:
    # A copy of what the demo uses, beside this test run's venv: the demo
    # writes demo-out/ into its tree, and other runs share the checkout.
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO / "tools" / "demo", tmp_path / "tools" / "demo")
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    run = subprocess.run(["bash", "tools/demo"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "140"})
    assert run.returncode == 0, run.stderr

    stats = read_stats(str(tmp_path / "demo-out" / "sample.stats"))
    known = runpy.run_path(str(REPO / "samples" / "ptr_server.py"))["NAMES"]
    named = {a: sorted(r.N) for a, r in stats.records.items() if a in known}
    # every peer the name server knows got exactly its names through the
    # agent's resolver (a PTR set has no order)
    assert len(named) == 28 and named == {a: sorted(known[a]) for a in named}
    others = [r.N for a, r in stats.records.items() if a not in known]
    assert all(n == [":ns1.example.org"] or n == [] for n in others), others

    by_network, by_domain = run.stdout.split("by registrable domain")
    assert "ec2-192-0-2-1.compute-1.cloud.example.com" in by_network and "192.0.2.0/24" in by_network
    domains = {_registrable(n) for names in named.values() for n in names}
    assert len(domains) == 5
    for domain in domains:
        assert domain in by_domain, domain
    html = (tmp_path / "demo-out" / "report.html").read_text()
    assert "192.0.2.0/24" in html and "ec2-192-0-2-1.compute-1.cloud.example.com" in html
