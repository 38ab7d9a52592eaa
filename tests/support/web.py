"""Fixtures for the web: a real Apache (prefork, mod_include, mod_cgi) on a loopback port, and
headless Chromium to render what it serves.

Apache runs SSI commands and CGIs as www-data, so everything it touches lives
in a world-readable directory outside pytest's private tmp tree, and the
report command it runs must be executable by www-data (see `report_command`).
"""

from __future__ import annotations

import base64
import fcntl
import json
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

from tests.support import processes

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


def _above_nine(fd: int) -> int:
    """Return a copy of FD numbered 10 or more, closing FD."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """One headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the browser).

    Used where the test must act like a reader: set the window's width and
    the colour-scheme preference, click, read the live DOM, take screenshots.
    """

    def __init__(self, binary: str, scratch: Path) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=scratch)
        self.log = Path(scratch) / f"{Path(self.profile).name}.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser's ends move above fd 9, so that "3<&N 4>&M" never reads a
        # descriptor the other redirection has just replaced.
        to_browser_r, from_browser_w = (_above_nine(fd) for fd in (to_browser_r, from_browser_w))
        flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--window-size")]
        # The browser reads commands on fd 3 and answers on fd 4.
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, binary, *flags, "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium's DevTools pipe")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed its DevTools pipe: {self._log_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float = 30.0, **params) -> dict:
        """Send one command (to the page when SESSION) and return its result; raise on an error."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"chromium is gone: {self._log_tail()}") from None
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer.get("result", {})

    def _log_tail(self) -> str:
        """Return the end of the browser's stderr, for an error message."""
        try:
            return self.log.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        """Return the next event METHOD (one that came already, or the next one to come)."""
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str, width: int, height: int = 900, dark: bool = False) -> None:
        """Load URL in a WIDTH-pixel window, with the reader preferring a dark or light scheme."""
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 600)
        self.call("Emulation.setEmulatedMedia", session=True,
                  features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """Return the value of a JavaScript EXPRESSION in the page (JSON-serialisable values)."""
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """Click the middle of the first element matching SELECTOR, as a mouse would."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """Write a PNG of the whole page to PATH; return PATH."""
        data = self.call("Page.captureScreenshot", session=True, format="png",
                         captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def console_problems(self) -> list[str]:
        """Return the browser log entries of level error or warning seen so far (CSP violations among them)."""
        return [e["params"]["entry"]["text"] for e in self.events
                if e.get("method") == "Log.entryAdded"
                and e["params"]["entry"]["level"] in ("error", "warning")]

    def close(self) -> None:
        """End the browser (by its pid) and remove its profile."""
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        processes.stop(self.proc, grace=10)
        shutil.rmtree(self.profile, ignore_errors=True)


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
def devtools(web_base: Path) -> Iterator[DevTools]:
    """Headless Chromium under the DevTools protocol, or a skip when it is not installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed")
    browser = DevTools(binary, web_base)
    yield browser
    browser.close()


@pytest.fixture
def chromium(web_base: Path) -> Chromium:
    """Headless Chromium, or a skip when it is not installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed")
    return Chromium(binary, web_base)
