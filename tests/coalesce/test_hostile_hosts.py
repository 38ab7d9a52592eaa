"""Hosts that misbehave on purpose: escape codes in what they say, and hundreds of megabytes of output.

Nothing a host writes reaches the operator's terminal raw, the whole of a
failing command's stderr is kept (on one line), and a host's output is read
as a stream within a bound that the reason names, so one host cannot make
the coalescer use gigabytes.
"""

from __future__ import annotations

import random
import socket
import sys
import threading
from pathlib import Path

import numpy as np

from ncs.history.store import opened
from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.record import NUMBER_KEYS
from ncs.stats.writer import write_stats
from tests.coalesce.fleet import Fleet, make_records, run_in_terminal
from tests.coalesce.fleet import write_stats as write_small
from tests.support.sshd import free_port, random_loopback
from tests.support.stats import read_stats

START = 1_700_000_000
TITLE = "\x1b]0;owned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
INERT = "\\x{1b}]0;owned\\x{7}\\x{1b}[2J"


def _good_host(fleet: Fleet, tmp_path: Path) -> None:
    table = make_records(random.Random(1), 20, START, ["a.example"])
    fleet.serve_file("good", write_small(tmp_path / "good.stats", table, START))


def _evil_script(tmp_path: Path) -> Path:
    # A 126 as sshd gives it when the login shell cannot run the command: the
    # first line is sshd's complaint, the reason is on the second.
    escapes = (TITLE + CLEAR).replace("\x1b", "\\033").replace("\x07", "\\007")
    script = tmp_path / "evil.sh"
    script.write_text(
        "#!/bin/sh\n"
        "echo 'Could not chdir to home directory /home/ncs: No such file or directory' >&2\n"
        f"printf '{escapes}' >&2\n"
        "echo 'sh: 1: /opt/ncs/bin/ncs-agent: Permission denied' >&2\n"
        "exit 126\n")
    return script


def test_escape_codes_in_stderr_are_inert_and_the_whole_reason_is_kept(fleet: Fleet, tmp_path: Path):
    _good_host(fleet, tmp_path)
    fleet.add("evil", fleet.server(), command=f"sh {_evil_script(tmp_path)}")
    run = fleet.run()
    assert run.returncode == 1, run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr
    reason = run.summary()["evil"][4]
    assert reason.startswith("command 'sh ")
    assert "failed with status 126: Could not chdir to home directory /home/ncs" in reason
    assert reason.endswith(f" | {INERT}sh: 1: /opt/ncs/bin/ncs-agent: Permission denied")
    header = read_stats(str(fleet.composite)).header
    line = next(h for h in header if h.startswith("source:\tevil\tfailed\t"))
    assert INERT in line and "Permission denied" in line


def test_a_terminal_never_sees_a_hosts_escape_codes(fleet: Fleet, tmp_path: Path):
    _good_host(fleet, tmp_path)
    fleet.add("evil", fleet.server(), command=f"sh {_evil_script(tmp_path)}")
    fleet.write_inventory()
    status, screen = run_in_terminal([sys.executable, "-m", "ncs.coalesce.cli",
                                      "-i", str(fleet.inventory_path)])
    assert status == 1
    assert TITLE not in screen and CLEAR not in screen and "\x07" not in screen
    assert "Permission denied" in screen  # in the summary table, after the first line


def _babbling_server(address: str, port: int) -> threading.Thread:
    """A TCP server that answers every connection with 100 lines of escape codes instead of SSH."""
    listener = socket.create_server((address, port))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(f"{TITLE}{CLEAR}hello\r\n".encode() * 100)
                conn.recv(1)  # until the client gives up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_servers_banner_is_made_inert(fleet: Fleet, tmp_path: Path):
    # paramiko quotes the server's 100th line ("Indecipherable protocol version").
    _good_host(fleet, tmp_path)
    address = random_loopback()
    port = free_port(address)
    server = _babbling_server(address, port)
    fleet.add("babbler", fleet.server(), address=address, port=port, command="true")
    run = fleet.run()
    server.join(timeout=10)
    assert run.returncode == 1, run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr
    assert f"{INERT}hello" in run.summary()["babbler"][4]


def _big_stats_file(path: Path, records: int) -> Path:
    """Write a canonical stats file of RECORDS distinct IPv4 addresses, most of them named."""
    rng = np.random.default_rng(records)
    lo = np.arange(records, dtype=np.uint64) + np.uint64(10 << 24)
    numbers = {key: rng.integers(1, 10**9, records) for key in NUMBER_KEYS}
    names = [[f"host{i}.example.net"] if i % 5 < 3 else NO_NAMES for i in range(records)]
    table = StatsColumns(["ncs version 1.0.0", f"start:\t{START},\tx"],
                         AddressKeys(np.zeros(records, bool), np.zeros(records, np.uint64), lo),
                         numbers, names)
    write_stats(str(path), table)
    return path


def test_hundreds_of_megabytes_stop_at_the_bound_that_the_reason_names(fleet: Fleet, tmp_path: Path):
    _good_host(fleet, tmp_path)
    fleet.add("flood", fleet.server(), command="head -c 300000000 /dev/zero", timeout=200)
    # the fetch alone: the history append loads DuckDB and Arrow (about 100 MiB)
    run = fleet.run("--no-history", timeout=300)
    assert run.returncode == 1, run.stderr
    reason = run.summary()["flood"][4]
    assert "output larger than max_size 256 MiB (268435456 bytes): stopped reading" in reason
    # Nothing of it is held: no stats file starts so.  (Before, the whole
    # output was held until the bound.)
    assert run.peak_rss_mib < 160, run.peak_rss_mib


def test_a_big_output_is_read_as_a_stream(fleet: Fleet, tmp_path: Path):
    # 100 MB of valid stats.  Before, the chunks, their join, the decoded
    # text and the reader's copies were held at once: 521 MiB for this host.
    path = _big_stats_file(tmp_path / "big.stats", 560_000)
    size = path.stat().st_size
    assert 95e6 < size < 110e6, size
    fleet.serve_file("big", path, max_size=128 << 20, timeout=120)
    # The fetch and merge alone: appending to the history store afterwards
    # loads DuckDB and Arrow (about 100 MiB more here, see docs/history.md).
    run = fleet.run("--no-history", timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.summary()["big"][1:3] == ["ok", "560000"]
    # 320-360 MiB for 94 MiB here (521 MiB before): the table, the composite and one piece
    assert run.peak_rss_mib < 4 * size / 2**20, (run.peak_rss_mib, size)
    # With the history append: the store comes after the merge is dropped
    # (the composite is read back from its file), not on top of it.  While
    # the merge was kept for the store, the peak was 100 MiB higher.
    stored = fleet.run("--force", timeout=300)
    assert stored.returncode == 0, stored.stderr
    with opened(str(fleet.composite) + ".history.duckdb") as con:
        assert con.execute("SELECT rows FROM snapshots").fetchall() == [(560_000,)]
    assert stored.peak_rss_mib < run.peak_rss_mib + 40, (stored.peak_rss_mib, run.peak_rss_mib)
