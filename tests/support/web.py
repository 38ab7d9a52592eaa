"""Fixtures for the web: a real Apache (prefork, mod_include, mod_cgi) on a loopback port, and
headless Chromium to render what it serves.

Apache runs SSI commands and CGIs as www-data, so everything it touches lives
in a world-readable directory outside pytest's private tmp tree, and the
report command it runs must be executable by www-data (see `report_command`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = Path("/usr/lib/apache2/modules")
WEB_USER = "www-data"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,800",
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_web_user_ok(argv: list[str]) -> bool:
    """Return True if ARGV runs successfully as the web server's user."""
    try:
        r = subprocess.run(["runuser", "-u", WEB_USER, "--", *argv], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def report_command(base: Path) -> str:
    """Return the path of an ncs-report command that www-data can run.

    The venv's own ncs-report when www-data can execute it.  Otherwise (the
    venv's interpreter may live under /root, e.g. pyenv) a wrapper in BASE
    that runs the same checkout's report.cli with the system python3 of the
    same version, with the venv's pure-Python packages (rich,
    publicsuffixlist) on its path.
    """
    venv_cmd = Path(sys.executable).parent / "ncs-report"
    if _as_web_user_ok([str(venv_cmd), "--version"]):
        return str(venv_cmd)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system_python is None:
        pytest.skip(f"www-data cannot run {venv_cmd} and there is no system {version}")
    site = Path(sys.prefix) / "lib" / version / "site-packages"
    wrapper = base / "ncs-report"
    wrapper.write_text(
        "#!/bin/sh\n"
        # addsitedir runs the venv's .pth files, whose finder maps ncs.report to report/.
        f"exec {system_python} -c 'import site, sys; site.addsitedir(\"{site}\"); "
        f"from ncs.report.cli import main; sys.exit(main())' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    if not _as_web_user_ok([str(wrapper), "--version"]):
        pytest.skip(f"www-data can run neither {venv_cmd} nor {wrapper}")
    return str(wrapper)


class Apache:
    """One Apache instance with its own config under BASE, serving BASE/htdocs and BASE/cgi-bin."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.htdocs = base / "htdocs"
        self.cgi_bin = base / "cgi-bin"
        self.run_dir = base / "run"
        self.logs = base / "logs"
        for d in (self.htdocs, self.cgi_bin, self.run_dir, self.logs):
            d.mkdir(mode=0o755, exist_ok=True)
            d.chmod(0o755)
        self.port = free_port()
        self.conf = base / "httpd.conf"
        self.pid_file = self.run_dir / "httpd.pid"

    def url(self, path: str) -> str:
        """Return the http URL of PATH on this server."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def write_config(self) -> None:
        """Write httpd.conf: prefork, include, cgi, loopback port, everything under BASE."""
        mods = ["mpm_prefork", "authz_core", "mime", "dir", "alias", "include", "cgi"]
        lines = [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in mods]
        lines += [
            "ServerName 127.0.0.1",
            f"Listen 127.0.0.1:{self.port}",
            f"PidFile {self.pid_file}",
            f"Mutex file:{self.run_dir} default",
            f"DefaultRuntimeDir {self.run_dir}",
            f"ErrorLog {self.logs}/error.log",
            "LogLevel warn",
            f"User {WEB_USER}",
            f"Group {WEB_USER}",
            "TypesConfig /etc/mime.types",
            "StartServers 2", "MinSpareServers 1", "MaxSpareServers 3",
            f"DocumentRoot {self.htdocs}",
            "DirectoryIndex index.shtml",
            f"<Directory {self.htdocs}>",
            "  Options +Includes",
            "  AddType text/html .shtml",
            "  AddOutputFilter INCLUDES .shtml",
            "  Require all granted",
            "</Directory>",
            f"ScriptAlias /cgi-bin/ {self.cgi_bin}/",
            f"<Directory {self.cgi_bin}>",
            "  Options +ExecCGI",
            "  Require all granted",
            "</Directory>",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start Apache and wait until it accepts connections; raise RuntimeError if it does not."""
        self.stop()
        self.write_config()
        r = subprocess.run(["apache2", "-f", str(self.conf), "-k", "start"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, APACHE_RUN_DIR=str(self.run_dir)))
        if r.returncode != 0:
            raise RuntimeError(f"apache2 did not start: {r.stderr.strip()} {self.error_log()}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"apache2 is not listening on {self.port}: {self.error_log()}")

    def error_log(self) -> str:
        """Return the error log's text (empty if none)."""
        try:
            return (self.logs / "error.log").read_text()
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stop Apache by the pid in its pid file (idempotent)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)


class Chromium:
    """Headless Chromium: rendered DOM and screenshots of a URL, each run with a fresh profile."""

    def __init__(self, binary: str, scratch: Path) -> None:
        self.binary = binary
        self.scratch = scratch

    def _run(self, extra: list[str], url: str) -> str:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.scratch)
        try:
            r = subprocess.run([self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                               capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        if r.returncode != 0:
            raise RuntimeError(f"chromium failed on {url}: {r.stderr.strip()[-500:]}")
        return r.stdout

    def dump_dom(self, url: str) -> str:
        """Return the DOM of URL after rendering, serialized as HTML."""
        return self._run(["--dump-dom"], url)

    def screenshot(self, url: str, path: Path) -> Path:
        """Write a PNG screenshot of URL to PATH; return PATH."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run([f"--screenshot={path}"], url)
        if not path.exists() or path.stat().st_size == 0:
            raise RuntimeError(f"chromium wrote no screenshot of {url}")
        return path


@pytest.fixture
def web_base() -> Iterator[Path]:
    """A world-readable scratch directory for Apache's files (pytest's tmp_path is private)."""
    try:
        pwd.getpwnam(WEB_USER)
    except KeyError:
        pytest.skip(f"no {WEB_USER} user for Apache")
    base = Path(tempfile.mkdtemp(prefix=f"ncs-web-{os.getpid()}-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def apache(web_base: Path) -> Iterator[Apache]:
    """An Apache configured under web_base (not started: write pages first, then start())."""
    if shutil.which("apache2") is None or not (MODULES / "mod_include.so").exists():
        pytest.skip("apache2 with mod_include is not installed")
    server = Apache(web_base)
    yield server
    server.stop()


@pytest.fixture
def chromium(web_base: Path) -> Chromium:
    """Headless Chromium, or a skip when it is not installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed")
    return Chromium(binary, web_base)
