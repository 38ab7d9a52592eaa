"""Test hosts in network namespaces on a private bridge: the NetLab class and its `netlab` fixture.

Every host is a namespace with one veth interface `eth0`; the other end of the
veth sits on a bridge in the root namespace that also carries the lab's root
addresses (198.51.100.1, 2001:db8:100::1), so a program in the test process can
reach daemons started inside the hosts.

Why the root side uses host routes instead of a /24 on the bridge: several labs
may exist at once (two in one test, or labs of other test runs on the same
machine), and two bridges with the same connected /24 would make the root
namespace send replies out of the wrong bridge. A /32 (/128) on the bridge plus
one host route per host keeps each lab's hosts reachable as long as the labs
use different host addresses. Labs of different processes are serialised by a
machine-wide lock because they typically use the same addresses.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support import processes

LOCK_PATH = "/run/ncs-netlab.lock"
LOCK_TIMEOUT = 600.0  # seconds to wait for another test run's labs to go away
READY_TIMEOUT = 10.0  # seconds for links and addresses to become usable
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL at teardown

# Names carry the owning pid so that leftovers of a dead run can be recognised
# and swept; the prefixes are distinct from the `ncs-*` names others may use.
NS_PREFIX = "ncslab"
BRIDGE_PREFIX = "nlb"
VETH_PREFIX = "nlv"
_STALE_NAME = re.compile(rf"^(?:{NS_PREFIX}|{BRIDGE_PREFIX}|{VETH_PREFIX})(\d+)-\d+$")

_counter_lock = threading.Lock()
_counter = 0


def next_id() -> int:
    """Return a number unique within this process (labs and hosts share it)."""
    global _counter
    with _counter_lock:
        _counter += 1
        return _counter


def _ip(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip ARGS`; returns the completed process.

    Raises subprocess.CalledProcessError (with ip's stderr as a note) when check
    is true and ip fails.
    """
    return _run(["ip", *args], check=check)


def _run(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run argv with text output captured; on failure the error carries stderr as a note."""
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    proc = subprocess.run(argv, **kw)
    if check and proc.returncode != 0:
        err = subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        err.add_note(f"stderr: {(proc.stderr or '').strip()}")
        raise err
    return proc


def _pid_alive(pid: int) -> bool:
    """Return True if a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pids(pids: list[int], grace: float = KILL_GRACE) -> None:
    """Send SIGTERM to every pid, wait up to `grace` seconds, then SIGKILL the survivors."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _pid_alive(p) and not _is_zombie(p)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_zombie(pid: int) -> bool:
    """Return True if pid is a zombie (dead, waiting for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the state follows the parenthesised command name, which may hold spaces
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def netns_pids(netns: str) -> list[int]:
    """Return the pids of the processes living in namespace `netns` (empty if it is gone)."""
    proc = _ip(["netns", "pids", netns], check=False)
    if proc.returncode != 0:
        return []
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def netns_exists(netns: str) -> bool:
    """Return True if `ip netns list` shows this namespace."""
    return os.path.exists(f"/run/netns/{netns}")


def link_exists(ifname: str) -> bool:
    """Return True if the root namespace has an interface of this name."""
    return os.path.exists(f"/sys/class/net/{ifname}")


def remove_netns(netns: str) -> None:
    """Kill every process in `netns` and delete it; does nothing if it does not exist."""
    if not netns_exists(netns):
        return
    deadline = time.monotonic() + KILL_GRACE * 3
    pids = netns_pids(netns)
    while pids and time.monotonic() < deadline:
        _kill_pids(pids)
        time.sleep(0.05)
        pids = netns_pids(netns)
    _ip(["netns", "del", netns], check=False)


def remove_link(ifname: str) -> None:
    """Delete a root-namespace interface (a veth also takes its peer); no error if absent."""
    if link_exists(ifname):
        _ip(["link", "del", ifname], check=False)


def _netlab_usable() -> str | None:
    """Return None if namespaces can be created here, else a one-line reason to skip."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{NS_PREFIX}{os.getpid()}-0"
    remove_netns(probe)
    made = _ip(["netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails: {made.stderr.strip()}"
    remove_netns(probe)
    return None


_usable_cache: list[str | None] = []


def netlab_skip_reason() -> str | None:
    """Return the reason to skip namespace tests on this machine (cached), or None."""
    if not _usable_cache:
        _usable_cache.append(_netlab_usable())
    return _usable_cache[0]


class _MachineLock:
    """A machine-wide flock held while this process has at least one live lab (re-entrant)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.depth = 0
        self.fd: int | None = None
        self.mutex = threading.Lock()

    def acquire(self, timeout: float = LOCK_TIMEOUT) -> None:
        """Take the lock, waiting for other processes' labs; raises TimeoutError after `timeout`."""
        with self.mutex:
            if self.depth == 0:
                self.fd = self._wait_for_lock(timeout)
            self.depth += 1

    def _wait_for_lock(self, timeout: float) -> int:
        """Return a descriptor holding the flock; raises TimeoutError after `timeout` seconds.

        Waiters leave a marker file; a process that just released the lock and
        wants it back (one test ending, the next starting) yields to them first,
        or a run of many lab tests would starve another run's single test.
        """
        marker = f"{self.path}.wait.{os.getpid()}"
        if self._others_waiting(marker):
            time.sleep(0.3)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise TimeoutError(
                            f"{self.path}: another test run kept its network lab for {timeout:.0f} s"
                        ) from None
                    if not os.path.exists(marker):
                        open(marker, "w").close()
                    time.sleep(0.1)
        finally:
            if os.path.exists(marker):
                os.unlink(marker)

    def _others_waiting(self, own_marker: str) -> bool:
        """Return True if a live process other than this one waits for the lock."""
        folder, prefix = os.path.split(f"{self.path}.wait.")
        for name in os.listdir(folder):
            if not name.startswith(prefix) or os.path.join(folder, name) == own_marker:
                continue
            pid = name[len(prefix):]
            if pid.isdigit() and _pid_alive(int(pid)):
                return True
            try:
                os.unlink(os.path.join(folder, name))  # left by a dead waiter
            except FileNotFoundError:
                pass
        return False

    def release(self) -> None:
        """Drop one hold; the flock goes when the last lab of this process is torn down."""
        with self.mutex:
            if self.depth == 0:
                return
            self.depth -= 1
            if self.depth == 0 and self.fd is not None:
                os.close(self.fd)  # closing the descriptor releases the flock
                self.fd = None


_machine_lock = _MachineLock(LOCK_PATH)
_live_labs: set[NetLab] = set()


def sweep_stale() -> None:
    """Remove namespaces, bridges and veths left behind by lab owners that are no longer alive."""
    try:
        namespaces = os.listdir("/run/netns")
    except FileNotFoundError:
        namespaces = []
    for name in namespaces:
        m = _STALE_NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            remove_netns(name)
    for name in os.listdir("/sys/class/net"):
        m = _STALE_NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            remove_link(name)


@dataclass
class NetnsHost:
    """One test host: a network namespace with interface `ifname` carrying ipv4 and ipv6."""

    netns: str
    ifname: str
    ipv4: str
    ipv6: str
    veth: str = ""  # the peer interface on the lab bridge (root namespace)
    procs: list[subprocess.Popen] = field(default_factory=list, repr=False)

    def cmd(self, argv: list[str]) -> list[str]:
        """Return argv prefixed so that it runs inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        """Run argv inside the namespace and wait; text output is captured unless kw says otherwise.

        Raises subprocess.CalledProcessError (stderr attached as a note) if check
        is true and the command fails.
        """
        return _run(self.cmd(argv), check=check, **kw)

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        """Start argv inside the namespace and return the Popen; it is killed at teardown."""
        proc = subprocess.Popen(self.cmd(argv), **kw)
        self.procs.append(proc)
        return proc

    def stop_processes(self) -> None:
        """Terminate the tracked processes (TERM, then KILL) and reap them."""
        _kill_pids([p.pid for p in self.procs if p.poll() is None])
        for proc in self.procs:
            processes.reap(proc, KILL_GRACE)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()


class NetLab:
    """A bridge in the root namespace with test hosts (namespaces) attached to it."""

    root_ipv4 = "198.51.100.1"
    root_ipv6 = "2001:db8:100::1"

    def __init__(self) -> None:
        """Create the bridge with the root addresses; raises CalledProcessError if ip fails."""
        self.lab_id = next_id()
        self.bridge = f"{BRIDGE_PREFIX}{os.getpid()}-{self.lab_id}"
        self.hosts: list[NetnsHost] = []
        self._closed = False
        _machine_lock.acquire()
        _live_labs.add(self)
        try:
            sweep_stale()
            remove_link(self.bridge)
            self._make_bridge()
        except BaseException:
            self.teardown()
            raise

    def _make_bridge(self) -> None:
        """Create the bridge, STP and multicast snooping off so ports forward at once."""
        br = self.bridge
        _ip(["link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0",
             "mcast_snooping", "0"])
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{br}/accept_dad", "0")
        _ip(["addr", "add", f"{self.root_ipv4}/32", "dev", br])
        _ip(["-6", "addr", "add", f"{self.root_ipv6}/128", "dev", br, "nodad"])
        _ip(["link", "set", br, "up"])

    def add_host(self, short: str, ipv4: str, ipv6: str | None = None) -> NetnsHost:
        """Create a host namespace on the bridge and return it once its addresses are usable.

        `short` is a label for the caller (it is not part of any name, so any text
        is fine). ipv6 defaults to 2001:db8:100:: followed by the last IPv4 octet.
        Raises ValueError for a bad or duplicate address, CalledProcessError if ip
        fails, TimeoutError if the link does not come up.
        """
        if self._closed:
            raise RuntimeError(f"lab {self.bridge} was torn down")
        v4 = ipaddress.IPv4Address(ipv4)
        v6 = ipaddress.IPv6Address(ipv6 if ipv6 is not None else f"2001:db8:100::{ipv4.split('.')[-1]}")
        for other in _live_hosts():
            if other.ipv4 == str(v4) or other.ipv6 == str(v6):
                raise ValueError(f"host {short}: address {v4}/{v6} already used by namespace {other.netns}")
        n = next_id()
        host = NetnsHost(netns=f"{NS_PREFIX}{os.getpid()}-{n}", ifname="eth0", ipv4=str(v4),
                         ipv6=str(v6), veth=f"{VETH_PREFIX}{os.getpid()}-{n}")
        self.hosts.append(host)
        remove_netns(host.netns)
        remove_link(host.veth)
        self._make_host(host)
        _wait_ready(host, self.bridge)
        return host

    def _make_host(self, host: NetnsHost) -> None:
        """Create the namespace, the veth pair and the addresses and routes of one host."""
        ns, dev = host.netns, host.ifname
        _ip(["netns", "add", ns])
        # DAD off before the interface exists, so eth0 inherits it from `default`
        for key in ("all", "default"):
            _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                  f"net.ipv6.conf.{key}.accept_dad=0", f"net.ipv6.conf.{key}.dad_transmits=0"])
        _ip(["link", "add", host.veth, "type", "veth", "peer", "name", dev, "netns", ns])
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{host.veth}/accept_dad", "0")
        _ip(["link", "set", host.veth, "master", self.bridge])
        _ip(["-n", ns, "link", "set", "lo", "up"])
        _ip(["-n", ns, "addr", "add", f"{host.ipv4}/24", "dev", dev])
        _ip(["-n", ns, "-6", "addr", "add", f"{host.ipv6}/64", "dev", dev, "nodad"])
        _ip(["link", "set", host.veth, "up"])
        _ip(["-n", ns, "link", "set", dev, "up"])
        # the root namespace reaches this host through the bridge (see the module docstring)
        _ip(["route", "replace", f"{host.ipv4}/32", "dev", self.bridge])
        _ip(["-6", "route", "replace", f"{host.ipv6}/128", "dev", self.bridge])

    def add_pair(self, ipv4_a: str, ipv4_b: str, ipv6_a: str, ipv6_b: str) -> tuple[NetnsHost, NetnsHost]:
        """Create two hosts joined by one veth of their own, off the bridge; return them once usable.

        Frames between them cross no bridge, so nothing in between (such as
        the root namespace's br_netfilter, which drops malformed IP headers)
        can change what one sends and the other receives.  Raises as add_host.
        """
        if self._closed:
            raise RuntimeError(f"lab {self.bridge} was torn down")
        pair = []
        for v4, v6 in ((ipv4_a, ipv6_a), (ipv4_b, ipv6_b)):
            n = next_id()
            host = NetnsHost(netns=f"{NS_PREFIX}{os.getpid()}-{n}", ifname="eth0", ipv4=v4, ipv6=v6)
            self.hosts.append(host)
            remove_netns(host.netns)
            _ip(["netns", "add", host.netns])
            for key in ("all", "default"):
                _run(["ip", "netns", "exec", host.netns, "sysctl", "-q", "-w",
                      f"net.ipv6.conf.{key}.accept_dad=0", f"net.ipv6.conf.{key}.dad_transmits=0"])
            pair.append(host)
        a, b = pair
        _ip(["-n", a.netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.netns])
        for host in pair:
            _ip(["-n", host.netns, "link", "set", "lo", "up"])
            _ip(["-n", host.netns, "addr", "add", f"{host.ipv4}/24", "dev", "eth0"])
            _ip(["-n", host.netns, "-6", "addr", "add", f"{host.ipv6}/64", "dev", "eth0", "nodad"])
            _ip(["-n", host.netns, "link", "set", "eth0", "up"])
        for host in pair:
            _wait_ready(host, "")
        return a, b

    def add_hidden_host(self, short: str, via: NetnsHost, ipv4: str, via_ipv4: str) -> NetnsHost:
        """Create a host that only VIA reaches: a namespace joined to VIA's by a veth pair of its own.

        The new host has IPV4/24 on its `eth0`, VIA gets VIA_IPV4/24 on the
        other end; nothing joins it to the bridge, and VIA does not forward,
        so the test process cannot reach it but through VIA.  `short` is a
        label for the caller.  Returns the host once its link is up.
        """
        if self._closed:
            raise RuntimeError(f"lab {self.bridge} was torn down")
        n = next_id()
        host = NetnsHost(netns=f"{NS_PREFIX}{os.getpid()}-{n}", ifname="eth0", ipv4=ipv4,
                         ipv6="")
        self.hosts.append(host)
        remove_netns(host.netns)
        _ip(["netns", "add", host.netns])
        _ip(["-n", host.netns, "link", "set", "lo", "up"])
        # unique names, created inside the namespaces: no clash with other runs' links
        near = f"{VETH_PREFIX}{os.getpid()}-{n}"
        _ip(["link", "add", near, "netns", via.netns, "type", "veth", "peer", "name",
             host.ifname, "netns", host.netns])
        _ip(["-n", via.netns, "addr", "add", f"{via_ipv4}/24", "dev", near])
        _ip(["-n", host.netns, "addr", "add", f"{ipv4}/24", "dev", host.ifname])
        _ip(["-n", via.netns, "link", "set", near, "up"])
        _ip(["-n", host.netns, "link", "set", host.ifname, "up"])
        deadline = time.monotonic() + READY_TIMEOUT
        while "LOWER_UP" not in _ip(["-n", host.netns, "link", "show", host.ifname]).stdout:
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {host.netns}: {host.ifname} has no carrier")
            time.sleep(0.02)
        return host

    def teardown(self) -> None:
        """Kill every process of every host, delete namespaces, veths and the bridge; idempotent."""
        if self._closed:
            return
        self._closed = True
        _live_labs.discard(self)
        try:
            for host in self.hosts:
                host.stop_processes()
                remove_netns(host.netns)
                if host.veth:  # hosts of add_pair have none: their veth goes with the namespace
                    remove_link(host.veth)
            remove_link(self.bridge)
        finally:
            _machine_lock.release()


def _live_hosts() -> Iterator[NetnsHost]:
    """Yield the hosts of every lab of this process that is not torn down."""
    for lab in list(_live_labs):
        yield from lab.hosts


def _write_sysctl(path: str, value: str) -> None:
    """Write a /proc/sys value; a missing file (IPv6 disabled) is ignored."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        pass


def _wait_ready(host: NetnsHost, bridge: str, timeout: float = READY_TIMEOUT) -> None:
    """Wait until both veth ends are up, the bridge port forwards and no address is tentative.

    Raises TimeoutError naming the host and what was not ready.
    """
    deadline = time.monotonic() + timeout
    while True:
        pending = _not_ready(host)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"namespace {host.netns} (bridge {bridge}): {pending} after {timeout:.0f} s")
        time.sleep(0.02)


def _not_ready(host: NetnsHost) -> str:
    """Return what is not yet usable about the host's link ('' when everything is)."""
    inside = _ip(["-n", host.netns, "addr", "show", "dev", host.ifname], check=False).stdout
    if "LOWER_UP" not in inside:
        return f"{host.ifname} has no carrier"
    if "tentative" in inside:
        return f"{host.ifname} has a tentative IPv6 address"
    if not host.veth:
        return ""  # a host of add_pair: no bridge port
    port = _run(["bridge", "link", "show", "dev", host.veth], check=False).stdout
    if "state forwarding" not in port:
        return f"bridge port {host.veth} is not forwarding"
    return ""


@pytest.fixture
def netlab() -> Iterator[NetLab]:
    """Yield a NetLab (bridge + root addresses) and tear it down after the test.

    Skips when not root or when network namespaces cannot be created here.
    """
    reason = netlab_skip_reason()
    if reason:
        pytest.skip(reason)
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.teardown()
