"""ncs: who do my hosts talk to.  Per-remote-IP traffic statistics, merged across hosts.

The distribution installs everything under this one name:

- `ncs.stats`: the stats record, the stats file format and the column table (shared);
- `ncs.agent`: the capture daemon (source folder `agent/`);
- `ncs.report`: reports from one stats file (source folder `report/`);
- `ncs.coalesce`: fetching and merging many hosts' stats (source folder `coalesce/`).

See docs/architecture.md for what each package owns and may import.
"""

import os

__version__ = "1.0.0"

# ncs does no linear algebra.  Left alone, importing numpy starts an OpenBLAS
# thread per core, which spin for a while: 0.1 s of CPU per run here (a
# report served by CGI, each ncs-coalesce run, the agent's start).  Every
# program imports this package before numpy; a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
