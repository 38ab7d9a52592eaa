"""Write the manual pages of ncs-agent, ncs-report and ncs-coalesce from their argparse parsers.

Run: .venv/bin/python tools/make_manpages.py [DIR]   (default docs/man)
tests/test_manpages.py checks that the committed pages are what this writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ncs import __version__

#: (program, module, one-line summary)
PROGRAMS: tuple[tuple[str, str, str], ...] = (
    ("ncs-agent", "ncs.agent.cli", "capture per-remote-IP traffic statistics with libpcap"),
    ("ncs-report", "ncs.report.cli", "report a stats file by network or domain, top talkers first"),
    ("ncs-coalesce", "ncs.coalesce.cli", "fetch stats from many hosts over SSH and merge them"),
)


def roff(text: str) -> str:
    """Return TEXT escaped for roff: backslashes, hyphens, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n"))


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    """Return a help formatter of a fixed width, so that the pages do not depend on the terminal."""
    return argparse.HelpFormatter(parser.prog, width=80)


def _fix_width(parser: argparse.ArgumentParser) -> None:
    """Make PARSER and its verbs format at the fixed width of `_formatter`."""
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=80)
    for _, sub in _verbs(parser):
        _fix_width(sub)


def _option_items(parser: argparse.ArgumentParser) -> list[str]:
    """Return the .TP items of PARSER's options and positionals, group by group."""
    lines: list[str] = []
    for group in parser._action_groups:  # argparse keeps no public list of its groups
        actions = [a for a in group._group_actions
                   if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]
        if not actions:
            continue
        if group.title not in ("options", "optional arguments", "positional arguments"):
            lines.append(f".SS {roff(group.title or '')}")
        for action in actions:
            names = ", ".join(action.option_strings) or (action.metavar or action.dest)
            metavar = ""
            if action.option_strings and action.nargs != 0:
                metavar = " " + str(action.metavar or (
                    "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()))
            help_text = _formatter(parser)._expand_help(action) if action.help else ""
            lines += [".TP", f"\\fB{roff(names)}\\fR{roff(metavar)}", roff(help_text)]
    return lines


def _verbs(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Return (name, parser) of PARSER's sub-commands, if it has any."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def manpage(prog: str, summary: str, parser: argparse.ArgumentParser) -> str:
    """Return the roff text of PROG's manual page."""
    lines = [f'.TH {prog.upper()} 1 "" "ncs {__version__}" "ncs manual"',
             ".SH NAME", f"{roff(prog)} \\- {roff(summary)}",
             ".SH SYNOPSIS", ".nf", roff(parser.format_usage().removeprefix("usage: ").strip()), ".fi",
             ".SH DESCRIPTION", roff(parser.description or summary),
             ".SH OPTIONS", *_option_items(parser)]
    for verb, sub in _verbs(parser):
        lines += [f".SH VERB {roff(verb)}", ".nf", roff(sub.format_usage().removeprefix("usage: ").strip()),
                  ".fi", roff(sub.description or ""), *_option_items(sub)]
    if parser.epilog:
        lines += [".SH EXAMPLES", ".nf", roff(parser.epilog.strip()), ".fi"]
    lines += [".SH SEE ALSO", ", ".join(f"\\fB{roff(p)}\\fR(1)" for p, _, _ in PROGRAMS if p != prog)]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Return {file name: roff text} of every program's page."""
    import importlib

    out = {}
    for prog, module, summary in PROGRAMS:
        build: Callable[[], argparse.ArgumentParser] = importlib.import_module(module).build_parser
        parser = build()
        _fix_width(parser)
        out[f"{prog}.1"] = manpage(prog, summary, parser)
    return out


def main(argv: list[str]) -> int:
    """Write the pages into argv[0] (default docs/man); return 0."""
    target = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "docs" / "man")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (target / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
