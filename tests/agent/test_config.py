"""ncs-agent's configuration: every bad value is one line naming key and value, exit 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ncs.agent.config import AgentConfig, format_match, load_config, parse_match, resolve_config

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
GOOD_BPF = "udp and host 127.0.0.1"  # lo carries 127.0.0.1 in every namespace


def agent(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run the real ncs-agent with ARGS; returns the completed process (text output)."""
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    """A directory with run/ (pid files) and stats/ (stats files) for the config under test."""
    (tmp_path / "run").mkdir()
    (tmp_path / "stats").mkdir()
    return tmp_path


def write_config(dirs: Path, body: str, base: bool = True) -> Path:
    """Write a config file with working piddir/sniffer/bpf lines the body does not set.

    BASE puts them first (the body starts at line 4), else after the body
    (the body starts at line 1).
    """
    defaults = {"piddir": dirs / "run", "sniffer": dirs / "stats", "bpf": f"'{GOOD_BPF}'"}
    lines = "".join(f"{key}: {value}\n" for key, value in defaults.items()
                    if base or f"{key}:" not in body)
    path = dirs / "agent.yaml"
    path.write_text(lines + body if base else body + lines)
    return path


# (case id, YAML appended after the 3 base lines (line 4 on), base?, message with {f}=file {d}=dir)
BAD_CONFIGS = [
    ("no-bpf", "dns: false\n", None, "config: missing hostname in bpf string"),
    ("bpf-without-host", "bpf: udp\n", False, "config: {f}:1: missing hostname in bpf string"),
    ("bad-hostname", "bpf: host no-such-host.invalid\n", False,
     "config: {f}:1: bad hostname 'no-such-host.invalid' in bpf filter string"),
    ("no-interface", "bpf: udp and host 203.0.113.77\n", False,
     "config: {f}:1: could not find interface for '203.0.113.77' in bpf string"),
    ("bpf-syntax", "bpf: udp and and host 127.0.0.1\n", False,
     "config: {f}:1: bad bpf filter string 'udp and and host 127.0.0.1': ..."),
    ("no-device", "device: nosuchdev0\n", True, "config: {f}:4: no such device 'nosuchdev0'"),
    ("sniffer-missing", "sniffer: /nonexistent/ncs\nbpf: host 127.0.0.1\n", False,
     "config: {f}:1: sniffer directory '/nonexistent/ncs' missing or not writable"),
    ("stats-not-writable", "name: blocked\n", True, "config: {f}:2: '{d}/stats/blocked.stats' not writable"),
    ("payload-missing", "match: foo\n", True,
     "config: invalid payload length: match/nomatch need `payload`, an offset below snaplen (96)"),
    ("payload-too-big", "nomatch: foo\npayload: 96\n", True,
     "config: {f}:5: invalid payload length '96': match/nomatch need 0 < payload < snaplen (96)"),
    ("port-text", "port: abc\n", True, "config: {f}:4: invalid port number 'abc'"),
    ("port-zero", "port: 0\n", True, "config: {f}:4: invalid port number '0'"),
    ("port-big", "port: 65536\n", True, "config: {f}:4: invalid port number '65536'"),
    ("port-bool", "port: true\n", True, "config: {f}:4: invalid port number 'True'"),
    ("dump-host", "port: 10004\nhost: no-such-host.invalid\n", True,
     "config: {f}:5: bad dump host 'no-such-host.invalid'"),
    ("allowed", "port: 10004\nallowed: [127.0.0.1, no-such-host.invalid]\n", True,
     "config: {f}:5: invalid 'allowed' host or IP 'no-such-host.invalid'"),
    ("allowed-type", "allowed: {a: 1}\n", True,
     "config: {f}:4: invalid 'allowed' host or IP '{{'a': 1}}': expected a list"),
    ("snaplen-small", "snaplen: 20\n", True, "config: {f}:4: invalid snaplen '20': must be 64..262144 bytes"),
    ("snaplen-big", "snaplen: 300000\n", True,
     "config: {f}:4: invalid snaplen '300000': must be 64..262144 bytes"),
    ("max-hosts", "max_hosts: 0\n", True, "config: {f}:4: invalid max_hosts '0': must be at least 1"),
    ("buffer-size", "buffer_size: 100\n", True,
     "config: {f}:4: invalid buffer_size '100': must be 65536..2147483647 bytes"),
    ("nameserver-port", "nameserver: '127.0.0.1:99999'\n", True,
     "config: {f}:4: invalid nameserver '127.0.0.1:99999': use ADDRESS, ADDRESS:PORT or [IPv6]:PORT"),
    ("nameserver-name", "nameserver: ns.example\n", True,
     "config: {f}:4: invalid nameserver 'ns.example': use ADDRESS, ADDRESS:PORT or [IPv6]:PORT"),
    ("dns", "dns: maybe\n", True, "config: {f}:4: invalid dns 'maybe': use true or false"),
    ("name", "name: ../etc/x\n", True,
     "config: {f}:4: invalid name '../etc/x': use up to 64 letters, digits, '_', '@', '.', '-' "
     "(it names the pid and stats files)"),
    ("user", "user: no-such-user-ncs\n", True, "config: {f}:4: unknown user 'no-such-user-ncs'"),
    ("low-port-user", "port: 999\nuser: nobody\n", True,
     "config: {f}:4: invalid port number '999': user 'nobody' cannot bind a port below 1024"),
    ("unknown-key", "colour: blue\n", True, "config: {f}:4: unknown key 'colour'"),
    ("twice", "snaplen: 100\nsnaplen: 200\n", True, "config: {f}:5: key 'snaplen' given twice"),
    ("yaml-syntax", "allowed: [127.0.0.1\n", True,
     "config: {f}:5: invalid YAML: did not find expected ',' or ']'"),
    ("not-mapping", "- a\n- b\n", None, "config: {f}: expected a mapping of keys to values"),
    ("history-keep", "history_keep: raw=2x\n", True,
     "config: {f}:4: invalid history_keep 'raw=2x': '2x' is not a span of time (a number with s, m, h, d, w or y)"),
    ("bad-escape", "match: 'a\\x{{zz}}'\npayload: 44\n", True, "config: {f}:4: invalid escape in match 'a\\x{{zz}}'"),
]


# Cases also run through `start` (each run costs a Python start-up): one per kind of check.
ALSO_START = {"no-bpf", "bad-hostname", "no-interface", "sniffer-missing", "stats-not-writable",
              "payload-too-big", "port-text", "dump-host", "user", "unknown-key", "yaml-syntax"}


@pytest.mark.parametrize("case,body,base,message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_one_line_exit_2(dirs: Path, case: str, body: str, base: bool | None,
                                       message: str) -> None:
    if "name: blocked" in body:
        (dirs / "stats" / "blocked.stats").mkdir()  # a directory where the stats file goes
    body = body.replace("{{", "{").replace("}}", "}")
    if base is None:  # the file is exactly the body
        path = dirs / "agent.yaml"
        path.write_text(body)
    else:
        path = write_config(dirs, body, base)
    expected = message.format(f=path, d=dirs)
    for verb in ("config", "start") if case in ALSO_START else ("config",):
        proc = agent("-c", str(path), verb)
        assert (proc.returncode, proc.stdout, proc.stderr.count("\n")) == (2, "", 1), verb
        if expected.endswith("..."):  # the rest is libpcap's wording, which varies by version
            assert proc.stderr.startswith(expected[:-3]), verb
        else:
            assert proc.stderr == expected + "\n", verb
    assert os.listdir(dirs / "run") == []  # nothing started: no pid file, no log


def test_missing_config_file(tmp_path: Path) -> None:
    proc = agent("-c", str(tmp_path / "absent.yaml"), "config")
    assert proc.returncode == 2
    assert proc.stderr == f"config: cannot read '{tmp_path / 'absent.yaml'}': No such file or directory\n"


def test_piddir_checked_by_start(dirs: Path) -> None:
    path = write_config(dirs, "piddir: /nonexistent/run\n", base=False)
    proc = agent("-c", str(path), "start")
    assert proc.returncode == 2
    assert proc.stderr == f"config: {path}:1: pid directory '/nonexistent/run' missing or not writable\n"


def test_command_line_errors_have_no_file_location(dirs: Path) -> None:
    path = write_config(dirs, "snaplen: 100\n")
    proc = agent("-c", str(path), "config", "--snaplen", "5")
    assert (proc.returncode, proc.stderr) == (2, "config: invalid snaplen '5': must be 64..262144 bytes\n")
    proc = agent("-c", str(path), "config", "--port", "x1")
    assert (proc.returncode, proc.stderr) == (2, "config: invalid port number 'x1'\n")


def test_command_line_overrides_file(dirs: Path) -> None:
    path = write_config(dirs, "port: abc\nsnaplen: 100\nname: fromfile\ndns: true\n")
    proc = agent("-c", str(path), "config", "--port", "10007", "--snaplen", "200", "--name", "cli",
                 "--no-dns", "--allowed", "127.0.0.1", "--allowed", "::1", "--device", "lo")
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)
    assert shown["port"] == 10007  # the file's invalid 'abc' is overridden, not reported
    assert shown["snaplen"] == 200
    assert shown["name"] == "cli"
    assert shown["dns"] is False
    assert shown["allowed"] == ["127.0.0.1", "::1"]
    assert shown["device"] == "lo"
    assert shown["piddir"] == str(dirs / "run")  # untouched file values stay


def test_config_output_round_trips(dirs: Path) -> None:
    match = b"\ncom\\x{41}\xff'\""
    body = (f"match: {yaml.safe_dump(format_match(match)).splitlines()[0]}\npayload: 54\nsnaplen: 128\nport: '10009'\n"
            "host: INADDR_ANY\nallowed: localhost\nnameserver: '[::1]:5300'\ndns: false\n"
            "max_hosts: 5000\nbuffer_size: 1048576\nname: web-1\ndevice: lo\n")
    path = write_config(dirs, body)
    proc = agent("-c", str(path), "config")
    assert proc.returncode == 0, proc.stderr
    assert "monitored addresses: 127.0.0.1" in proc.stdout
    again = dirs / "again.yaml"
    again.write_text(proc.stdout)
    shown = resolve_config(load_config(str(again)), {})
    original = resolve_config(load_config(str(path)), {})
    assert shown == original
    assert shown.match == match
    assert shown.port == 10009 and shown.host == "INADDR_ANY" and shown.allowed == ["localhost"]
    assert shown.nameserver == "[::1]:5300" and shown.dns is False and shown.snaplen == 128
    # printed again, the text is identical: nothing drifts between rounds
    assert agent("-c", str(again), "config").stdout.split("\n", 1)[1] == proc.stdout.split("\n", 1)[1]


def test_defaults_and_file_values() -> None:
    cfg = resolve_config({}, {})
    assert cfg == AgentConfig()
    assert cfg.stats_path == "/var/lib/ncs/ncs-agent.stats" and cfg.pid_path == "/run/ncs/ncs-agent.pid"
    cfg = resolve_config({"allowed": [], "port": "10004", "match": "", "nomatch": None}, {"name": "x"})
    assert cfg.allowed == ["127.0.0.1"] and cfg.port == 10004 and cfg.match is None and cfg.name == "x"


@pytest.mark.parametrize("data", [b"", b"plain", b"\x00\x01\\x{41}", bytes(range(256))])
def test_match_escape_round_trip(data: bytes) -> None:
    assert parse_match(format_match(data)) == data


def test_original_escape_form() -> None:
    assert parse_match("\\x{a}somedomain\\x{3}com") == b"\nsomedomain\x03com"
    assert format_match(b"\nsomedomain\x03com") == "\\x{a}somedomain\\x{3}com"


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "ncs-agent.example.yaml"


def test_example_config_is_valid_and_shows_the_defaults(tmp_path: Path) -> None:
    import re

    assert resolve_config(load_config(str(EXAMPLE)), {}).bpf
    # uncomment every example setting: still valid, and the documented defaults are the real ones
    text = re.sub(r"(?m)^#(\w+:|  - )", r"\1", EXAMPLE.read_text())
    every = tmp_path / "every.yaml"
    every.write_text(text)
    cfg = resolve_config(load_config(str(every)), {})
    default = AgentConfig()
    for key in ("name", "piddir", "sniffer", "snaplen", "host", "dns", "max_hosts", "buffer_size"):
        assert getattr(cfg, key) == getattr(default, key), key
    assert cfg.match == b"\x07example\x03com" and cfg.payload == 42 and cfg.port == 10004
