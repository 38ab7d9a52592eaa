"""The one error a stats file reader raises: the file, the line, and what is wrong, on one line."""

from __future__ import annotations


class StatsFormatError(ValueError):
    """A stats file that cannot be read; str() is "SOURCE:LINE: message" on one line."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        # One line whatever the message quotes: a log line per bad file.
        self.message = message.replace("\r", " ").replace("\n", " ")
        super().__init__(f"{source}:{line}: {self.message}")

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        # Survives pickling (a forked reader hands its errors back) with all its fields.
        return (type(self), (self.source, self.line, self.message))


class UnreadableStats(StatsFormatError):
    """A stats file that could not be opened or read: "PATH: cannot read: reason"."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, 0, "cannot read: " + reason)

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # type: ignore[override]
        return (type(self), (self.source, self.message.removeprefix("cannot read: ")))
