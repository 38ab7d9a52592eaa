"""The systemd unit: an unprivileged, sandboxed service, as rated by systemd-analyze security.

No systemd runs as PID 1 on the test machines, so the unit is judged
offline (`systemd-analyze security --offline=yes`, `systemd-analyze
verify`); what it gives the agent (a user with CAP_NET_RAW alone) is run
for real in tests/agent/test_privileges.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "docs" / "ncs-agent@.service"
ANALYZE = shutil.which("systemd-analyze")


def _analyze_version() -> int:
    """Return systemd-analyze's version number (0 when it is missing)."""
    if ANALYZE is None:
        return 0
    out = subprocess.run([ANALYZE, "--version"], capture_output=True, text=True).stdout
    found = re.match(r"systemd (\d+)", out)
    return int(found.group(1)) if found else 0


needs_offline_analyze = pytest.mark.skipif(
    _analyze_version() < 250, reason="systemd-analyze with --offline (systemd 250 or later) is not installed")


def settings(text: str) -> dict[str, list[str]]:
    """Return the unit's KEY=VALUE lines, every value of each key in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_runs_the_agent_as_a_user_with_capture_rights_only() -> None:
    unit = settings(UNIT.read_text())
    assert unit["User"] == ["ncs"] and unit["Group"] == ["ncs"]
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_RAW"] == unit["AmbientCapabilities"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert unit["ExecStart"] == ["/usr/local/bin/ncs-agent -c /etc/ncs/%i.yaml --name %i run"]


@needs_offline_analyze
def test_systemd_analyze_rates_the_unit_under_3(tmp_path: Path) -> None:
    """Issue 10, item 12: the unit was rated 9.6 UNSAFE (root, no sandbox)."""
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    run = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", str(unit)],
                         capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", run.stdout)
    assert found, run.stdout + run.stderr
    assert float(found.group(1)) < 3.0, run.stdout


@needs_offline_analyze
def test_systemd_analyze_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    """Every directive is known to systemd and well formed (an unknown one would only be ignored)."""
    agent = Path(sys.executable).parent / "ncs-agent"
    text = UNIT.read_text().replace("/usr/local/bin/ncs-agent", str(agent))  # verify wants it to exist
    unit = tmp_path / "ncs-agent@verify.service"
    unit.write_text(text)
    run = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")
