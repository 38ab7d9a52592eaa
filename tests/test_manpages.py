"""The manual pages in docs/man are what tools/make_manpages.py writes from the current parsers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_committed_man_pages_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "tools" / "make_manpages.py"), str(tmp_path)],
                   check=True, timeout=60)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["ncs-agent.1", "ncs-coalesce.1", "ncs-report.1"]
    for name in made:
        assert (REPO / "docs" / "man" / name).read_text() == (tmp_path / name).read_text(), \
            f"docs/man/{name} is stale: run .venv/bin/python tools/make_manpages.py"


@pytest.mark.parametrize("name", ["ncs-agent.1", "ncs-coalesce.1", "ncs-report.1"])
def test_man_pages_render_with_every_option_and_its_default(name: str) -> None:
    if shutil.which("man") is None:
        pytest.skip("man is not installed")
    text = subprocess.run(["man", "-l", str(REPO / "docs" / "man" / name)], capture_output=True,
                          text=True, check=True, timeout=60, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"}).stdout
    assert "%(default)" not in text and "SYNOPSIS" in text and "EXAMPLES" in text
    if name == "ncs-report.1":
        assert "--top N" in text and "(default: 100)" in text and "--watch" in text
