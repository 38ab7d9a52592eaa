"""Shared fixtures: real components live in tests/support/, one module each."""

pytest_plugins = [
    "tests.support.netns",
    "tests.support.pcapgen",
    "tests.support.forks",
    "tests.support.nsd",
    "tests.support.sshd",
    "tests.support.web",
    "tests.support.controlport",
    "tests.support.relay",
    "tests.support.tmpfs",
]
