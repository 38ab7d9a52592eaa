"""ncs-agent's verbs: start (daemonise), stop, restart, status, dump, config and run.

Every verb returns its exit status: 0 success, 1 failure, 2 invalid
configuration (raised as ConfigError and reported by the CLI), 3 "not running"
(status, dump).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import traceback

from ncs.agent.config import AgentConfig, config_as_yaml
from ncs.agent.environment import Environment, check_environment
from ncs.agent.errors import ConfigError
from ncs.agent.log import configure as configure_log
from ncs.agent.log import log, message_of
from ncs.agent.pidfile import (
    AlreadyRunning,
    catches_signal,
    create_pidfile,
    has_packet_socket,
    has_udp_port,
    process_alive,
    read_pid,
    remove_pidfile,
    running_pid,
    signal_process,
    wait_for_exit,
)
from ncs.agent.statusnote import note_path, read_note
from ncs.dumpport import BadAnswer, DumpPortError, NoAnswer, Unresolved, request_dump
from ncs.files import FileId, file_id, is_fresh, wait_rewritten
from ncs.hostport import format_hostport

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3

POLL = 0.05  # seconds between looks at a pid while waiting
KILL_WAIT = 5.0  # seconds to wait for a process to vanish after SIGKILL


def say(text: str) -> None:
    """Print one line on stderr (messages, errors)."""
    print(text, file=sys.stderr, flush=True)


def log_path(cfg: AgentConfig) -> str:
    """Return the file that takes a daemon's stderr: `<piddir>/<name>.log`."""
    return f"{cfg.piddir.rstrip('/')}/{cfg.name}.log"


def agent_pid(cfg: AgentConfig) -> int | None:
    """Return the pid of CFG's running agent, or None; the one way every verb finds it.

    Only a process that holds the pid file is the agent (see
    `pidfile.running_pid`).  When the file names a live process that is not,
    one line says so: that process is never signalled, and the file is stale.
    """
    pid = running_pid(cfg.pid_path)
    if pid is None:
        named = read_pid(cfg.pid_path)
        if named is not None and process_alive(named):
            say(f"ncs-agent: pid file '{cfg.pid_path}' names process {named}, which is not "
                f"{cfg.name}: ignored")
    return pid


# ----------------------------------------------------------------- start


def start(cfg: AgentConfig, to_stderr: bool = False, timeout: float = 30.0) -> int:
    """Check the config, daemonise and wait until the agent handles signals.

    Returns 0 once the daemon is ready (pid file written, its signal handlers
    installed, so `status` and `dump` right after work), 1 if it is already
    running or died while starting (its error is printed), and raises
    ConfigError for an invalid configuration before anything is started.
    """
    env = check_environment(cfg, need_piddir=True, to_stderr=to_stderr)
    return _start_checked(cfg, env, to_stderr, timeout)


def _start_checked(cfg: AgentConfig, env: Environment, to_stderr: bool, timeout: float) -> int:
    """Start the daemon for CFG, whose environment ENV has been checked; returns the exit status."""
    pid = agent_pid(cfg)
    if pid is not None:
        say(f"{cfg.name} already running (pid {pid})")
        return EXIT_FAIL
    sys.stdout.flush()
    sys.stderr.flush()
    log_start = _log_size(cfg)  # the log is appended to: this start's lines begin here
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reader)
        _become_daemon(cfg, env, to_stderr, writer)  # never returns
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader, "r", encoding="utf-8", errors="replace") as pipe:
        report = pipe.read()
    if not report.startswith("pid "):
        say(report.strip() or f"{cfg.name}: the daemon died before writing its pid file")
        return EXIT_FAIL
    return _wait_ready(cfg, int(report.split()[1]), timeout, to_stderr, log_start)


def _log_size(cfg: AgentConfig) -> int:
    """Return the daemon log's size now (0 if it does not exist yet)."""
    try:
        return os.path.getsize(log_path(cfg))
    except OSError:
        return 0


def _become_daemon(cfg: AgentConfig, env: Environment, to_stderr: bool, report_fd: int) -> None:
    """In the first child: detach (setsid, second fork) and run the agent; never returns.

    The grandchild writes "pid N" (or the reason it could not start) to
    REPORT_FD, then runs the capture on ENV (found before the fork) until
    TERM/INT and removes its pid file.
    """
    status = EXIT_FAIL
    try:
        os.setsid()  # leave the terminal's session: no SIGHUP when it closes
        if os.fork() != 0:
            os._exit(0)  # the first child exits; init adopts the grandchild
        os.chdir("/")  # do not keep a mount point busy
        _redirect_stdio(cfg, to_stderr)
        configure_log(to_file=not to_stderr)
        status = _daemon_main(cfg, env, to_stderr, report_fd)
    except BaseException:  # the daemon must end here, whatever happened
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(EXIT_FAIL)
    os._exit(status)


def _redirect_stdio(cfg: AgentConfig, to_stderr: bool) -> None:
    """Point stdin and stdout at /dev/null and stderr at the log file, appended to (kept as is with -d).

    The log is never truncated: the reason of the previous run's end stays.
    """
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    if not to_stderr:
        logfile = os.open(log_path(cfg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(logfile, 2)
        os.close(logfile)


def _daemon_main(cfg: AgentConfig, env: Environment, to_stderr: bool, report_fd: int) -> int:
    """In the daemon: create the pid file, report, run the capture; returns the exit status."""
    with os.fdopen(report_fd, "w", encoding="utf-8") as report:
        try:
            held = create_pidfile(cfg.pid_path)
        except AlreadyRunning as err:
            report.write(f"{cfg.name} already running (pid {err.pid})\n")
            return EXIT_FAIL
        except OSError as err:
            report.write(f"ncs-agent: cannot create pid file '{cfg.pid_path}': {err.strerror}\n")
            return EXIT_FAIL
        report.write(f"pid {os.getpid()}\n")
    return run_with_pidfile_held(cfg, env, to_stderr, held)


def run_with_pidfile_held(cfg: AgentConfig, env: Environment, to_stderr: bool, held: int) -> int:
    """Run the capture holding the pid file open as HELD, then remove it; returns the status.

    Holding the file is what tells the verbs this process is the agent.
    """
    try:
        return _run_capture(cfg, env, to_stderr)
    except ConfigError as err:
        log.error("%s", err)
        return EXIT_CONFIG
    finally:
        remove_pidfile(cfg.pid_path)
        os.close(held)


def _run_capture(cfg: AgentConfig, env: Environment, to_stderr: bool) -> int:
    """Run the capture in this process on ENV; returns the runner's exit status."""
    # The runner brings numpy and libpcap (~0.1 s): only the verbs that capture import it.
    from ncs.agent.runner import run_foreground

    return run_foreground(cfg, env, to_stderr=to_stderr)


def _wait_ready(cfg: AgentConfig, pid: int, timeout: float, to_stderr: bool, log_start: int) -> int:
    """Wait until daemon PID is ready (see _is_ready) or died; returns the exit status.

    Readiness is read from /proc, without the runner's help: a USR1 sent before
    the runner's handler is installed would kill the daemon (the default
    action), and an error opening the capture or the port must reach the user
    who ran `start`, not only the log.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not process_alive(pid):
            say(_death_note(cfg, pid, to_stderr, log_start))
            return EXIT_FAIL
        if read_pid(cfg.pid_path) == pid and _is_ready(cfg, pid):
            return EXIT_OK
        if time.monotonic() >= deadline:
            say(f"ncs-agent: {cfg.name} (pid {pid}) not ready after {timeout:g} s; "
                f"it keeps starting, see {log_path(cfg)}")
            return EXIT_FAIL
        time.sleep(POLL)


def _is_ready(cfg: AgentConfig, pid: int) -> bool:
    """Return True once PID catches USR1, has its capture open and (with `port`) its port bound.

    Each look goes through /proc; what /proc cannot tell counts as ready.
    """
    if catches_signal(pid, signal.SIGUSR1) is False:
        return False
    if cfg.read is None and has_packet_socket(pid) is False:
        return False
    return cfg.port is None or has_udp_port(pid, cfg.port) is not False


def _death_note(cfg: AgentConfig, pid: int, to_stderr: bool, log_start: int) -> str:
    """Return what to print when the daemon died while starting: its own last words if logged.

    Its words are the log's lines from LOG_START on (the log keeps earlier
    runs' lines), without their time, pid and level.
    """
    if to_stderr:
        return f"ncs-agent: {cfg.name} (pid {pid}) exited while starting"
    try:
        with open(log_path(cfg), "rb") as handle:
            handle.seek(log_start)
            text = handle.read().decode("utf-8", "replace")
        lines = [message_of(line.rstrip()) for line in text.splitlines() if line.strip()]
    except OSError:
        lines = []
    if not lines:
        return f"ncs-agent: {cfg.name} (pid {pid}) exited while starting"
    if any(line.startswith("Traceback") for line in lines):
        return f"ncs-agent: {cfg.name} crashed while starting: {lines[-1]} (see {log_path(cfg)})"
    return "\n".join(lines)


# ----------------------------------------------------------------- stop, restart, status


def stop(cfg: AgentConfig, timeout: float = 15.0) -> int:
    """Send TERM to the running agent and wait for it to exit (it writes its final dump).

    After TIMEOUT seconds it is killed (KILL) and 1 is returned; returns 0 when
    it exited, or when it was not running (with a message).
    """
    pid = agent_pid(cfg)
    if pid is None:
        stale = read_pid(cfg.pid_path)
        if stale is not None:
            remove_pidfile(cfg.pid_path, stale)
        say(f"{cfg.name} not running")
        return EXIT_OK
    try:
        signal_process(pid, signal.SIGTERM)
    except PermissionError:
        say(f"ncs-agent: cannot signal {cfg.name} (pid {pid}): permission denied")
        return EXIT_FAIL
    if wait_for_exit(pid, timeout, POLL):
        remove_pidfile(cfg.pid_path, pid)  # in case it could not remove it itself
        return EXIT_OK
    signal_process(pid, signal.SIGKILL)
    wait_for_exit(pid, KILL_WAIT, POLL)
    remove_pidfile(cfg.pid_path, pid)
    say(f"ncs-agent: {cfg.name} (pid {pid}) did not exit within {timeout:g} s: killed "
        "(no final dump)")
    return EXIT_FAIL


def restart(cfg: AgentConfig, to_stderr: bool = False, timeout: float = 15.0) -> int:
    """Stop the agent (if running) and start it again; returns the exit status.

    The new configuration is checked first, so a broken config file does not
    stop a running agent.  Raises ConfigError for an invalid configuration.
    """
    env = check_environment(cfg, need_piddir=True, to_stderr=to_stderr)
    if agent_pid(cfg) is not None:
        stop(cfg, timeout)
        if agent_pid(cfg) is not None:
            say(f"ncs-agent: {cfg.name} is still running; not restarted")
            return EXIT_FAIL
    return _start_checked(cfg, env, to_stderr, timeout=max(timeout, 30.0))


def status(cfg: AgentConfig) -> int:
    """Print "<pid> <name> is running" (0) or "<name> not running" (3) on stdout.

    A running agent's note (for example that it waits for its interface to
    come back) follows on a second line.
    """
    pid = agent_pid(cfg)
    if pid is None:
        print(f"{cfg.name} not running", flush=True)
        return EXIT_NOT_RUNNING
    print(f"{pid} {cfg.name} is running", flush=True)
    note = read_note(note_path(cfg))
    if note is not None:
        print(f"{cfg.name}: {note}", flush=True)
    return EXIT_OK


# ----------------------------------------------------------------- dump


def dump(cfg: AgentConfig, wait: bool = False, max_age: float | None = None,
         print_file: bool = False, timeout: float = 30.0) -> int:
    """Ask the running agent for a dump (USR1; the UDP port when a signal is not permitted).

    max_age: do not ask when the stats file is younger than this many seconds.
    wait: return once the file has been rewritten (1 after TIMEOUT seconds).
    print_file: then copy the file to stdout.
    Returns 0, 1 on failure or timeout, 3 if the agent is not running.
    """
    path = cfg.stats_path
    current = file_id(path)
    if max_age is None or not is_fresh(path, max_age):
        pid = agent_pid(cfg)
        if pid is None:
            say(f"{cfg.name} not running")
            return EXIT_NOT_RUNNING
        status_code = _request_dump(cfg, pid)
        if status_code != EXIT_OK:
            return status_code
        if wait and not _wait_rewritten(cfg, pid, current, timeout):
            return EXIT_FAIL
    if print_file:
        return _copy_to_stdout(path)
    return EXIT_OK


def _request_dump(cfg: AgentConfig, pid: int) -> int:
    """Send USR1 to PID, or `dump` to the UDP port if the signal is not permitted; returns status."""
    try:
        if signal_process(pid, signal.SIGUSR1):
            return EXIT_OK
        say(f"{cfg.name} not running")
        return EXIT_NOT_RUNNING
    except PermissionError:
        if cfg.port is None:
            say(f"ncs-agent: cannot signal {cfg.name} (pid {pid}): permission denied "
                "(configure `port` to ask over UDP)")
            return EXIT_FAIL
    return EXIT_OK if udp_dump_request(cfg) is not None else EXIT_FAIL


def udp_dump_request(cfg: AgentConfig, tries: int = 3, wait: float = 1.0) -> int | None:
    """Send `dump` to the agent's UDP port; returns the epoch of its `OK <epoch>`, or None.

    The request is sent up to TRIES times, WAIT seconds apart.  The port's
    'INADDR_ANY' and 'INADDR_LOOPBACK' are reached on 127.0.0.1.  Prints why
    on failure; raises ConfigError when the dump host does not resolve.
    """
    if cfg.port is None:
        say(f"ncs-agent: {cfg.name} has no dump port (`port` is not set)")
        return None
    host = "127.0.0.1" if cfg.host in ("INADDR_ANY", "INADDR_LOOPBACK") else cfg.host
    where = format_hostport(host, cfg.port)
    try:
        return request_dump(host, cfg.port, timeout=tries * wait, tries=tries)
    except Unresolved:
        raise ConfigError(f"config: bad dump host '{cfg.host}'") from None
    except NoAnswer:
        say(f"ncs-agent: no answer from {where} (is this address in `allowed`?)")
    except BadAnswer as err:
        say(f"ncs-agent: {where} answered '{err.detail}'")
    except DumpPortError as err:
        say(f"ncs-agent: dump request to {where} failed: {err.reason}")
    return None


def _wait_rewritten(cfg: AgentConfig, pid: int, before: FileId | None, timeout: float) -> bool:
    """Wait until the stats file differs from BEFORE; returns False (with a message) on timeout."""
    if wait_rewritten(cfg.stats_path, before, timeout, give_up=lambda: not process_alive(pid)):
        return True
    if not process_alive(pid):
        say(f"ncs-agent: {cfg.name} (pid {pid}) exited before writing '{cfg.stats_path}'")
    else:
        say(f"ncs-agent: {cfg.name}: '{cfg.stats_path}' not rewritten within {timeout:g} s")
    return False


def _copy_to_stdout(path: str) -> int:
    """Copy the file at PATH to stdout as bytes; returns 0, or 1 with a message if unreadable."""
    try:
        with open(path, "rb") as handle:
            sys.stdout.flush()
            shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    except OSError as err:
        say(f"ncs-agent: cannot read '{path}': {err.strerror or err}")
        return EXIT_FAIL
    return EXIT_OK


# ----------------------------------------------------------------- config, run


def show_config(cfg: AgentConfig, source: str | None, to_stderr: bool = False) -> int:
    """Check CFG as `run` would and print it as YAML with what was found as comments; returns 0.

    Raises ConfigError for an invalid configuration.
    """
    env = check_environment(cfg, need_piddir=False, to_stderr=to_stderr)
    comments = [f"ncs-agent effective configuration ({source or 'defaults and command line'})",
                f"monitored addresses: {', '.join(env.addresses)}"]
    if env.device:
        mode = "promiscuous" if env.promiscuous else "non-promiscuous"
        comments.append(f"capture device: {env.device} ({mode})")
    comments.append(f"pid file: {cfg.pid_path}; stats file: {cfg.stats_path}")
    sys.stdout.write(config_as_yaml(cfg, comments))
    sys.stdout.flush()
    return EXIT_OK


def run(cfg: AgentConfig, to_stderr: bool = False) -> int:
    """Run in the foreground (systemd, replay); returns the runner's exit status.

    Live capture also writes the pid file when the pid directory is usable, so
    status, stop and dump find an agent run by systemd; replay (--read) does
    not.  A missing piddir is reported only when it was configured explicitly.
    Returns 1 if another agent of this name is running.  Raises ConfigError.
    """
    dumps_to_stderr = to_stderr or cfg.stats == "-"
    env = check_environment(cfg, need_piddir=False, to_stderr=dumps_to_stderr)
    if cfg.read is not None:
        return _run_capture(cfg, env, to_stderr)
    try:
        held = create_pidfile(cfg.pid_path)
    except AlreadyRunning as err:
        say(f"{cfg.name} already running (pid {err.pid})")
        return EXIT_FAIL
    except OSError as err:
        # A configured piddir that does not work deserves a word; the default
        # one missing (a test run, a host set up without it) does not.
        if "piddir" in cfg.origins:
            say(f"ncs-agent: no pid file '{cfg.pid_path}' ({err.strerror}): "
                "status, stop and dump will not find this agent")
        return _run_capture(cfg, env, to_stderr)
    return run_with_pidfile_held(cfg, env, to_stderr, held)
