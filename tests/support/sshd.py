"""Real sshd instances for tests: own host keys, authorized_keys and config, on loopback or in a netns host.

`sshd_factory` starts OpenSSH's sshd in the foreground (-D) with a config whose
paths all live under the test's tmp_path, so its pid is the Popen's pid (SIGSTOP
hangs exactly that server).  `make_client_key` creates a fresh ed25519 key pair
with ssh-keygen.  Tests write their own known_hosts from `Sshd.known_hosts_line`.

Sessions run as root with the shell the system gives root; PATH is set with
sshd's SetEnv so that the project's venv (ncs-agent, ncs-coalesce) comes first.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import processes

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 10.0
VENV_BIN = str(Path(sys.executable).parent)
SESSION_PATH = f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class SshKey:
    """A key pair on disk: the private key file and the public key line."""

    path: str
    public: str


def make_client_key(directory: Path, name: str = "client") -> SshKey:
    """Create an ed25519 key pair DIRECTORY/NAME(.pub) with no passphrase; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return SshKey(str(path), (directory / f"{name}.pub").read_text().strip())


@dataclass
class Sshd:
    """One running sshd: where it listens, its host key and its authorized_keys file."""

    address: str
    port: int
    directory: Path
    host_key_public: str  # "ssh-ed25519 AAAA..."
    authorized_keys: Path
    proc: subprocess.Popen | None = None
    netns: str | None = None
    paused: bool = field(default=False)

    @property
    def pid(self) -> int:
        """The sshd listener's pid."""
        assert self.proc is not None
        return self.proc.pid

    def known_hosts_line(self) -> str:
        """Return this server's known_hosts line ('[addr]:port type key', or 'addr type key')."""
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {self.host_key_public}"

    def authorize(self, key: SshKey, options: str = "") -> None:
        """Add KEY to authorized_keys, with authorized_keys OPTIONS (e.g. command="...")."""
        with self.authorized_keys.open("a") as f:
            f.write((options + " " if options else "") + key.public + "\n")

    def pause(self) -> None:
        """SIGSTOP the server: it still accepts TCP connections (kernel backlog) but never answers."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self.paused and self.proc is not None and self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """Stop the server (and let its session children finish); idempotent."""
        if self.proc is None:
            return
        self.resume()
        processes.stop(self.proc, grace=5)
        self.proc = None


def free_port(address: str) -> int:
    """Return a TCP port that is free on ADDRESS right now (bind to port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def random_loopback() -> str:
    """Return a random 127.x.y.z address (all of 127/8 is on lo), so parallel runs do not collide."""
    return f"127.{random.randint(64, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


def wait_listening(address: str, port: int, proc: subprocess.Popen, log: Path,
                   timeout: float = START_TIMEOUT) -> None:
    """Wait until sshd accepts TCP connections from the test process.

    Raises RuntimeError with the end of its log if it exits or stays silent.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {_tail(log)}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd on {address}:{port} not listening after {timeout:.0f} s: {_tail(log)}")


def wait_logged(line: str, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    """Wait until sshd's LOG holds LINE; raises RuntimeError if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {_tail(log)}")
        if log.exists() and line in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not log {line!r} within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return "(no log)"


class SshdFactory:
    """Starts sshd instances for one test and stops them all at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: list[Sshd] = []

    def start(self, address: str | None = None, port: int | None = None, netns: str | None = None,
              extra_config: str = "", reachable: bool = True, log_level: str = "VERBOSE") -> Sshd:
        """Start one sshd on ADDRESS:PORT (default: a random loopback address, a free port).

        With NETNS the server runs inside that network namespace (ADDRESS must
        be one of its addresses; PORT defaults to 2222).  Returns the running
        Sshd once it accepts connections (once its log says it listens, when
        the test process cannot REACH the address); raises RuntimeError
        otherwise.  LOG_LEVEL is sshd's LogLevel (DEBUG1 logs the algorithms
        each connection negotiated).
        """
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        if address is None:
            address = random_loopback()
        if port is None:
            port = 2222 if netns else free_port(address)
        d = self.base / f"sshd-{len(self.servers)}-{address}-{port}"
        d.mkdir(parents=True)
        key = d / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True)
        pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        authorized = d / "authorized_keys"
        authorized.touch()
        conf = d / "sshd_config"
        conf.write_text(
            f"Port {port}\n"
            f"ListenAddress {address}\n"
            f"HostKey {key}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "MaxStartups 200\n"
            "MaxSessions 50\n"
            f"LogLevel {log_level}\n"
            f"SetEnv PATH={SESSION_PATH}\n"
            "Subsystem sftp internal-sftp\n"
            + extra_config
        )
        check = subprocess.run([SSHD, "-t", "-f", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd -t {conf}: {check.stderr.strip()}")
        log = d / "sshd.log"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        proc = subprocess.Popen([*prefix, SSHD, "-D", "-f", str(conf), "-E", str(log)],
                                stdin=subprocess.DEVNULL)
        server = Sshd(address, port, d, pub, authorized, proc, netns)
        self.servers.append(server)
        if reachable:
            wait_listening(address, port, proc, log)
        else:
            wait_logged(f"Server listening on {address} port {port}", proc, log)
        return server

    def teardown(self) -> None:
        """Stop every server this factory started; idempotent."""
        for server in self.servers:
            server.stop()


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[SshdFactory]:
    """Yield an SshdFactory; every sshd it started is stopped after the test.

    Skips when openssh-server is not installed or the test is not root.
    """
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server (sshd, ssh-keygen) is not installed")
    if os.geteuid() != 0:
        pytest.skip("sshd tests log in as root and need root")
    factory = SshdFactory(tmp_path / "sshd")
    try:
        yield factory
    finally:
        factory.teardown()


@pytest.fixture
def client_key(tmp_path: Path) -> SshKey:
    """A fresh ed25519 client key pair for this test."""
    return make_client_key(tmp_path / "client-keys")
