"""The wheel: everything installs under the one name `ncs`, and works from there alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         "--disable-pip-version-check", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("ncs-*.whl")
    return built


def test_wheel_holds_nothing_outside_ncs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("ncs/", "ncs-"))]
    assert outside == []
    # every source module is in it, under its installed name
    folders = {"ncs": "ncs", "agent": "ncs/agent", "report": "ncs/report", "coalesce": "ncs/coalesce"}
    sources = {str(Path(folders[p.relative_to(REPO).parts[0]], *p.relative_to(REPO).parts[1:]))
               for top in folders for p in (REPO / top).rglob("*.py")}
    assert sources - set(names) == set()
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for program in ("ncs-agent = ncs.agent.cli:main", "ncs-report = ncs.report.cli:main",
                    "ncs-coalesce = ncs.coalesce.cli:main"):
        assert program in entry_points


def test_every_module_imports_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    """No module reaches for a top-level `agent`, `report` or `coalesce` (the checkout's folders)."""
    zipfile.ZipFile(wheel).extractall(tmp_path)
    modules = sorted(str(p.relative_to(tmp_path).with_suffix("")).replace("/", ".")
                     for p in (tmp_path / "ncs").rglob("*.py"))
    modules = [m.removesuffix(".__init__") for m in modules]
    code = (
        "import importlib, sys\n"
        f"root = {str(tmp_path)!r}\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    assert module.__file__.startswith(root), (name, module.__file__)\n"
        "leaked = [m for m in sys.modules if m.split('.')[0] in ('agent', 'report', 'coalesce')]\n"
        "assert not leaked, leaked\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *modules], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
