"""Key material read once per run: known_hosts lookups as paramiko's, a fleet-sized file read once, identities."""

from __future__ import annotations

import base64
import random
import re
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncs.coalesce import sshkeys
from ncs.coalesce.sshkeys import KnownHostsFile
from tests.coalesce.fleet import Fleet, make_records, write_stats


def _public_keys(directory: Path) -> list[paramiko.PKey]:
    """Return four public keys made by ssh-keygen: two ed25519, an ECDSA and an RSA one."""
    keys = []
    for i, (kind, bits) in enumerate([("ed25519", []), ("ed25519", []), ("ecdsa", ["-b", "256"]),
                                      ("rsa", ["-b", "2048"])]):
        path = directory / f"k{i}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-f", str(path)],
                       check=True, capture_output=True)
        kind_name, data = (directory / f"k{i}.pub").read_text().split()[:2]
        keys.append(paramiko.PKey.from_type_string(kind_name, base64.b64decode(data)))
    return keys


@pytest.fixture(scope="module")
def public_keys(tmp_path_factory) -> list[paramiko.PKey]:
    return _public_keys(tmp_path_factory.mktemp("keys"))


HOSTS = ["h1", "h2", "10.0.0.1", "[h1]:2222", "2001:db8::1"]
LINES = st.lists(st.one_of(
    st.tuples(st.just("entry"), st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True),
              st.integers(0, 3), st.booleans()),
    st.sampled_from([("comment",), ("blank",), ("short",), ("unknown-type",)])), max_size=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_lookups_equal_paramikos(lines, public_keys, tmp_path: Path):
    """Plain and hashed names, several names a line, several lines and key types
    a host, lines paramiko skips: each host gets paramiko's keys, in its order."""
    text = []
    for line in lines:
        if line[0] == "entry":
            _, names, k, hashed = line
            key = public_keys[k]
            shown = [paramiko.HostKeys.hash_host(n) for n in names] if hashed else names
            text.append(f"{','.join(shown)} {key.get_name()} {key.get_base64()}")
        else:
            text.append({"comment": "# a comment", "blank": "", "short": "h1 ssh-ed25519",
                         "unknown-type": "h1 ssh-unknown AAAA"}[line[0]])
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(text) + "\n")
    ours = KnownHostsFile.read(str(path))
    theirs = paramiko.HostKeys(str(path))
    for host in HOSTS:
        found = theirs.lookup(host)
        want = {} if found is None else {kind: found[kind] for kind in dict.fromkeys(found.keys())}
        got = ours.lookup(host)
        assert list(got) == list(want)  # the first type is the one paramiko asks the server for
        assert all(got[kind] == want[kind] for kind in want)


def test_a_line_that_is_not_base64_is_skipped(public_keys, tmp_path: Path):
    key = public_keys[0]
    path = tmp_path / "known_hosts"
    path.write_text(f"h1 ssh-ed25519 !!not-base64!!\nh2 {key.get_name()} {key.get_base64()}\n")
    known = KnownHostsFile.read(str(path))
    assert known.lookup("h1") == {}
    assert known.lookup("h2") == {key.get_name(): key}


def test_a_fleets_known_hosts_is_read_once_and_kept_by_what_we_add(public_keys, tmp_path: Path):
    """20,000 lines (200 of them hashed): 2,000 lookups take about a second, where
    reading the file for each (paramiko's way, itself quadratic) takes minutes;
    a change by someone else is seen; 1,000 hosts remembered one by one (a first
    run with accept-new) are found without reading the file 1,000 times."""
    key = public_keys[0]
    path = tmp_path / "known_hosts"
    with path.open("w") as f:
        for i in range(20_000):
            name = f"[host{i}.example]:22{i % 10}"
            name = paramiko.HostKeys.hash_host(name) if i % 100 == 0 else name
            f.write(f"{name} {key.get_name()} {key.get_base64()}\n")
    started = time.process_time()
    for i in range(0, 20_000, 10):
        assert sshkeys.host_keys(str(path), f"[host{i}.example]:22{i % 10}") == {key.get_name(): key}
    assert sshkeys.host_keys(str(path), "[host0.example]:221") == {}
    # about 1.5 s of it is reading the file once, 0.5 s the HMAC of every hashed line a lookup
    assert time.process_time() - started < 5.0
    started = time.process_time()
    for i in range(2_000):
        assert sshkeys.host_keys(str(path), f"[host{10 * i + 1}.example]:22{(10 * i + 1) % 10}")
    assert time.process_time() - started < 2.0
    with path.open("a") as f:  # another process adds a host
        f.write(f"newcomer {public_keys[2].get_name()} {public_keys[2].get_base64()}\n")
    assert sshkeys.host_keys(str(path), "newcomer") == {public_keys[2].get_name(): public_keys[2]}
    started = time.process_time()
    for i in range(1_000):
        sshkeys.remember(str(path), f"new{i}", public_keys[1])
        assert sshkeys.host_keys(str(path), f"new{i}") == {public_keys[1].get_name(): public_keys[1]}
    assert time.process_time() - started < 3.0  # reading 20,000 lines a time would take minutes
    remembered = [line for line in path.read_text().splitlines() if re.match(r"new\d+ ", line)]
    assert remembered == [f"new{i} {public_keys[1].get_name()} {public_keys[1].get_base64()}"
                          for i in range(1_000)]


def test_an_identity_is_read_once_and_a_protected_one_is_left_to_paramiko(tmp_path: Path):
    plain, protected = tmp_path / "plain", tmp_path / "protected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(plain)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(protected)], check=True)
    first = sshkeys.identity(str(plain))
    assert isinstance(first, paramiko.Ed25519Key)
    assert sshkeys.identity(str(plain)) is first
    assert first.get_base64() == (tmp_path / "plain.pub").read_text().split()[1]
    assert sshkeys.identity(str(protected)) is None
    assert sshkeys.identity(str(tmp_path / "missing")) is None


def test_hashed_known_hosts_let_the_coalescer_in_and_still_refuse_a_changed_key(fleet: Fleet, tmp_path: Path):
    """known_hosts hashed by ssh-keygen -H, with a real sshd: the host is found;
    after its entry is swapped for another key, the host is refused."""
    records = make_records(random.Random(7), 20, 1_700_000_000, ["a.example", "b.example"])
    path = write_stats(tmp_path / "host.stats", records, 1_700_000_000)
    server = fleet.server()
    fleet.serve_file("hashed", path, server, host_key_check="strict")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(fleet.known_hosts)], check=True, capture_output=True)
    assert "|1|" in fleet.known_hosts.read_text()
    run = fleet.run()
    assert run.returncode == 0, run.stderr
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    name = f"[{server.address}]:{server.port}"
    fleet.known_hosts.write_text(
        f"{paramiko.HostKeys.hash_host(name)} {' '.join((tmp_path / 'impostor.pub').read_text().split()[:2])}\n")
    run = fleet.run("--force")
    assert run.returncode != 0
    assert "host key changed" in run.summary()["hashed"][-1]
