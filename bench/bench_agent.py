#!/usr/bin/env python3
"""Benchmark of ncs-agent's capture path against tcpdump, darkstat and tshark on the same captures.

Offline (default): for each standard capture (generated into bench/data/ by
bench/gencap.py when missing) run every tool on the file, one after the other,
and print wall time, packets per second and peak RSS, plus ncs-agent's ratios
against each reference tool measured in the same run.

Live (--live): replay a capture with tcpreplay into one end of a veth pair
between two namespaces and let ncs-agent capture on the other end; print the
rate tcpreplay reached, packets counted by the agent and the kernel's drops.
tcpreplay runs with --preload-pcap (no file reads between sends) and
--no-flow-stats (its per-flow table costs half its time on a capture of a
million new addresses); without them it reached only 270k-500k packets/s here.

Usage: .venv/bin/python bench/bench_agent.py [--scale 0.1] [--repeat 3] [--tools ...] [--captures repeat new]
       .venv/bin/python bench/bench_agent.py --live [--pps N] [--buffer-size BYTES] [--captures ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
HOST4 = "198.51.100.10"
HOST6 = "2001:db8:100::10"
BPF = f"host {HOST4} or host {HOST6}"
TOOLS = ("ncs-agent", "tcpdump", "darkstat", "tshark")
LIVE_READY_TIMEOUT = 30.0
LIVE_DRAIN = 3.0  # seconds between the end of the replay and SIGTERM
# tshark keeps state for every frame: about 2.2 KiB per packet measured here
# (1M packets: 2.2 GiB peak), so a full-scale run may not fit in memory
TSHARK_BYTES_PER_PACKET = 2500


@dataclass(frozen=True)
class Capture:
    """A standard capture: its title and the gencap options that make it."""

    title: str
    packets: int
    remotes: int
    snaplen: int
    seed: int = 1

    def path(self, data_dir: Path) -> Path:
        """Return the file name, derived from the options so a changed capture is regenerated."""
        return data_dir / f"cap-p{self.packets}-r{self.remotes}-s{self.snaplen}-seed{self.seed}.pcap"

    def distinct_remotes(self) -> int:
        """Return an upper bound on the number of remote addresses in the capture."""
        return self.remotes if self.remotes else self.packets


@dataclass
class Result:
    """One tool's runs over one capture: wall is the best run's, walls all of them."""

    tool: str
    ok: bool
    wall: float = 0.0
    maxrss_kib: int = 0
    error: str = ""
    detail: str = ""
    walls: list[float] = field(default_factory=list)

    def add(self, run: Result) -> None:
        """Fold in another successful run of the same tool."""
        self.walls.append(run.wall)
        self.wall = min(self.walls)
        self.maxrss_kib = max(self.maxrss_kib, run.maxrss_kib)

    def spread(self) -> str:
        """Return 'median (min-max)' of the runs' wall times."""
        walls = sorted(self.walls)
        return f"{walls[len(walls) // 2]:.2f} ({walls[0]:.2f}-{walls[-1]:.2f})"

    def pps(self, packets: int) -> float:
        """Return packets per second (0 when the run failed)."""
        return packets / self.wall if self.ok and self.wall > 0 else 0.0


# The 50k-remote capture, the all-new-addresses one, and (not run by default)
# the 10k-remote one of the live criterion.
CAPTURE_NAMES = ("repeat", "new", "10k")
DEFAULT_CAPTURES = ("repeat", "new")


def standard_captures(scale: float, names: tuple[str, ...] = DEFAULT_CAPTURES) -> list[Capture]:
    """Return the standard captures named in NAMES (see CAPTURE_NAMES); scale multiplies
    the packet counts (pools stay as they are)."""
    caps = {
        "repeat": Capture(f"{int(10_000_000 * scale):,} packets, 50k remotes, snaplen 64",
                          int(10_000_000 * scale), 50_000, 64),
        "new": Capture(f"{int(1_000_000 * scale):,} packets, all new addresses, snaplen 64",
                       int(1_000_000 * scale), 0, 64),
        "10k": Capture(f"{int(3_000_000 * scale):,} packets, 10k remotes, snaplen 64",
                       int(3_000_000 * scale), 10_000, 64),
    }
    return [caps[name] for name in CAPTURE_NAMES if name in names]


def ensure_capture(cap: Capture, data_dir: Path) -> Path:
    """Generate the capture with gencap.py unless it exists; returns its path.

    Raises RuntimeError with gencap's message if generation fails.
    """
    path = cap.path(data_dir)
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(BENCH_DIR / "gencap.py"), str(path),
                           "--packets", str(cap.packets), "--remotes", str(cap.remotes),
                           "--snaplen", str(cap.snaplen), "--seed", str(cap.seed),
                           "--host", HOST4, "--host6", HOST6], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"gencap failed for {path}: {proc.stderr.strip()}")
    print(f"generated {path} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def find_agent() -> str | None:
    """Return the ncs-agent to benchmark: the one next to this Python (the venv), else PATH's."""
    beside = Path(sys.executable).parent / "ncs-agent"
    if beside.exists():
        return str(beside)
    return shutil.which("ncs-agent")


def timed_run(tool: str, argv: list[str], workdir: Path) -> Result:
    """Run argv to completion; return its wall time and the child's peak RSS (from wait4).

    stdout goes to /dev/null; stderr is kept for the error message.
    """
    err_path = workdir / f"{tool}.stderr"
    with open(err_path, "w") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, cwd=workdir)
        except OSError as exc:
            return Result(tool, False, error=f"cannot start {argv[0]}: {exc.strerror}")
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it; tell Popen
    if proc.returncode != 0:
        lines = err_path.read_text(errors="replace").strip().splitlines()
        return Result(tool, False, wall, usage.ru_maxrss,
                      error=f"exit {proc.returncode}: {lines[-1] if lines else '(no message)'}")
    return Result(tool, True, wall, usage.ru_maxrss)


def tool_argv(tool: str, pcap: Path, cap: Capture, workdir: Path, agent: str | None) -> list[str] | None:
    """Return the command line that makes `tool` read the whole capture, or None if it is missing.

    Raises MemoryError (with the reason) when the tool would not fit in memory.
    """
    if tool == "ncs-agent":
        if agent is None:
            return None
        return [agent, "run", "--read", str(pcap), "--bpf", BPF, "--no-dns",
                "--stats", str(workdir / "agent.stats")]
    if shutil.which(tool) is None:
        return None
    if tool == "tcpdump":
        return ["tcpdump", "-n", "-r", str(pcap), "-w", "/dev/null"]
    if tool == "darkstat":
        # --no-daemon with -r reads the file and exits; a host limit above the
        # number of remotes makes it keep every address, as the others do; the
        # chroot and export go to the scratch directory, the web port is unused
        chroot = workdir / "darkstat"
        chroot.mkdir(exist_ok=True)
        limit = str(max(1000, cap.distinct_remotes() * 5 // 4))
        return ["darkstat", "-r", str(pcap), "--no-daemon", "--no-dns", "--chroot", str(chroot),
                "--hosts-max", limit, "--hosts-keep", limit,
                "--export", str(chroot / "export.db"), "-b", "127.0.0.1", "-p", "0"]
    if tool == "tshark":
        needed = cap.packets * TSHARK_BYTES_PER_PACKET
        if needed > 0.8 * available_memory():
            raise MemoryError(f"not run: would need about {needed / 2**30:.1f} GiB of memory")
        return ["tshark", "-n", "-r", str(pcap), "-q", "-z", "endpoints,ip"]
    raise ValueError(f"unknown tool {tool}")


def available_memory() -> int:
    """Return MemAvailable from /proc/meminfo in bytes (a large number if it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62


def stats_header(path: Path) -> dict[str, str]:
    """Return the `# key: value` header lines of a stats file (empty if it does not exist)."""
    header: dict[str, str] = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("{"):
                    break
                m = re.match(r"#\s*([\w ]+?):\s*(.*)", line)
                if m:
                    header[m.group(1).strip()] = m.group(2).strip()
    except FileNotFoundError:
        pass
    return header


def stats_hits(path: Path) -> int:
    """Return the sum of the C (hits) fields of a stats file.

    Within a run shorter than the 300 s fold interval C counts every packet of
    a remote, so the sum is the number of packets the agent accounted.
    """
    total = 0
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"\s*C\s*=>\s*(\d+)", line)
            if m:
                total += int(m.group(1))
    return total


def bench_capture(cap: Capture, pcap: Path, tools: list[str], agent: str | None,
                  repeat: int = 1) -> list[Result]:
    """Run each tool REPEAT times over pcap (round by round, so load that comes and
    goes hits every tool alike) and return the results in tool order."""
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="ncs-bench-") as tmp:
        workdir = Path(tmp)
        for _ in range(repeat):
            for tool in tools:
                if tool in results and not results[tool].ok:
                    continue
                run = run_tool(tool, pcap, cap, workdir, agent)
                if tool not in results or not run.ok:
                    results[tool] = run
                    run.walls = [run.wall] if run.ok else []
                else:
                    results[tool].add(run)
                if run.ok or run.wall:
                    print(f"  {tool}: {'ok' if run.ok else 'FAILED'} {run.wall:.2f} s", flush=True)
    return [results[tool] for tool in tools]


def run_tool(tool: str, pcap: Path, cap: Capture, workdir: Path, agent: str | None) -> Result:
    """Run one tool once over pcap; returns its Result (not ok when it is missing or failed)."""
    try:
        argv = tool_argv(tool, pcap, cap, workdir, agent)
    except MemoryError as exc:
        return Result(tool, False, error=str(exc))
    if argv is None:
        return Result(tool, False, error="not installed")
    result = timed_run(tool, argv, workdir)
    if tool == "ncs-agent" and result.ok:
        users = stats_header(workdir / "agent.stats").get("users", "?")
        result.detail = f"users {users}"
    return result


def ratio(a: float, b: float) -> str:
    """Return a/b formatted as a ratio, or 'n/a' when either side is missing."""
    return f"{a / b:.2f}x" if a > 0 and b > 0 else "n/a"


def print_table(cap: Capture, pcap: Path, results: list[Result]) -> None:
    """Print one capture's figures: per tool (best run, and the median and range of all
    runs), and ncs-agent's ratios against each reference tool (best against best)."""
    size_mb = pcap.stat().st_size / 1e6
    print(f"\n== {cap.title}: {pcap.name} ({cap.packets:,} packets, {size_mb:.0f} MB)")
    print(f"{'tool':<10} {'best s':>8} {'packets/s':>12} {'peak RSS MiB':>13}  "
          f"{'ncs pps / tool':>14} {'ncs RSS / tool':>14}  {'median (range) s':<22} note")
    agent = next((r for r in results if r.tool == "ncs-agent"), None)
    for r in results:
        if not r.ok:
            print(f"{r.tool:<10} {'-':>8} {'-':>12} {'-':>13}  {'':>14} {'':>14}  {'':<22} "
                  f"FAILED: {r.error}")
            continue
        pps_ratio = rss_ratio = ""
        if agent is not None and r is not agent:
            pps_ratio = ratio(agent.pps(cap.packets), r.pps(cap.packets))
            rss_ratio = ratio(agent.maxrss_kib if agent.ok else 0, r.maxrss_kib)
        print(f"{r.tool:<10} {r.wall:>8.2f} {r.pps(cap.packets):>12,.0f} {r.maxrss_kib / 1024:>13.1f}  "
              f"{pps_ratio:>14} {rss_ratio:>14}  {r.spread():<22} {r.detail}")


def compile_agent() -> None:
    """Compile the agent's modules to bytecode first, as installing a package does.

    With PYTHONDONTWRITEBYTECODE set (as in some shells and CI) every run of
    ncs-agent would otherwise compile the modules changed since the last
    install, a start-up cost no deployed agent pays.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "agent")],
                   stdout=subprocess.DEVNULL, check=False)


def run_offline(args: argparse.Namespace) -> int:
    """Benchmark every standard capture; returns 1 if ncs-agent failed on any, else 0."""
    agent = find_agent()
    compile_agent()
    failed = False
    for cap in standard_captures(args.scale, tuple(args.captures)):
        pcap = ensure_capture(cap, args.data_dir)
        print(f"running {', '.join(args.tools)} on {pcap.name}", flush=True)
        results = bench_capture(cap, pcap, args.tools, agent, args.repeat)
        print_table(cap, pcap, results)
        failed |= any(r.tool == "ncs-agent" and not r.ok for r in results)
    return 1 if failed else 0


def run_live(args: argparse.Namespace) -> int:
    """Replay the standard captures over a veth pair into a live ncs-agent; returns exit status."""
    sys.path.insert(0, str(REPO))
    from tests.support.netns import NS_PREFIX, NetnsHost, netlab_skip_reason, next_id, remove_netns

    reason = netlab_skip_reason()
    if reason:
        print(f"bench_agent --live: {reason}", file=sys.stderr)
        return 2
    for tool in ("tcpreplay",):
        if shutil.which(tool) is None:
            print(f"bench_agent --live: {tool} is not installed", file=sys.stderr)
            return 2
    agent = find_agent()
    if agent is None:
        print("bench_agent --live: ncs-agent not found", file=sys.stderr)
        return 2
    status = 0
    for cap in standard_captures(args.scale, tuple(args.captures)):
        pcap = ensure_capture(cap, args.data_dir)
        # lab-style names, so a run killed half-way is swept by the next NetLab
        sender, sniffer = (NetnsHost(netns=f"{NS_PREFIX}{os.getpid()}-{next_id()}", ifname="eth0",
                                     ipv4="", ipv6="") for _ in range(2))
        with tempfile.TemporaryDirectory(prefix="ncs-live-") as tmp:
            stats = Path(tmp) / "live.stats"
            try:
                make_veth_pair(sender, sniffer)
                status = max(status, live_replay(sender, sniffer, agent, pcap, stats, Path(tmp),
                                                          args))
            finally:
                for host in (sender, sniffer):
                    host.stop_processes()
                    remove_netns(host.netns)
    return status


def make_veth_pair(sender, sniffer) -> None:
    """Create two namespaces joined by one veth pair (eth0 in each), both ends up, no addresses.

    Without addresses the sniffer's kernel drops the replayed frames after
    capture, so it sends no replies that would be counted too.
    """
    from tests.support.netns import remove_netns

    for host in (sender, sniffer):
        remove_netns(host.netns)
        subprocess.run(["ip", "netns", "add", host.netns], check=True)
    subprocess.run(["ip", "-n", sender.netns, "link", "add", "eth0", "type", "veth",
                    "peer", "name", "eth0", "netns", sniffer.netns], check=True)
    for host in (sender, sniffer):
        subprocess.run(["ip", "-n", host.netns, "link", "set", "eth0", "up"], check=True)
        subprocess.run(["ip", "-n", host.netns, "link", "set", "lo", "up"], check=True)


def wait_for_packet_socket(host, proc: subprocess.Popen, timeout: float = LIVE_READY_TIMEOUT) -> None:
    """Wait until the namespace has a packet socket open (the agent's capture).

    Raises RuntimeError if the agent exits or the socket does not appear in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ncs-agent exited with status {proc.returncode} before capturing")
        lines = host.run(["cat", "/proc/net/packet"]).stdout.strip().splitlines()
        if len(lines) > 1:
            return
        time.sleep(0.1)
    raise RuntimeError(f"ncs-agent opened no capture within {timeout:.0f} s")


def replay_argv(pcap: Path, pps: int) -> list[str]:
    """Return the tcpreplay command that sends PCAP on eth0 at PPS packets/s (0: top speed)."""
    rate = [f"--pps={pps}"] if pps else ["--topspeed"]
    return ["tcpreplay", *rate, "--preload-pcap", "--no-flow-stats", "-i", "eth0", str(pcap)]


def live_replay(sender, sniffer, agent: str, pcap: Path, stats: Path, workdir: Path,
                args: argparse.Namespace) -> int:
    """Run the agent on the sniffer's eth0, replay pcap from the sender, and print the counts."""
    err = open(workdir / "agent.stderr", "w")
    buffer = ["--buffer-size", str(args.buffer_size)] if args.buffer_size else []
    proc = sniffer.popen([agent, "run", "--device", "eth0", "--bpf", BPF, "--no-dns", *buffer,
                          "--stats", str(stats)], stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_packet_socket(sniffer, proc)
    except RuntimeError as exc:
        print(f"bench_agent --live: {exc}: {(workdir / 'agent.stderr').read_text().strip()}",
              file=sys.stderr)
        return 1
    argv = replay_argv(pcap, args.pps)
    print(f"replaying {pcap.name}: {' '.join(argv[:-1])} FILE", flush=True)
    replay = sender.run(argv, check=False)
    # The agent stops at SIGTERM without emptying its capture buffer: give it
    # time to work through what a burst left there.
    time.sleep(LIVE_DRAIN)
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        status = None
    err.close()
    sent = parse_tcpreplay(replay.stdout)
    print(f"\n== live: {pcap.name} replayed into a veth pair")
    if replay.returncode != 0:
        print(f"tcpreplay FAILED (exit {replay.returncode}): {replay.stderr.strip()}")
        return 1
    print(f"tcpreplay: sent {sent.get('packets', '?')} packets in {sent.get('seconds', '?')} s "
          f"({sent.get('pps', '?')} pps)")
    if status != 0 or not stats.exists():
        print(f"ncs-agent FAILED (exit {status}): {(workdir / 'agent.stderr').read_text().strip()}")
        return 1
    header = stats_header(stats)
    counted = stats_hits(stats)
    print(f"ncs-agent: counted {counted} packets ({_share(counted, sent.get('packets'))} of sent); "
          f"libpcap received {header.get('received', '?')}, kernel drops {header.get('drops', '?')} "
          f"({_share(_int(header.get('drops')), header.get('received'))} of received), "
          f"interface drops {header.get('ifdrops', '?')}")
    return 0


def _int(text: str | None) -> int:
    """Return TEXT as an int, 0 when it is missing or not a number."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _share(part: int, whole: str | None) -> str:
    """Return part/whole as a percentage, or '?' when whole is unknown."""
    try:
        return f"{100.0 * part / int(whole):.2f}%"
    except (TypeError, ValueError, ZeroDivisionError):
        return "?"


def parse_tcpreplay(text: str) -> dict[str, str]:
    """Return packets, seconds and pps from tcpreplay's summary (keys missing if not found)."""
    out: dict[str, str] = {}
    m = re.search(r"Actual:\s*(\d+) packets .*? sent in ([\d.]+) seconds", text)
    if m:
        out["packets"], out["seconds"] = m.group(1), m.group(2)
    m = re.search(r"Rated:.*?,\s*([\d.]+) pps", text)
    if m:
        out["pps"] = m.group(1)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the parsed command line; exits with status 2 on a bad value."""
    p = argparse.ArgumentParser(description="ncs-agent against tcpdump, darkstat and tshark")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply the standard captures' packet counts (e.g. 0.1)")
    p.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data",
                   help="where the captures are kept (default bench/data)")
    p.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS),
                   help="tools to run (default: all)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each tool per capture; the best counts, the median is shown")
    p.add_argument("--captures", nargs="+", choices=CAPTURE_NAMES, default=list(DEFAULT_CAPTURES),
                   help="standard captures to run: repeat (50k remotes), new (all new addresses),"
                        " 10k (3M packets, 10k remotes; not run by default)")
    p.add_argument("--live", action="store_true",
                   help="replay over a veth pair into a live ncs-agent instead (root)")
    p.add_argument("--pps", type=int, default=0,
                   help="with --live: replay at this many packets/s (default: top speed)")
    p.add_argument("--buffer-size", type=int, default=0,
                   help="with --live: the agent's capture buffer in bytes (default: the agent's)")
    args = p.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        p.error(f"--repeat {args.repeat}: must be 1..20")
    if args.pps < 0 or args.buffer_size < 0:
        p.error("--pps and --buffer-size must not be negative")
    if not 0 < args.scale <= 10:
        p.error(f"--scale {args.scale}: must be > 0 and <= 10")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        return run_live(args) if args.live else run_offline(args)
    except RuntimeError as exc:
        print(f"bench_agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
