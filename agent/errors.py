"""The agent's configuration error, in a module of its own so that every agent module can raise it."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid setting; str() is the one-line message naming key and value ("config: ...")."""


def config_error(message: str, where: str = "") -> ConfigError:
    """Return ConfigError("config: [WHERE: ]MESSAGE"); WHERE is FILE:LINE or FILE when known."""
    return ConfigError(f"config: {where}: {message}" if where else f"config: {message}")
