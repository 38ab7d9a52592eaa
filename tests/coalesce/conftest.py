"""Fixtures of the coalescer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.coalesce.fleet import Fleet
from tests.support.sshd import SshdFactory, SshKey


@pytest.fixture
def fleet(sshd_factory: SshdFactory, client_key: SshKey, tmp_path: Path) -> Fleet:
    """A Fleet of loopback sshd hosts for one test (servers stopped by sshd_factory)."""
    base = tmp_path / "fleet"
    base.mkdir()
    return Fleet(sshd_factory, client_key, base)
