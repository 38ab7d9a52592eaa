"""Tests of the network-namespace lab fixture: reachability, clean teardown, no collisions."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.support.netns import NetLab, link_exists, netns_exists, netns_pids


def ping(host, target: str) -> subprocess.CompletedProcess:
    """Ping target once from inside host (2 s deadline); returns the completed process."""
    return host.run(["ping", "-c", "1", "-W", "2", target], check=False)


def test_hosts_ping_each_other_over_v4_and_v6(netlab: NetLab) -> None:
    a = netlab.add_host("a", "198.51.100.11", "2001:db8:100::11")
    b = netlab.add_host("b", "198.51.100.12", "2001:db8:100::12")
    for src, dst in ((a, b), (b, a)):
        for addr in (dst.ipv4, dst.ipv6):
            proc = ping(src, addr)
            assert proc.returncode == 0, f"{src.netns} -> {addr}: {proc.stdout}{proc.stderr}"


def test_hosts_reach_the_root_namespace_and_back(netlab: NetLab) -> None:
    a = netlab.add_host("a", "198.51.100.21")
    assert a.ipv6 == "2001:db8:100::21"
    for addr in (netlab.root_ipv4, netlab.root_ipv6):
        proc = ping(a, addr)
        assert proc.returncode == 0, f"{a.netns} -> {addr}: {proc.stdout}{proc.stderr}"
    for addr in (a.ipv4, a.ipv6):
        proc = subprocess.run(["ping", "-c", "1", "-W", "2", addr], capture_output=True, text=True)
        assert proc.returncode == 0, f"root -> {addr}: {proc.stdout}{proc.stderr}"


def test_root_namespace_reaches_a_tcp_server_in_a_host(netlab: NetLab) -> None:
    host = netlab.add_host("srv", "198.51.100.31")
    port = 20000 + os.getpid() % 20000
    server = host.popen(
        ["python3", "-c",
         "import socket,sys;s=socket.create_server((sys.argv[1],int(sys.argv[2])));"
         "print('ready',flush=True);c,_=s.accept();c.sendall(b'hello from ns');c.close()",
         host.ipv4, str(port)],
        stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    import socket

    with socket.create_connection((host.ipv4, port), timeout=5) as conn:
        assert conn.recv(100) == b"hello from ns"


def test_teardown_removes_everything_and_kills_processes() -> None:
    lab = NetLab()
    host = lab.add_host("t", "198.51.100.41")
    tracked = host.popen(["sleep", "300"])
    # a process the lab did not start itself, found through `ip netns pids`
    subprocess.run(host.cmd(["sh", "-c", "sleep 300 >/dev/null 2>&1 &"]), check=True)
    deadline = time.monotonic() + 5
    while len(netns_pids(host.netns)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    strays = [p for p in netns_pids(host.netns) if p != tracked.pid]
    assert strays, "the detached sleep should live in the namespace"
    names = (host.netns, host.veth, lab.bridge)
    assert netns_exists(host.netns) and link_exists(host.veth) and link_exists(lab.bridge)

    lab.teardown()
    lab.teardown()  # idempotent

    assert tracked.returncode is not None
    for pid in strays:
        assert not os.path.exists(f"/proc/{pid}") or _state(pid) == "Z"
    assert not netns_exists(names[0])
    assert not link_exists(names[1])
    assert not link_exists(names[2])
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert host.netns not in listed


def _state(pid: int) -> str:
    """Return the process state letter of pid ('' if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def test_second_lab_in_the_same_test_does_not_collide(netlab: NetLab) -> None:
    first = netlab.add_host("a", "198.51.100.51")
    other = NetLab()
    try:
        second = other.add_host("a", "198.51.100.52")
        assert other.bridge != netlab.bridge
        assert second.netns != first.netns and second.veth != first.veth
        assert len(other.bridge) <= 15 and len(second.veth) <= 15
        # each lab's host reaches its own root address; the labs are separate links
        assert ping(first, netlab.root_ipv4).returncode == 0
        assert ping(second, other.root_ipv4).returncode == 0
        assert ping(second, other.root_ipv6).returncode == 0
        assert ping(first, second.ipv4).returncode != 0
        with pytest.raises(ValueError, match="already used"):
            other.add_host("dup", first.ipv4)
    finally:
        other.teardown()
    assert not link_exists(other.bridge)
    assert ping(first, netlab.root_ipv4).returncode == 0
