"""ncs-agent's command line: parse options into an AgentConfig and dispatch a verb."""

from __future__ import annotations

import argparse
import sys

from ncs import __version__
from ncs.agent import verbs
from ncs.agent.config import KEYS, AgentConfig, load_config, resolve_config
from ncs.agent.errors import ConfigError
from ncs.agent.log import configure as configure_log
from ncs.argtypes import bounded_float

# Config keys set by an option of their own name (--max-hosts for max_hosts),
# with the help text and default of the key table; the value is checked like
# the file's.  name, allowed, dns, read and stats have options of other shapes.
CONFIG_OPTIONS = ("piddir", "sniffer", "bpf", "device", "snaplen", "match", "nomatch", "payload",
                  "port", "host", "nameserver", "max_hosts", "user", "buffer_size", "history",
                  "history_keep")
# Verbs that start an agent or show its configuration take every config option;
# the others only need what locates a running agent and its files.
FULL_VERBS = ("run", "start", "restart", "config")
LOCATING_OPTIONS = ("piddir", "sniffer", "port", "host")


def option_help(key: str) -> str:
    """Return the help text of config key KEY, with its default when it has one."""
    entry = KEYS[key]
    if entry.default in (None, ""):
        return f"{entry.help} (default: none)"
    default = ", ".join(entry.default) if isinstance(entry.default, list) else entry.default
    return f"{entry.help} (default: {default})"


def _add_common(p: argparse.ArgumentParser, suppress: bool) -> None:
    """Add -c, --name and -d; on a verb they default to SUPPRESS so the global ones stay."""
    default = argparse.SUPPRESS if suppress else None
    p.add_argument("-c", "--config", default=default, help="YAML config file (default: none)")
    p.add_argument("--name", default=default, help=option_help("name"))
    p.add_argument("-d", dest="debug", action="store_true",
                   default=argparse.SUPPRESS if suppress else False,
                   help="write dumps to stderr instead of the stats file (default: off)")


def _add_config_options(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add the options that override config keys (values stay text: the config checks them)."""
    for key in CONFIG_OPTIONS:
        if only is None or key in only:
            p.add_argument("--" + key.replace("_", "-"), dest=key, metavar=key.upper(),
                           help=option_help(key))
    p.add_argument("--stats", metavar="PATH", help=option_help("stats"))
    if only is None:
        p.add_argument("--allowed", action="append", metavar="HOST", help=option_help("allowed"))
        p.add_argument("--dns", action=argparse.BooleanOptionalAction, default=None,
                       help=option_help("dns"))


GLOBAL_OPTIONS = ("-c", "--config", "--name", "-d", "-h", "--help", "--version")
EXAMPLES = """\
examples:
  ncs-agent run --read samples/sample.pcap --bpf 'host 198.51.100.10' --no-dns --stats demo-out/x.stats
  ncs-agent run --bpf 'host 192.0.2.10' --port 10004 --stats demo-out/live.stats   (as root)
  ncs-agent -c /etc/ncs/web.yaml start
  ncs-agent -c /etc/ncs/web.yaml dump --wait --print

options of a verb go after it: ncs-agent run --bpf ..., not ncs-agent --bpf ... run
"""


def misplaced_option(argv: list[str]) -> str | None:
    """Return a one-line hint when an option of a verb comes before the verb, else None."""
    verbs = ("run", "start", "stop", "restart", "status", "dump", "config")
    for i, word in enumerate(argv):
        if word in verbs and (i == 0 or argv[i - 1] not in ("-c", "--config", "--name")):
            return None
        option = word.split("=", 1)[0]
        if option.startswith("-") and option not in GLOBAL_OPTIONS:
            verb = next((w for w in argv[i:] if w in verbs), "run")
            return (f"ncs-agent: {option} is an option of the verb; put it after the verb: "
                    f"ncs-agent {verb} {option} ...")
    return None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every verb."""
    parser = argparse.ArgumentParser(prog="ncs-agent", description="per-remote-IP traffic statistics",
                                     epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ncs-agent {__version__}")
    _add_common(parser, suppress=False)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    helps = {
        "run": "capture in the foreground (or replay --read FILE)",
        "start": "start the agent as a daemon",
        "stop": "stop the daemon (it writes a last dump)",
        "restart": "stop, then start",
        "status": "say whether the agent runs (exit 0) or not (exit 3)",
        "dump": "ask the agent to write its stats file",
        "config": "check the configuration and print it as YAML",
    }
    for verb, text in helps.items():
        p = verbs.add_parser(verb, help=text, description=text)
        _add_common(p, suppress=True)
        _add_config_options(p, None if verb in FULL_VERBS else LOCATING_OPTIONS)
        if verb == "run":
            p.add_argument("--read", metavar="FILE", help=option_help("read"))
        if verb in ("start", "restart", "stop", "dump"):
            default = {"stop": 15.0, "restart": 15.0}.get(verb, 30.0)
            p.add_argument("--timeout", type=bounded_float(0.1), default=default, metavar="S",
                           help=f"seconds to wait (default: {default:g})")
        if verb == "dump":
            p.add_argument("--wait", action="store_true",
                           help="wait until the stats file is rewritten (default: off)")
            p.add_argument("--max-age", dest="max_age", type=bounded_float(0), metavar="S",
                           help="do nothing if the stats file is younger than S seconds (default: always dump)")
            p.add_argument("--print", dest="print_file", action="store_true",
                           help="then copy the stats file to stdout (default: off)")
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Return the config keys the command line sets (None: not given)."""
    keys = [*CONFIG_OPTIONS, "name", "stats", "read", "allowed", "dns"]
    return {key: getattr(args, key, None) for key in keys}


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """Return the effective config: defaults, the -c file, then the command line.

    Raises ConfigError with a one-line message for an invalid value.
    """
    raw = load_config(args.config) if args.config else {}
    return resolve_config(raw, overrides_from_args(args))


def dispatch(args: argparse.Namespace, cfg: AgentConfig) -> int:
    """Run the verb in ARGS with CFG; returns its exit status.  Raises ConfigError."""
    verb = args.verb
    if verb == "run":
        return verbs.run(cfg, to_stderr=args.debug)
    if verb == "start":
        return verbs.start(cfg, to_stderr=args.debug, timeout=args.timeout)
    if verb == "stop":
        return verbs.stop(cfg, timeout=args.timeout)
    if verb == "restart":
        return verbs.restart(cfg, to_stderr=args.debug, timeout=args.timeout)
    if verb == "status":
        return verbs.status(cfg)
    if verb == "dump":
        return verbs.dump(cfg, wait=args.wait, max_age=args.max_age,
                          print_file=args.print_file, timeout=args.timeout)
    return verbs.show_config(cfg, args.config, to_stderr=args.debug)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ncs-agent; returns the exit status (2 for an invalid configuration)."""
    hint = misplaced_option(sys.argv[1:] if argv is None else argv)
    if hint:
        print(hint, file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    configure_log()
    try:
        cfg = config_from_args(args)
        return dispatch(args, cfg)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
