"""The import graph of the ncs modules: no cycles, and imports flow one way between the programs.

Every `import` and `from ... import` inside the ncs namespace counts, at the
top of a module or inside a function, read from the source (nothing is run).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = ("ncs.agent", "ncs.report", "ncs.coalesce")
# (importer, imported): what may not import what.  coalesce -> report -> shared
# and agent -> shared are the only ways allowed between these.
FORBIDDEN = [
    ("ncs.agent", "ncs.report"),
    ("ncs.agent", "ncs.coalesce"),
    ("ncs.report", "ncs.agent"),
    ("ncs.report", "ncs.coalesce"),
]


def package_dirs() -> dict[str, Path]:
    """Return {package: folder} from pyproject.toml's package-dir (the programs live outside ncs/)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {package: REPO / folder for package, folder in mapping.items()}


def modules() -> dict[str, Path]:
    """Return {module name: source file} for every module of the ncs namespace."""
    found: dict[str, Path] = {}
    dirs = package_dirs()
    for package, folder in dirs.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(p.startswith(".") for p in parts):
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found.setdefault(name, path)
    return found


def is_package(name: str, known: dict[str, Path]) -> bool:
    """Return True if module NAME is a package (its source is an __init__.py)."""
    return known[name].name == "__init__.py"


def imported_names(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Yield the ncs modules that MODULE's source imports, anywhere in it."""
    package = module if is_package(module, known) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"  # `from ncs import dumpport` imports a module


def graph() -> dict[str, set[str]]:
    """Return {module: the ncs modules it imports} (names that are not modules are left out)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        targets = {name for name in imported_names(module, path, known)
                   if name in known and name != module}
        edges[module] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of EDGES as [a, b, ..., a], or None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def within(module: str, package: str) -> bool:
    """Return True if MODULE is PACKAGE or inside it."""
    return module == package or module.startswith(package + ".")


def test_every_module_is_seen() -> None:
    known = modules()
    for name in ("ncs", "ncs.stats", "ncs.files", "ncs.hostport", "ncs.settings", "ncs.kinds", "ncs.agent.config",
                 "ncs.report.cli", "ncs.coalesce.inventory"):
        assert name in known, name


def test_no_import_cycle() -> None:
    assert find_cycle(graph()) is None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


def test_shared_modules_import_no_program() -> None:
    for module, targets in graph().items():
        if any(within(module, program) for program in PROGRAMS):
            continue
        wrong = sorted(t for t in targets if any(within(t, p) for p in PROGRAMS))
        assert wrong == [], f"{module} imports {wrong}"


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_programs_import_one_way(importer: str, imported: str) -> None:
    for module, targets in graph().items():
        if within(module, importer):
            wrong = sorted(t for t in targets if within(t, imported))
            assert wrong == [], f"{module} imports {wrong}"


@pytest.mark.parametrize("program", [*(f"{p}.cli" for p in PROGRAMS), "ncs.agent.runner"])
def test_numpy_starts_no_openblas_threads(program: str) -> None:
    """Each program imports numpy without OpenBLAS's worker threads (ncs does no linear
    algebra, and their start-up costs 0.1 s of CPU a run); a value the user set wins."""
    script = f"import os, {program}, numpy; print(len(os.listdir('/proc/self/task')))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}

    def threads(setting: str | None) -> int:
        chosen = env if setting is None else {**env, "OPENBLAS_NUM_THREADS": setting}
        done = subprocess.run([sys.executable, "-c", script], env=chosen, capture_output=True,
                              text=True, check=True, cwd=REPO)
        return int(done.stdout)

    one = threads("1")
    assert threads(None) == one
    assert threads("2") > one, "this numpy starts no OpenBLAS threads: the check above proves nothing"
