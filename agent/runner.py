"""The agent's main loop: frames in, stats table updated, names looked up, dumps written.

All side effects meet here: packets (agent.capture), DNS (agent.resolver),
the UDP dump port (agent.control), signals and the clock.  Signal handlers
only set flags; the loop acts on them between batches.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np

from ncs.agent.capture import BATCH, TIMEOUT_MS, Capture, CaptureDamaged, CaptureError, Frames
from ncs.agent.config import AgentConfig
from ncs.agent.control import ControlPort
from ncs.agent.decode import Decoder, PacketBatch, PayloadFilter
from ncs.agent.environment import Environment
from ncs.agent.errors import ConfigError
from ncs.agent.history import append_dump
from ncs.agent.iface import interface_is_up
from ncs.agent.keys import RemoteKeys
from ncs.agent.log import log
from ncs.agent.nameserver import default_nameserver, parse_nameserver
from ncs.agent.privileges import drop_privileges
from ncs.agent.statusnote import clear_note, note_path, write_note
from ncs.agent.table import StatsTable
from ncs.files import remove_stale_temporaries, replace_file
from ncs.stats.header import Header, header_lines
from ncs.stats.writer import file_chunks

IDLE_TICK = 1.0  # seconds select waits when nothing happens
DRAIN_BATCHES = 64  # batches read per wakeup before looking at DNS, signals, the port
DNS_EXPIRE_EVERY = 15
REPLAY_DNS_WAIT = 3.0  # seconds a replay waits for its last answers
#: `run --read` on a damaged capture file: the stats file holds every complete
#: frame before the damage, and the damage was printed.
EXIT_DAMAGED = 4
#: exit status of a replay whose dump the history store refused (the stats file is written)
EXIT_HISTORY = 1
#: A dump waits this long after it is asked for, capturing meanwhile: the
#: kernel hands a part-filled block of the capture ring over only when the
#: read timeout's timer retires it, and the dump must hold every packet
#: delivered before it was asked for.  The timer retires a block only if it
#: was already the open block at the timer's previous run, so a block opened
#: just after a run (the one before it filled up) waits up to two timeouts.
FLUSH_WAIT = 2 * TIMEOUT_MS / 1000 + 0.05
REOPEN_EVERY = 1.0  # seconds between looks at an interface that went down
CHILD_POLL = 0.05  # seconds between looks at a dump child still writing when another dump is due


@dataclass
class Flags:
    """Set by signal handlers, consumed by the loop."""

    dump: bool = False
    hup: bool = False
    stop: bool = False


class Agent:
    """One data set being collected: decoder, table, optional resolver, and the dump writer."""

    def __init__(self, cfg: AgentConfig, capture: Capture, monitored: list[str],
                 to_stderr: bool = False, resolver=None, control: ControlPort | None = None) -> None:
        self.cfg = cfg
        self.capture = capture
        self.monitored = monitored
        self.to_stderr = to_stderr
        self.resolver = resolver
        self.control = control
        self.keys = RemoteKeys()
        pf = PayloadFilter(cfg.payload or 0, cfg.match, cfg.nomatch)
        try:
            self.decoder = Decoder(capture.linktype, monitored, self.keys, pf)
        except ValueError as err:
            raise CaptureError(f"{capture.source}: {err}") from None
        self.table: StatsTable | None = None
        self.last_second = 0
        self.dump_child = 0
        self.dns_peak = 0  # most lookups queued or in flight at once
        self.history_ok = True  # the last dump reached the history store (or none is set)

    def new_table(self, start: int) -> None:
        """Start a new data set at START (agent start, first replayed packet, or HUP)."""
        if self.table is not None:
            self.keys = self.decoder.keys = RemoteKeys()
        self.table = StatsTable(start, self.keys, self.cfg.max_hosts,
                                want_names=self.resolver is not None)

    def ingest(self, frames: Frames) -> None:
        """Decode one batch and account it, one second at a time."""
        batch: PacketBatch = self.decoder.decode(frames.pkts, frames.meta, frames.wire)
        n = len(batch.sec)
        if n == 0:
            return
        if self.table is None:
            self.new_table(int(batch.sec[0]))
        cuts = np.flatnonzero(np.diff(batch.sec)) + 1
        bounds = [0, *cuts.tolist(), n]
        for a, b in zip(bounds, bounds[1:]):
            now = int(batch.sec[a])
            due = self.table.update_second(now, batch.key[a:b], batch.length[a:b])
            if len(due) and self.resolver is not None:
                address = self.keys.address
                for key in due.tolist():
                    self.resolver.request(address(key))
        self.last_second = int(batch.sec[-1])

    # -- DNS ----------------------------------------------------------------

    def pump_dns(self, now: int) -> None:
        """Send queued lookups, store answers."""
        if self.resolver is None or self.table is None:
            return
        for address in self.resolver.send_pending(now):
            self.table.lookup_sent(address, now)

    def receive_dns(self, now: int) -> None:
        """Store the answers waiting on the resolver's socket, then send more queries."""
        if self.resolver is None or self.table is None:
            return
        for answer in self.resolver.receive(now):
            self.table.set_names(answer.address, answer.names, answer.expires)
        self.pump_dns(now)

    def exchange_dns(self, now: int, wait: float) -> None:
        """Send queued queries and take in answers, waiting up to WAIT seconds for some."""
        self.pump_dns(now)
        ready, _, _ = select.select([self.resolver.fileno()], [], [], wait)
        if ready:
            self.receive_dns(now)
        self.dns_peak = max(self.dns_peak, self.resolver.pending())

    # -- dumps --------------------------------------------------------------

    def header(self, current: int) -> list[str]:
        table = self.table
        drops = self.capture.drops
        counters = self.decoder.counters
        extra = [
            ("monitored", " ".join(self.monitored)),
            ("evicted", str(table.evicted if table else 0)),
            ("purged", str(table.purged if table else 0)),
        ]
        if self.capture.live:
            extra[1:1] = [("received", str(drops.received)), ("drops", str(drops.dropped)),
                          ("ifdrops", str(drops.ifdropped))]
        extra.append(("skipped", " ".join(
            f"{k}={v}" for k, v in counters.as_dict().items() if k not in ("packets", "accounted"))))
        if self.resolver is not None:
            c = self.resolver.counters
            self.dns_peak = max(self.dns_peak, self.resolver.pending())
            counts = " ".join(f"{k}={v}" for k, v in c.__dict__.items())
            extra.append(("dns", f"{counts} pending={self.resolver.pending()} peak={self.dns_peak}"))
        if self.control is not None:
            port = self.control
            extra.append(("dumpport", f"requests={port.requests} answered={port.answered} "
                                      f"refused={port.refused}"))
        start = table.start if table else current
        h = Header(
            start=start, current=current,
            hits_per_minute=table.rate.hits_per_minute if table else 0.0,
            bytes_per_second=table.rate.bytes_per_second if table else 0.0,
            users=len(table) if table else 0,
            device=self.capture.source, promiscuous=self.capture.promiscuous, bpf=self.cfg.bpf,
            payload=self.cfg.payload, snaplen=self.cfg.snaplen,
            match=self.cfg.match, nomatch=self.cfg.nomatch, extra=extra,
        )
        return header_lines(h)

    def write(self, current: int, sample: bool = True) -> None:
        """Write the stats file now (stdout for '-', stderr with -d, else atomically).

        SAMPLE refreshes libpcap's counters first; a forked writer must not,
        because reading them resets the kernel's copy and only the child
        would have seen the difference.
        """
        if sample:
            self.capture.sample_drops()
        header = self.header(current)
        if self.to_stderr or self.cfg.stats_path == "-":
            blocks = self.table.record_blocks() if self.table else iter(())
            stream = sys.stderr if self.to_stderr else sys.stdout
            stream.flush()
            for chunk in file_chunks(header, blocks):
                stream.buffer.write(chunk)
            stream.buffer.flush()
        else:
            path = self.cfg.stats_path
            blocks = self.table.record_blocks(os.path.dirname(os.path.abspath(path))) if self.table else iter(())
            replace_file(path, file_chunks(header, blocks))
        if self.cfg.history and self.table is not None:
            self.history_ok = append_dump(self.cfg, self.table, header)

    def write_in_child(self, current: int) -> None:
        """Write the stats file from a forked copy, so capture goes on meanwhile."""
        if self.dump_child:
            return
        self.capture.sample_drops()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                self.write(current, sample=False)
                status = 0 if self.history_ok else 1
            except OSError as err:
                # One line; the previous file is intact (replace_file) and capture goes on.
                log.error("ncs-agent: cannot write %s: %s", self.cfg.stats_path, err.strerror or err)
                status = 1
            finally:
                logging.shutdown()
                os._exit(status)
        self.dump_child = pid

    def reap_child(self, block: bool = False) -> None:
        """Collect a finished dump child (waiting for it with BLOCK)."""
        if self.dump_child:
            pid, _ = os.waitpid(self.dump_child, 0 if block else os.WNOHANG)
            if pid:
                self.dump_child = 0

    def drain(self) -> None:
        """Account every frame the capture has waiting (reading up to DRAIN_BATCHES batches)."""
        for _ in range(DRAIN_BATCHES):
            frames = self.capture.read_batch(BATCH)
            if not len(frames):
                return
            self.ingest(frames)


def replay(cfg: AgentConfig, monitored: list[str], to_stderr: bool) -> int:
    """Run a capture file through the agent and write the stats file once at the end.

    Names are looked up only when a nameserver is given explicitly: a replay
    is otherwise deterministic, the same file giving the same stats file.
    """
    capture = Capture.open_file(cfg.read, cfg.bpf)
    remove_stale(cfg)
    resolver = _open_resolver(cfg) if cfg.dns and cfg.nameserver else None
    agent = Agent(cfg, capture, monitored, to_stderr, resolver)
    damage = None
    while True:
        try:
            frames = capture.read_batch(BATCH)
        except CaptureDamaged as err:
            damage = err  # every complete frame before it was counted: write them, then say it
            break
        if not len(frames):
            break
        agent.ingest(frames)
        if resolver is not None:
            agent.exchange_dns(agent.last_second, wait=0.0)
    if resolver is not None:
        # Give the answers to the last queries a moment, in wall-clock time.
        deadline = time.monotonic() + REPLAY_DNS_WAIT
        while resolver.pending() and time.monotonic() < deadline:
            agent.exchange_dns(agent.last_second, wait=0.1)
    if agent.table is None:
        agent.new_table(0)
    agent.write(agent.last_second)
    capture.close()
    if resolver is not None:
        resolver.close()
    if damage is not None:
        log.error("ncs-agent: %s", damage)
        return EXIT_DAMAGED
    return 0 if agent.history_ok else EXIT_HISTORY


#: The signals the agent handles (see `_install_signals`).
HANDLED_SIGNALS = (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


def _install_signals(flags: Flags) -> int:
    """Route USR1/HUP/TERM/INT to FLAGS; return the read end of the wakeup pipe."""
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)

    def on_usr1(_sig, _frame):
        flags.dump = True

    def on_hup(_sig, _frame):
        flags.hup = True

    def on_stop(_sig, _frame):
        flags.stop = True

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    return rfd


def _open_resolver(cfg: AgentConfig):
    """Return the reverse-DNS resolver the settings ask for, or None (dns off, no server known)."""
    if not cfg.dns:
        return None
    # dnspython takes ~70 ms to import: only an agent that looks names up pays for it.
    from ncs.agent.resolver import ReverseResolver

    if cfg.nameserver:
        try:
            server = parse_nameserver(cfg.nameserver)
        except ValueError:
            raise ConfigError(f"config: bad nameserver '{cfg.nameserver}'") from None
    else:
        server = default_nameserver()
        if server is None:
            return None
    return ReverseResolver(server)


def _exclude_own_dns(bpf: str, resolver) -> str:
    """Return BPF extended so the agent's own queries and answers are not counted.

    An answer too big for one IP packet arrives in fragments, and only the
    first carries the UDP ports: the others are told apart by being UDP
    fragments from the name server (IPv4: a fragment offset; IPv6: a
    fragment header followed by UDP).  So every UDP fragment but the first
    from the name server's address is left out, its answers and anything
    else the server sends this host in fragments (docs/dns.md).
    """
    if resolver is None:
        return bpf
    host, port = resolver.server
    mine = resolver.local_port
    if ":" in host:
        fragments = f"(src host {host} and ip6[6] == 44 and ip6[40] == 17)"
    else:
        fragments = f"(src host {host} and ip[9] == 17 and ip[6:2] & 0x1fff != 0)"
    return (f"({bpf}) and not (udp and ((src host {host} and src port {port} and dst port {mine})"
            f" or (dst host {host} and dst port {port} and src port {mine})))"
            f" and not {fragments}")


def remove_stale(cfg: AgentConfig) -> None:
    """Remove the temporary files an interrupted dump of CFG's stats file left (logged)."""
    if cfg.stats == "-":
        return
    for name, size in remove_stale_temporaries(cfg.stats_path):
        log.info("ncs-agent: removed %s (%d bytes), left by an interrupted dump", name, size)


@dataclass
class LiveLoop:
    """The live capture's loop: packets, DNS, the dump port, signals, dumps, and an interface that goes away.

    AGENT holds the capture, resolver and dump port; FLAGS are set by the
    signal handlers, whose wakeup pipe is WAKE; DEVICE and BPF reopen the
    capture after the interface came back.
    """

    agent: Agent
    flags: Flags
    wake: int
    device: str
    bpf: str
    dump_due: float | None = None  # when the asked-for dump may be written (monotonic)
    next_reopen: float = 0.0

    def __post_init__(self) -> None:
        self.cfg = self.agent.cfg
        self.capture: Capture | None = self.agent.capture
        self.note = note_path(self.cfg)

    def watched(self) -> list[int]:
        """Return the descriptors to select on."""
        fds = [self.wake]
        if self.capture is not None:
            fds.append(self.capture.fileno())
        for part in (self.agent.resolver, self.agent.control):
            if part is not None:
                fds.append(part.fileno())
        return fds

    def run(self) -> None:
        """Loop until TERM/INT; then wait for the last block, drain it and write the final dump."""
        next_tick = time.monotonic() + DNS_EXPIRE_EVERY
        while not self.flags.stop:
            wait = IDLE_TICK if self.dump_due is None else max(0.0, self.dump_due - time.monotonic())
            try:
                ready, _, _ = select.select(self.watched(), [], [], min(wait, IDLE_TICK))
            except InterruptedError:
                ready = []
            now = int(time.time())
            if self.wake in ready:
                _drain(self.wake)
            self.read()
            self.exchange(ready, now)
            self.agent.reap_child()
            self.dumps(now)
            if self.capture is None and time.monotonic() >= self.next_reopen:
                self.reopen()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + DNS_EXPIRE_EVERY
                self.housekeeping(now)
        self.flush()
        self.agent.reap_child(block=True)
        self.agent.write(int(time.time()))
        clear_note(self.note)

    def read(self) -> None:
        """Account what the capture has waiting; an interface gone down makes the loop wait for it."""
        if self.capture is None:
            return
        try:
            self.agent.drain()
        except CaptureError as err:
            self.lost(err)

    def exchange(self, ready: list[int], now: int) -> None:
        """Take in DNS answers, send queries, answer the dump port."""
        agent, resolver, control = self.agent, self.agent.resolver, self.agent.control
        if resolver is not None:
            if resolver.fileno() in ready:
                agent.receive_dns(now)
            agent.pump_dns(now)
            agent.dns_peak = max(agent.dns_peak, resolver.pending())
        if control is not None and control.fileno() in ready and control.handle(now):
            self.flags.dump = True

    def dumps(self, now: int) -> None:
        """Write the dump asked for (USR1, HUP, the port) once the capture ring has handed over its packets."""
        flags = self.flags
        if not (flags.dump or flags.hup):
            return
        if self.dump_due is None:
            self.dump_due = time.monotonic() + (FLUSH_WAIT if self.capture is not None else 0.0)
        if time.monotonic() < self.dump_due:
            return
        self.read()
        agent = self.agent
        if flags.hup:
            flags.hup = flags.dump = False
            agent.reap_child(block=True)
            agent.write_in_child(now)
            agent.new_table(now)
        elif not agent.dump_child:
            flags.dump = False
            agent.write_in_child(now)
        else:
            self.dump_due = time.monotonic() + CHILD_POLL  # the last dump is still being written
            return
        self.dump_due = None

    def flush(self) -> None:
        """Capture for FLUSH_WAIT more seconds, so the final dump holds what the kernel delivered."""
        if self.capture is None:
            return
        deadline = time.monotonic() + FLUSH_WAIT
        while (left := deadline - time.monotonic()) > 0:
            select.select([self.capture.fileno()], [], [], left)
            self.read()
            if self.capture is None:
                return
        self.read()

    def lost(self, err: CaptureError) -> None:
        """The capture failed (the interface went down): write a dump, then wait for the interface."""
        log.error("ncs-agent: %s; the counts so far are dumped and the capture waits for %s to come "
                  "back", err, self.device)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        write_note(self.note, f"waiting for {self.device} to come back up (capture failed at {since}: "
                              f"{err})")
        self.capture.close()
        self.capture = None
        self.next_reopen = time.monotonic() + REOPEN_EVERY
        self.agent.reap_child(block=True)
        self.agent.write_in_child(int(time.time()))

    def reopen(self) -> None:
        """Capture again on the device once it is up; until then look again every REOPEN_EVERY s."""
        self.next_reopen = time.monotonic() + REOPEN_EVERY
        if not interface_is_up(self.device):
            return
        old = self.agent.capture
        try:
            capture = Capture.open_live(self.device, self.bpf, self.cfg.snaplen, old.promiscuous,
                                        self.cfg.buffer_size)
        except (CaptureError, ConfigError) as err:
            log.warning("ncs-agent: %s: still waiting", err)
            return
        capture.drops = old.drops
        capture.drops.restart()
        self.capture = self.agent.capture = capture
        clear_note(self.note)
        log.info("ncs-agent: capturing again on %s", self.device)

    def housekeeping(self, now: int) -> None:
        """Expire DNS answers and purge idle records (every DNS_EXPIRE_EVERY s of wall clock)."""
        if self.agent.resolver is not None:
            self.agent.resolver.expire(now)
        table = self.agent.table
        if table is not None and now >= table.next_purge:
            table.purge(now)

    def close(self) -> None:
        """Close the capture, the port and the resolver."""
        for part in (self.capture, self.agent.control, self.agent.resolver):
            if part is not None:
                part.close()


def live(cfg: AgentConfig, env: Environment, to_stderr: bool) -> int:
    """Capture on ENV's device until TERM/INT, dumping on USR1, HUP and UDP requests."""
    flags = Flags()
    # The agent's signals wait, blocked, until the capture is open with its
    # filter and the dump port is bound.  An agent that catches USR1 is then
    # ready in every way (`ncs-agent start` waits for exactly that), so a
    # packet sent once `start` returns is counted: libpcap drops what the
    # socket queued before the filter was set.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    device, promiscuous, monitored = env.device, env.promiscuous, env.addresses
    resolver = _open_resolver(cfg)
    bpf = _exclude_own_dns(cfg.bpf, resolver)
    capture = Capture.open_live(device, bpf, cfg.snaplen, promiscuous, cfg.buffer_size)
    remove_stale(cfg)
    if cfg.user:
        # The pid file stays root's: a user who could write it could name any process in it.
        drop_privileges(cfg.user, [p for p in (cfg.stats_path, os.path.dirname(cfg.stats_path))
                                   if p and p != "-" and os.path.lexists(p)])
    control = None
    if cfg.port:
        control = ControlPort(cfg.host, cfg.port, cfg.allowed)
    wake = _install_signals(flags)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
    agent = Agent(cfg, capture, monitored, to_stderr, resolver, control)
    agent.new_table(int(time.time()))
    clear_note(note_path(cfg))
    # Like tcpdump's "listening on": tells a person (and a test) that signals now work.
    log.info("ncs-agent: capturing on %s (%s), %d monitored address(es), stats to %s", device,
             "promiscuous" if promiscuous else "non-promiscuous", len(monitored),
             "stderr" if to_stderr else cfg.stats_path)
    loop = LiveLoop(agent, flags, wake, device, bpf)
    try:
        loop.run()
    finally:
        loop.close()
    return 0


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def run_foreground(cfg: AgentConfig, env: Environment, to_stderr: bool = False) -> int:
    """Run the agent in this process (replay with cfg.read, else live); return the exit status.

    ENV is what check_environment found for CFG: the monitored addresses and
    the device.  Configuration problems log one line and return 2; capture
    and file problems log one line and return 1; a damaged capture file
    returns EXIT_DAMAGED after writing the stats file.
    """
    try:
        if cfg.read:
            return replay(cfg, env.addresses, to_stderr)
        return live(cfg, env, to_stderr)
    except ConfigError as err:
        log.error("%s", err)
        return 2
    except CaptureError as err:
        log.error("ncs-agent: %s", err)
        return 1
    except OSError as err:
        log.error("ncs-agent: %s: %s", err.filename or cfg.stats_path, err.strerror or err)
        return 1
