"""The agent's side of the history store: each dump appended as a snapshot when `history` is set."""

from __future__ import annotations

from ncs.agent.config import AgentConfig
from ncs.agent.log import log
from ncs.agent.table import StatsTable


def append_dump(cfg: AgentConfig, table: StatsTable, header: list[str]) -> bool:
    """Append the dump of TABLE under HEADER to the store `cfg.history` as source `cfg.name`.

    Runs in the dump's child for a live capture, so capture goes on
    meanwhile.  Returns False after logging one line when the store refused
    it; the stats file is written either way.
    """
    # Here, not at the top: DuckDB is loaded only by an agent with a store, after a dump.
    from ncs.history.keep import parse_keep
    from ncs.history.schema import HistoryError
    from ncs.history.store import add_snapshot

    columns = table.columns(table.ordered_rows())
    columns.header = header
    try:
        add_snapshot(cfg.history or "", columns, cfg.name,
                     parse_keep(cfg.history_keep) if cfg.history_keep else None)
    except HistoryError as err:
        log.error("ncs-agent: history: %s", err)
        return False
    return True
