"""The systemd units shipped for coalescer trees are valid for systemd and run ncs-coalesce as it is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ncs.coalesce.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_reads_the_coalescer_units_without_a_complaint(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "ncs-coalesce"
    for name in ("ncs-coalesce@.service", "ncs-coalesce@.timer"):
        text = (DOCS / name).read_text().replace("/usr/local/bin/ncs-coalesce", str(binary))
        (tmp_path / name.replace("@", "@site-paris")).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           str(tmp_path / "ncs-coalesce@site-paris.timer"),
                           str(tmp_path / "ncs-coalesce@site-paris.service")],
                          capture_output=True, text=True)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if "ncs-coalesce@" in line and "/etc/ncs" not in line]
    assert not complaints, complaints


def test_the_service_runs_options_that_ncs_coalesce_takes() -> None:
    text = (DOCS / "ncs-coalesce@.service").read_text()
    command = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    args = command.split()[1:]
    parsed = build_parser().parse_args([a.replace("%i", "site-paris") for a in args])
    assert parsed.quiet and parsed.inventory == "/etc/ncs/coalesce-site-paris.yaml"
