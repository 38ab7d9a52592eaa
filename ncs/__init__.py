"""ncs: who do my hosts talk to.  Per-remote-IP traffic statistics, merged across hosts.

The distribution installs everything under this one name:

- `ncs.stats`: the stats record, the stats file format and the column table (shared);
- `ncs.agent`: the capture daemon (source folder `agent/`);
- `ncs.report`: reports from one stats file (source folder `report/`);
- `ncs.coalesce`: fetching and merging many hosts' stats (source folder `coalesce/`).

See docs/architecture.md for what each package owns and may import.
"""

__version__ = "1.0.0"
