"""A fixture that counts the children ncs.twocore forks (to show a two-core path was taken)."""

from __future__ import annotations

import pytest

from ncs import twocore


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Return a list that grows by one for every forked helper child from now on."""
    counted: list[int] = []
    real = twocore.ForkedCall

    def counting(func, *args, **kwargs):
        counted.append(1)
        return real(func, *args, **kwargs)

    monkeypatch.setattr(twocore, "ForkedCall", counting)
    return counted
