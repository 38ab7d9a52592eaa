"""Inventory loading: defaults and overrides, legacy hosts, the local agent, one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ncs.coalesce.inventory import DEFAULT_COMMAND, InventoryError, load_inventory
from tests.coalesce.fleet import REPO, run_coalesce


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_apply_and_hosts_override(tmp_path: Path):
    path = _write(tmp_path, """
        defaults:
          user: ncs
          port: 2200
          identity: /keys/ncs
          timeout: 30
        hosts:
          web1:
          web2:
            address: 198.51.100.12
            port: 22
            user: other
          oldbox:
            exec: /usr/local/bin/nc.sniffer.dump.pl
            fetch: /var/run/nc.sniffer.stats
        local:
          stats: /var/lib/ncs/central.stats
          update: 127.0.0.1:10004
        cache: /tmp/composite.stats
        refresh: 300
        jobs: 4
    """)
    inv = load_inventory(str(path))
    web1, web2, old = inv.hosts
    assert [h.name for h in inv.hosts] == ["web1", "web2", "oldbox"]
    assert (web1.address, web1.port, web1.user, web1.identity, web1.timeout) == (
        "web1", 2200, "ncs", "/keys/ncs", 30.0)
    assert web1.command == DEFAULT_COMMAND and not web1.legacy
    assert (web2.address, web2.port, web2.user) == ("198.51.100.12", 22, "other")
    assert old.legacy and old.exec == "/usr/local/bin/nc.sniffer.dump.pl"
    assert web1.host_key_check == "strict"
    assert inv.local is not None and inv.local.update == ("127.0.0.1", 10004)
    assert inv.local.name == "localhost" and inv.local.updto == 15.0
    assert (inv.cache, inv.refresh, inv.jobs) == ("/tmp/composite.stats", 300.0, 4)


@pytest.mark.parametrize("text, message", [
    ("hosts:\n  web1:\n    port: 70000\n", "host web1: key 'port': must be an integer 1-65535"),
    ("hosts:\n  web1:\n    prot: 22\n", "host web1: unknown key 'prot'"),
    ("hosts:\n  web1:\n    timeout: -1\n", "host web1: key 'timeout': must be a number"),
    ("hosts:\n  web1:\n    exec: /bin/dump\n", "host web1: key 'exec': needs 'fetch'"),
    ("hosts:\n  web1:\n    host_key_check: maybe\n", "host web1: key 'host_key_check'"),
    ("hosts:\n  web1:\n    ssh_agent: yes please\n", "host web1: key 'ssh_agent': must be true or false"),
    ("defaults:\n  port: x\nhosts:\n  web1:\n", "defaults: key 'port'"),
    ("hosts:\n  web1:\n  web1:\n", ":3: key 'web1' given twice"),
    ("hosts:\n  web1: [1]\n", "host web1: settings must be a mapping"),
    ("hosts: {}\n", "nothing to coalesce"),
    ("hosts:\n  a:\njobs: 0\n", "top level: key 'jobs'"),
    ("hosts:\n  a:\nlocal:\n  update: 1\n", "local: key 'stats': missing"),
    ("hosts:\n  a:\nlocal:\n  stats: /x\n  update: 'h:port'\n", "local: key 'update'"),
    ("hosts:\n  a: {\n", "invalid YAML"),
])
def test_invalid_inventories_fail_with_one_line(tmp_path: Path, text: str, message: str):
    path = _write(tmp_path, text)
    with pytest.raises(InventoryError) as err:
        load_inventory(str(path))
    assert message in str(err.value)
    assert str(err.value).startswith(str(path) + ":")
    assert "\n" not in str(err.value)


def test_cli_rejects_a_bad_inventory_without_traceback(tmp_path: Path):
    path = _write(tmp_path, "hosts:\n  web1:\n    port: 0\n")
    run = run_coalesce("-i", str(path), "-o", str(tmp_path / "out.stats"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"ncs-coalesce: {path}:3: host web1: key 'port': must be an integer 1-65535, not 0"]
    assert not (tmp_path / "out.stats").exists()


def test_missing_inventory_is_one_line(tmp_path: Path):
    run = run_coalesce("-i", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "o"))
    assert run.returncode == 2
    assert "nope.yaml: cannot read: No such file or directory" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_shipped_example_is_valid():
    inv = load_inventory(str(REPO / "inventory.yaml.example"))
    assert inv.hosts and any(h.legacy for h in inv.hosts)
    assert inv.local is not None
