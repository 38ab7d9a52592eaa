"""Web use: cache freshness, one regeneration under the lock, stale copy when the agent is silent.

The agent side is the agent's real ControlPort (agent/control.py) run in a
thread of the test process: it answers "dump" with "OK <epoch>" and the
thread then rewrites the stats file, as the agent's main loop would.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncs.agent.control import ControlPort
from ncs.stats.record import Record

from .helpers import NCS_REPORT, NOW, run_report, write_stats


class DumpingAgent:
    """A ControlPort on 127.0.0.1 whose dumps rewrite STATS with one more record each time."""

    def __init__(self, stats: Path, delay: float = 0.2) -> None:
        self.stats = stats
        self.delay = delay
        self.port = ControlPort("127.0.0.1", 0, ["127.0.0.1"])
        self.dumps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port.address[1]}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            if select.select([self.port], [], [], 0.05)[0] and self.port.handle(int(time.time())):
                self.dumps += 1
                time.sleep(self.delay)  # a dump of a big table takes a while
                write_stats(self.stats, ["ncs version 1.0.0", f"dumps:\t{self.dumps}"], {
                    "198.51.100.1": Record(W=3600, E=NOW, N=["old.example"]),
                    f"203.0.113.{self.dumps}": Record(W=7200, E=NOW, N=[f"dump{self.dumps}.example"]),
                })

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.port.close()


@pytest.fixture
def stats(tmp_path: Path) -> Path:
    return write_stats(tmp_path / "agent.stats", ["ncs version 1.0.0", "dumps:\t0"], {
        "198.51.100.1": Record(W=3600, E=NOW, N=["old.example"]),
    })


@pytest.fixture
def agent(stats: Path) -> Iterator[DumpingAgent]:
    a = DumpingAgent(stats)
    yield a
    a.close()


def expire(path: Path, age: float = 3600) -> None:
    old = time.time() - age
    os.utime(path, (old, old))


def web_args(cache: Path, stats: Path, update: str, fmt: str = "text", updto: float = 5) -> list[str]:
    return [NCS_REPORT, "--format", fmt, "--cache", str(cache), "--refresh", "60",
            "--update", update, "--updto", str(updto), str(stats)]


def run_many(argv: list[str], count: int) -> list[subprocess.CompletedProcess[str]]:
    env = dict(os.environ, TZ="UTC")
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(count)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(argv, p.returncode, out, err))
    return results


def test_fresh_cache_is_served_without_asking_the_agent(tmp_path: Path, stats: Path,
                                                        agent: DumpingAgent) -> None:
    cache = tmp_path / "report.cache"
    cache.write_text("cached copy\n")
    result = run_report(*web_args(cache, stats, agent.address)[1:])
    assert (result.returncode, result.stdout, result.stderr) == (0, "cached copy\n", "")
    assert agent.dumps == 0


def test_concurrent_views_after_expiry_regenerate_once(tmp_path: Path, stats: Path,
                                                       agent: DumpingAgent) -> None:
    cache = tmp_path / "report.cache"
    cache.write_text("expired copy\n")
    expire(cache)
    results = run_many(web_args(cache, stats, agent.address), 8)
    assert agent.dumps == 1
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        assert "203.0.113.1\tdump1.example\n" in r.stdout
        assert r.stdout == results[0].stdout
    assert cache.read_text() == results[0].stdout
    assert not list(tmp_path.glob("report.cache.tmp*"))
    # Fresh now: the next view is served from the cache, no further dump.
    again = run_report(*web_args(cache, stats, agent.address)[1:])
    assert again.stdout == results[0].stdout and agent.dumps == 1


def test_stale_cache_served_when_agent_does_not_answer(tmp_path: Path, stats: Path) -> None:
    cache = tmp_path / "report.cache"
    cache.write_text('<p>old & "stale" copy</p>\n')
    expire(cache)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
    silent.bind(("127.0.0.1", 0))
    where = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        started = time.monotonic()
        results = run_many(web_args(cache, stats, where, updto=2), 4)
        elapsed = time.monotonic() - started
        line = f"ncs-report: no answer from the agent at {where} within 2 s\n"
        for r in results:
            assert r.returncode == 1
            assert r.stdout == '<p>old & "stale" copy</p>\n'
            assert r.stderr == line
        # One view waited for the agent; the others took its verdict instead of
        # waiting again (one after the other, that would be 4 x 2 s).
        assert 2.0 <= elapsed < 6.0
        page = run_report(*web_args(cache, stats, where, fmt="html", updto=1)[1:])
        assert page.returncode == 1
        first, rest = page.stdout.split("\n", 1)
        assert first == ('<p class="ncs-error">ncs-report: no answer from the agent at '
                         f'{where} within 1 s</p>')
        assert rest == '<p>old & "stale" copy</p>\n'
    finally:
        silent.close()
    assert cache.read_text() == '<p>old & "stale" copy</p>\n'


def test_refused_update_without_cache_renders_current_file(tmp_path: Path, stats: Path) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    where = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there: ICMP port unreachable
    cache = tmp_path / "none.cache"
    result = run_report(*web_args(cache, stats, where, updto=2)[1:])
    assert result.returncode == 1
    assert result.stderr == f"ncs-report: the agent at {where} refused the dump request (port closed)\n"
    assert "198.51.100.1\told.example\n" in result.stdout
    assert not cache.exists()


def test_web_option_errors_are_one_line(tmp_path: Path, stats: Path) -> None:
    r = run_report("--format", "text", "--cache", str(tmp_path / "c"), "--update", "nohost", str(stats))
    assert r.returncode == 2 and r.stderr == "ncs-report: --update 'nohost' is not HOST:PORT\n"
    r = run_report("--format", "text", "--update", "127.0.0.1:9", str(stats))
    assert r.returncode == 2 and r.stderr == "ncs-report: --update needs --cache or --watch\n"
